"""nfrec: the application around the TFX pipeline.

Rooms (what each may import is checked by tests/test_layering.py):
  contracts   the names every layer shares (imports nothing of the project)
  data        `nfrec prepare` and the embedded sample's generator
  reporting   the run summary (from ML-Metadata) and report.html
  serving     clients of a pushed model
  cli         the `nfrec` command
"""
