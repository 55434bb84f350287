"""Writing benchmark tables into docs/performance.md, one section per benchmark."""

from __future__ import annotations

import os
import platform
import re
import time

import benchmarks

PERFORMANCE_DOC = os.path.join(benchmarks.DOCS_DIR, "performance.md")


def table(header: list[str], rows: list[list]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines)


def machine() -> str:
  return (
    f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
    f"{time.strftime('%Y-%m-%d')}"
  )


def update_section(
  name: str, markdown: str, path: str = PERFORMANCE_DOC, title: str = "Performance"
) -> None:
  """Replaces (or appends) the block between `<!-- bench:NAME -->` markers."""
  begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
  block = f"{begin}\n{markdown.strip()}\n{end}"
  text = open(path).read() if os.path.exists(path) else f"# {title}\n"
  pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
  text = (
    pattern.sub(lambda _: block, text)
    if pattern.search(text)
    else text.rstrip() + "\n\n" + block + "\n"
  )
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)
