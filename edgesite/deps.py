"""Dependency tags: what a render read, so a purge can find every page an input feeds.

Tags are strings: ``file:<path in the site>`` (content, templates, data, static, worker.py,
site.toml), ``list:section:<name>``, ``list:term:<taxonomy>:<slug>``, ``list:taxonomy:<name>``,
``list:all``, ``neighbours:<content path>``. The host adds ``path:<url>`` and ``prefix:<url>``.
Pure: the render core records tags here in the isolate and in-process alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[set[str] | None] = ContextVar("edgesite_deps", default=None)


def record(tag: str) -> None:
    """Note that the render running in this context read ``tag`` (no-op outside a render)."""
    found = _current.get()
    if found is not None:
        found.add(tag)


@contextmanager
def collecting() -> Iterator[set[str]]:
    """Collect the tags recorded while the block runs."""
    found: set[str] = set()
    token = _current.set(found)
    try:
        yield found
    finally:
        _current.reset(token)


def path_tags(url: str) -> list[str]:
    """``path:`` of a URL and ``prefix:`` of each of its folders, so URL and prefix purges
    are one generation bump each."""
    tags = [f"path:{url}"]
    cut = url.find("/", 1)
    tags.append("prefix:/")
    while cut != -1:
        tags.append(f"prefix:{url[: cut + 1]}")
        cut = url.find("/", cut + 1)
    return tags
