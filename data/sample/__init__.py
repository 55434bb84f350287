"""The embedded sample, installed as the package data `nfrec.sample_data` (pyproject.toml)."""
