"""Versioned deploys: a site's version as a manifest plus content-addressed blobs, and how a
node materialises one into its own bundle and switches to it.

A version is immutable and named by the hash of its inputs (``routes.Manifest.version``);
every input file is a blob named by its own hash (``Manifest.inputs``), so a node fetches only
the blobs it lacks and an edit of one file moves one blob. A node never renders from the
author's folder: each version is materialised (hard links into the node's blob store) into
``bundles/<version>/``, and the isolates of that version see only that folder.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import Purge
from .contract import RenderRequest, RenderResponse
from .errors import EdgesiteError
from .invalidate import changed_tags
from .isolate import Pool
from .node import SiteRuntime, open_cache, site_hosts
from .routes import MANIFEST_FILE, Compiler, Manifest, digest
from .site import SITE_FILE, Site, parse_config

PoolFactory = Callable[[Site, Path, Manifest], Pool]


@dataclass(frozen=True)
class Version:
    """One deployed version of one site, as the control plane holds it."""

    site: str
    version: str
    manifest: dict[str, Any]  # Manifest.to_json(): its ``inputs`` name every blob
    raw: bytes | None = field(default=None, compare=False, repr=False)  # that JSON as received, if it was

    @property
    def blobs(self) -> set[str]:
        return set(self.manifest["inputs"].values())


@dataclass(frozen=True)
class DeployResult:
    """What a deploy or a rollback did: the switch's log seq and each node's time to apply it."""

    site: str
    version: str
    previous: str | None
    seq: int
    blobs_sent: int
    nodes: dict[str, float] = field(default_factory=dict)
    down: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "version": self.version, "previous": self.previous, "seq": self.seq,
                "blobs_sent": self.blobs_sent, "nodes": self.nodes, "down": list(self.down)}


class BlobStore:
    """Files named by the hash of their bytes (``routes.digest``); written once, never changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, blob: str) -> Path:
        return self.root / blob[:2] / blob

    def has(self, blob: str) -> bool:
        return self.path(blob).is_file()

    def missing(self, blobs: set[str] | list[str]) -> list[str]:
        return sorted(b for b in set(blobs) if not self.has(b))

    def put(self, blob: str, data: bytes) -> None:
        """Store ``data`` under ``blob``. Raises EdgesiteError if the bytes do not hash to it."""
        if digest(data) != blob:
            raise EdgesiteError(f"blob {blob} does not match its content")
        target = self.path(blob)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{blob}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def put_many(self, found: dict[str, bytes]) -> None:
        for blob, data in found.items():
            self.put(blob, data)

    def get(self, blob: str) -> bytes:
        return self.path(blob).read_bytes()


def package(compiler: Compiler, blobs: BlobStore) -> tuple[Version, int]:
    """Compile the author's folder into a Version and copy its new inputs into ``blobs``;
    returns the version and how many blobs were new (one, after an edit of one file).
    A file that changes between compile and copy makes the compile start again."""
    for _attempt in range(5):
        manifest = compiler.compile()
        new = 0
        try:
            for rel, blob in manifest.inputs.items():
                if not blobs.has(blob):
                    blobs.put(blob, (compiler.site.root / rel).read_bytes())
                    new += 1
        except (EdgesiteError, FileNotFoundError):
            continue  # edited (or removed) while we read it
        return Version(compiler.site.name, manifest.version, manifest.to_json()), new
    raise EdgesiteError(f"{compiler.site.name}: the site kept changing while it was being packaged")


def materialise(version: Version, blobs: BlobStore, bundles: Path) -> Path:
    """The version's files as a folder ``bundles/<version>`` (hard links to the blobs), made in
    a temporary folder and renamed into place, so a bundle is complete or absent."""
    target = bundles / version.version
    if target.is_dir():
        return target
    tmp = bundles / f".{version.version}.{os.getpid()}.{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, blob in version.manifest["inputs"].items():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(blobs.path(blob), dest)
        except OSError:
            shutil.copyfile(blobs.path(blob), dest)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another thread made it first
    return target


def load_manifest(version: Version, bundle: Path, versions_root: Path) -> Manifest:
    """The Manifest of a materialised version, with its SiteConfig (read from the bundle)."""
    manifest = Manifest.from_json(version.manifest)
    manifest.config = parse_config((bundle / SITE_FILE).read_text(encoding="utf-8"))
    target = versions_root / version.version / MANIFEST_FILE
    if version.raw is not None and not target.exists():  # as received: no second dump of a large manifest
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{MANIFEST_FILE}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(version.raw)
        os.replace(tmp, target)
    manifest.write(versions_root)
    return manifest


class VersionedPool:
    """One pool per deployed version, chosen by ``RenderRequest.version``: a render that began
    on the old version finishes in the old version's isolates (and bundle); new renders use the
    new one. A pool that is no longer current closes when its last render returns."""

    def __init__(self, name: str, versions_root: Path, bundles: Path, factory: PoolFactory) -> None:
        self.name, self.versions_root, self.bundles, self.factory = name, versions_root, bundles, factory
        self._lock = threading.Lock()
        self._pools: dict[str, Pool] = {}
        self._busy: dict[str, int] = {}
        self._manifests: dict[str, Manifest] = {}  # the current version's, so its pool starts without a re-read
        self.current = ""

    def _pool(self, version: str) -> Pool:
        with self._lock:
            pool = self._pools.get(version)
            if pool is None:
                bundle = self.bundles / version
                manifest = self._manifests.get(version)
                if manifest is None:  # an old version, asked for by a render that began before a switch
                    manifest = Manifest.from_json(json.loads((self.versions_root / version / MANIFEST_FILE).read_text()))
                    manifest.config = parse_config((bundle / SITE_FILE).read_text(encoding="utf-8"))
                pool = self._pools[version] = self.factory(Site(root=bundle, name=self.name), self.versions_root, manifest)
            self._busy[version] = self._busy.get(version, 0) + 1
            return pool

    def _done(self, version: str) -> None:
        with self._lock:
            self._busy[version] -= 1
            if self._busy[version] == 0 and version != self.current:
                self._pools.pop(version).close()
                del self._busy[version]

    def switch(self, version: str, manifest: Manifest | None = None) -> None:
        with self._lock:
            self.current = version
            self._manifests = {version: manifest} if manifest is not None else {}
            for old in [v for v in self._pools if v != version and not self._busy.get(v)]:
                self._pools.pop(old).close()
                self._busy.pop(old, None)

    def render(self, req: RenderRequest) -> RenderResponse:
        pool = self._pool(req.version)
        try:
            return pool.render(req)
        finally:
            self._done(req.version)

    def recycle_all(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.recycle_all()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            pool = self._pools.get(self.current)
        return {"versions": len(self._pools), **(pool.stats() if pool else {"live": 0})}

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def open_deployed(version: Version, root: Path, factory: PoolFactory) -> SiteRuntime:
    """A SiteRuntime serving ``version`` from a bundle under ``root`` (``<state>/sites/<name>``),
    with the site's cache there. The version must be materialised. If the cache holds pages of
    an earlier version, what differs is purged first (everything, if that version is gone)."""
    bundle, versions_root = root / "bundles" / version.version, root / "versions"
    manifest = load_manifest(version, bundle, versions_root)
    cache = open_cache(root / "cache", manifest, versions_root)
    pool = VersionedPool(version.site, versions_root, root / "bundles", factory)
    pool.switch(manifest.version, manifest)
    site = Site(root=bundle, name=version.site)
    return SiteRuntime(site=site, compiler=Compiler(site), manifest=manifest, cache=cache, pool=pool,
                       versions_root=versions_root, hosts=site_hosts(site.name, manifest))


def switch(runtime: SiteRuntime, version: Version, root: Path, manifest: Manifest | None = None,
           tags: set[str] | None = None) -> set[str]:
    """Switch a running site to a materialised version, then purge exactly what differs
    (switch first: a render that starts after the purge must see the new version). Call on the
    node's event loop, so no request runs between the switch and the purge. ``manifest`` and
    ``tags`` may be prepared off the loop (``prepare``)."""
    manifest = manifest or load_manifest(version, root / "bundles" / version.version, root / "versions")
    old = runtime.manifest
    if old.version == manifest.version:
        return set()
    if tags is None:
        tags = changed_tags(old, manifest)
    pool = runtime.pool
    if isinstance(pool, VersionedPool):
        pool.switch(manifest.version, manifest)
    runtime.site = Site(root=root / "bundles" / version.version, name=version.site)
    runtime.manifest = manifest
    runtime.static_memo.clear()
    if tags:
        runtime.purge(Purge(tags=tuple(sorted(tags))))
    runtime.cache.note("version", manifest.version)
    runtime.last_reload = {"version": manifest.version, "tags": len(tags)}
    runtime.notify(tags)
    return tags


def prepare(runtime: SiteRuntime, version: Version, root: Path, previous: str | None = None,
            tags: list[str] | None = None) -> tuple[Manifest, set[str]]:
    """The work of a switch that can run in a thread: load the manifest and diff it against
    what the site serves now. ``tags`` computed once by the control plane for the switch from
    ``previous`` are used when the site is at ``previous`` (the common case); a node that
    skipped versions diffs for itself. Only the current version is read, so call this on the
    loop's thread or accept that a concurrent switch makes the caller recompute."""
    manifest = load_manifest(version, root / "bundles" / version.version, root / "versions")
    current = runtime.manifest
    if tags is not None and previous == current.version:
        return manifest, set(tags)
    return manifest, changed_tags(current, manifest)
