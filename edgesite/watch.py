"""The watching invalidation hook: file edits become new versions and exact purges.

One task per site watches its folder (watchfiles, debounced to tens of milliseconds) and, on
any change, recompiles (only the changed files are read) and purges what the two versions
differ in. It also wakes at the date of the next future-dated page, so a scheduled post
appears at its date without an edit. A compile error is logged and the old version is kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import watchfiles

from .errors import EdgesiteError
from .node import SiteRuntime

log = logging.getLogger("edgesite.watch")


def _ignored(change: watchfiles.Change, path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") or name.endswith(("~", ".swp", ".tmp")) or "/__pycache__/" in path


def reload_quietly(site: SiteRuntime, on_reload: Callable[[SiteRuntime, set[str]], None] | None = None) -> set[str]:
    try:
        tags = site.reload()
    except EdgesiteError as exc:
        log.error("%s: not reloaded, still serving %s: %s", site.name, site.manifest.version, exc)
        site.last_reload = {"error": str(exc)}
        return set()
    if tags:
        if on_reload is not None:
            on_reload(site, tags)
        site.warm()
    return tags


async def watch_site(site: SiteRuntime, stop: asyncio.Event,
                     on_reload: Callable[[SiteRuntime, set[str]], None] | None = None) -> None:
    """Watch until ``stop`` is set. ``on_reload(site, tags)`` runs after each purge."""
    while not stop.is_set():
        timeout = None
        if site.manifest.next_publish:
            due = dt.datetime.fromisoformat(site.manifest.next_publish)
            timeout = max(0.0, (due - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.05
        wake = asyncio.Event()
        waiter = asyncio.create_task(_wait_any(stop, wake, timeout))
        try:
            async for _changes in watchfiles.awatch(site.site.root, stop_event=_either(stop, wake), debounce=30, step=10,
                                                   watch_filter=lambda c, p: not _ignored(c, p), rust_timeout=1000,
                                                   yield_on_timeout=False):
                await asyncio.to_thread(reload_quietly, site, on_reload)
                if site.manifest.next_publish and timeout is None:
                    break  # a future-dated page appeared: start again with a timer
        finally:
            waiter.cancel()
        if not stop.is_set():
            await asyncio.to_thread(reload_quietly, site, on_reload)


class _either(asyncio.Event):
    """An event set when either of two events is (watchfiles takes one stop event)."""

    def __init__(self, a: asyncio.Event, b: asyncio.Event) -> None:
        super().__init__()
        self._a, self._b = a, b

    def is_set(self) -> bool:
        return self._a.is_set() or self._b.is_set()

    async def wait(self) -> bool:  # type: ignore[override]
        done, pending = await asyncio.wait([asyncio.create_task(self._a.wait()), asyncio.create_task(self._b.wait())],
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return True


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float | None) -> None:
    if timeout is None:
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout)
    except asyncio.TimeoutError:
        wake.set()


async def publish_on_time(site: SiteRuntime, stop: asyncio.Event) -> None:
    """Without watching, still recompile when the next future-dated (or expiring) page is due,
    so scheduled pages appear and expire at their dates. Checks the manifest every minute."""
    while not stop.is_set():
        delay = 60.0
        if site.manifest.next_publish:
            due = dt.datetime.fromisoformat(site.manifest.next_publish)
            delay = min(delay, max(0.0, (due - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.05)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except asyncio.TimeoutError:
            if site.manifest.next_publish and dt.datetime.fromisoformat(site.manifest.next_publish) <= dt.datetime.now(dt.timezone.utc):
                await asyncio.to_thread(reload_quietly, site)


def site_tasks(sites: list[SiteRuntime], stop: asyncio.Event, watch: bool) -> list[asyncio.Task[None]]:
    """What keeps a node's sites current until ``stop``: watching (which also publishes on
    time), or only the publishing timer."""
    loop = watch_site if watch else publish_on_time
    return [asyncio.create_task(loop(site, stop)) for site in sites]
