"""A node's page cache: diskcache on the node's own disk, purged by generation counters.

Every purge takes the next sequence number ``seq`` and stamps it on each tag it purges (hard
or soft). A render snapshots ``seq`` before it reads anything; its entry keeps that number and
its tags. A lookup is a HIT only if no tag of the entry was purged after the snapshot; if one
was soft-purged it is STALE (served while one re-render runs); if hard-purged, a MISS. So:
- purging a tag used by 10,000 pages is one dict write, not a scan;
- a render that began before a purge is never served after the purge returns, even if it
  finishes and stores its entry afterwards (the race naive purge-then-store designs lose);
- space comes back lazily through diskcache's size limit.
The generations live in memory (the hot path reads no disk for them) and are written through
to disk before a purge returns, so a restarted node forgets no purge.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import brotli
import diskcache

EVERYTHING = "*"
COMPRESSIBLE = ("text/", "application/json", "application/xml", "application/atom+xml", "application/javascript", "image/svg+xml")


class Lookup(Enum):
    HIT = "HIT"
    STALE = "STALE"
    MISS = "MISS"


@dataclass(frozen=True)
class Entry:
    """One cached response, with its precompressed variants and what invalidates it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    gzip: bytes | None
    br: bytes | None
    etag: str
    made_seq: int
    made_at: float
    tags: tuple[str, ...]
    size: int = field(default=0)

    @classmethod
    def build(cls, status: int, headers: list[tuple[str, str]], body: bytes, made_seq: int, tags: list[str]) -> "Entry":
        """Compress once, at store time (off the event loop), so hits only pick a variant."""
        ctype = next((v for k, v in headers if k == "content-type"), "")
        compressible = len(body) >= 256 and ctype.startswith(COMPRESSIBLE)
        gz = gzip.compress(body, compresslevel=6, mtime=0) if compressible else None
        br = brotli.compress(body, quality=5) if compressible else None
        etag = hashlib.sha256(body).hexdigest()[:20]
        size = len(body) + len(gz or b"") + len(br or b"")
        return cls(status, tuple(headers), body, gz, br, etag, made_seq, time.time(), tuple(sorted(set(tags))), size)


@dataclass(frozen=True)
class Purge:
    """What to purge. ``everything`` purges every entry of the site."""

    urls: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    everything: bool = False
    soft: bool = False

    def as_tags(self) -> list[str]:
        tags = list(self.tags) + [f"path:{u}" for u in self.urls]
        tags += [f"prefix:{p if p.endswith('/') else p + '/'}" for p in self.prefixes]
        if self.everything:
            tags.append(EVERYTHING)
        return tags


class SiteCache:
    """The cache of one site on one node (its own directory: sites never share entries)."""

    def __init__(self, directory: Path, *, size_limit: int = 2**30, memory_limit: int = 64 * 2**20) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._disk = diskcache.Cache(str(directory / "entries"), size_limit=size_limit,
                                     eviction_policy="least-recently-stored")
        self._gens = diskcache.Cache(str(directory / "generations"))
        self._lock = threading.Lock()
        self.hard: dict[str, int] = {}
        self.soft: dict[str, int] = {}
        for key in self._gens.iterkeys():
            if not str(key).startswith(("h:", "s:")):
                continue
            kind, _, tag = str(key).partition(":")
            (self.hard if kind == "h" else self.soft)[tag] = int(self._gens[key])
        self.seq = int(self._gens.get("seq", 0))
        self._memory: OrderedDict[str, Entry] = OrderedDict()
        self._memory_bytes = 0
        self._memory_limit = memory_limit
        self.hits = self.misses = self.stale = 0

    def snapshot(self) -> int:
        """Call before a render reads anything; store its entry with this number."""
        return self.seq

    def state(self, entry: Entry) -> Lookup:
        """Is an entry current? Pure memory lookups: one per tag."""
        made, hard, soft = entry.made_seq, self.hard, self.soft
        if hard.get(EVERYTHING, 0) > made:
            return Lookup.MISS
        stale = soft.get(EVERYTHING, 0) > made
        for tag in entry.tags:
            if hard.get(tag, 0) > made:
                return Lookup.MISS
            if not stale and soft.get(tag, 0) > made:
                stale = True
        return Lookup.STALE if stale else Lookup.HIT

    def get(self, key: str) -> tuple[Entry | None, Lookup]:
        entry = self._memory.get(key)
        if entry is None:
            entry = self._disk.get(key)
            if entry is not None:
                self._remember(key, entry)
        if entry is None:
            self.misses += 1
            return None, Lookup.MISS
        state = self.state(entry)
        if state is Lookup.HIT:
            self.hits += 1
        elif state is Lookup.STALE:
            self.stale += 1
        else:
            self.misses += 1
        return entry, state

    def put(self, key: str, entry: Entry) -> bool:
        """Store an entry unless a purge since its snapshot already made it stale."""
        if self.state(entry) is not Lookup.HIT:
            return False
        self._disk.set(key, entry)
        self._remember(key, entry)
        return True

    def _remember(self, key: str, entry: Entry) -> None:
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_bytes -= old.size
        self._memory[key] = entry
        self._memory_bytes += entry.size
        while self._memory_bytes > self._memory_limit and self._memory:
            _, dropped = self._memory.popitem(last=False)
            self._memory_bytes -= dropped.size

    def purge(self, purge: Purge) -> int:
        """Apply a purge; returns its sequence number. Durable when it returns."""
        tags = purge.as_tags()
        with self._lock:
            self.seq += 1
            seq = self.seq
            table, kind = (self.soft, "s") if purge.soft else (self.hard, "h")
            with self._gens.transact():
                for tag in tags:
                    self._gens[f"{kind}:{tag}"] = seq
                self._gens["seq"] = seq
            for tag in tags:
                table[tag] = seq
        return seq

    def note(self, key: str, value: str | None = None) -> str | None:
        """Read (or write) a small durable note beside the generations, e.g. the last version served."""
        if value is not None:
            self._gens[f"note:{key}"] = value
        found = self._gens.get(f"note:{key}")
        return str(found) if found is not None else None

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._disk), "hits": self.hits, "misses": self.misses, "stale": self.stale,
                "bytes": int(self._disk.volume()), "purge_seq": self.seq}

    def close(self) -> None:
        self._disk.close()
        self._gens.close()
