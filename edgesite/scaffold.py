"""``edgesite new``: copy a starter site (the default theme and a little content) into a folder.

The starter lives in ``edgesite/scaffolds/<name>/`` (package data). ``site.toml`` gets the
site's title in place of ``__TITLE__``; every other file is copied byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import EdgesiteError

SCAFFOLDS = Path(__file__).parent / "scaffolds"


def create(path: str | Path, *, title: str | None = None, scaffold: str = "default") -> list[Path]:
    """Write the starter site into ``path`` (created if missing) and return the files written,
    relative to it. Raises EdgesiteError if ``path`` is a file or a folder that is not empty:
    nothing is ever overwritten."""
    target = Path(path)
    source = SCAFFOLDS / scaffold
    if not source.is_dir():
        raise EdgesiteError(f"no scaffold named {scaffold!r}")
    if target.exists() and not target.is_dir():
        raise EdgesiteError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise EdgesiteError(f"{target} is not empty: choose a new or empty folder")
    name = title or target.resolve().name.replace("-", " ").replace("_", " ").strip().title() or "My site"
    written = []
    for src in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = src.relative_to(source)
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() == "site.toml":
            dest.write_text(src.read_text(encoding="utf-8").replace("__TITLE__", name.replace('"', '\\"')), encoding="utf-8")
        else:
            shutil.copyfile(src, dest)
        written.append(rel)
    (target / "data").mkdir(exist_ok=True)
    return written
