"""An edge node: an ASGI app that serves sites from its local cache and renders misses in
the site's isolate pool.

The hot path (a cache hit) is a path check, a dict lookup in the compiled route table, one
cache read (memory first, then disk) and a response; nothing else runs there. Misses of one
URL share one render (single flight); renders run in worker threads, off the event loop.
``/_edgesite/status`` and ``/_edgesite/purge`` are the node's API. With several sites, the
``Host`` header picks one (``<site>.localhost`` or the host of its ``base_url``); otherwise
the first site answers.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import os
import re
import secrets
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import deps
from .cache import Entry, Lookup, Purge, SiteCache
from .contract import RenderRequest
from .errors import EdgesiteError, IsolateError, RenderError
from .invalidate import changed_tags
from .isolate import InlinePool, Pool
from .routes import Compiler, Manifest
from .site import Site

log = logging.getLogger("edgesite.node")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
MAX_PATH = 2048
MAX_SEGMENT = 255
STATIC_PREFIX = "/static/"
_BAD_CHAR = re.compile(r"[\x00-\x1f\\]")


class BadPath(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def normalise_path(path: str) -> str:
    """Check a decoded request path. Raises BadPath (400/414) for NUL bytes, backslashes,
    dot segments (``..`` and ``%2e%2e`` alike: the server decodes before us) and overlong
    paths or segments; never maps anything outside the site's route table."""
    if len(path) > MAX_PATH:
        raise BadPath(414, "path too long")
    if not path.startswith("/"):
        raise BadPath(400, "path must start with /")
    bad = _BAD_CHAR.search(path)
    if bad is not None:
        raise BadPath(400, "backslash in path" if bad.group() == "\\" else "control character in path")
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise BadPath(400, "dot segment in path")
        if len(segment) > MAX_SEGMENT:
            raise BadPath(414, "path segment too long")
    while "//" in path:
        path = path.replace("//", "/")
    return path


@dataclass(frozen=True)
class Flight:
    """A render in progress that later misses of the same key may share: only while no purge
    and no version switch has happened since it began (``seq`` and ``version`` then)."""

    future: asyncio.Future[Entry]
    seq: int
    version: str


@dataclass
class SiteRuntime:
    """One site on this node: its compiled versions, its cache and its isolate pool."""

    site: Site
    compiler: Compiler
    manifest: Manifest
    cache: SiteCache
    pool: Pool
    versions_root: Path
    hosts: set[str] = field(default_factory=set)
    inflight: dict[str, "Flight"] = field(default_factory=dict)
    static_memo: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)
    refreshing: set[str] = field(default_factory=set)
    last_reload: dict[str, Any] = field(default_factory=dict)
    compile_error: EdgesiteError | None = None
    observers: list[Callable[["SiteRuntime", set[str]], None]] = field(default_factory=list)
    after_purge: list[Callable[["SiteRuntime", Purge, int], None]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.site.name

    def reload(self) -> set[str]:
        """Recompile from disk; if the version changed, switch to it, then purge exactly what
        changed (switch first: a render that starts after the purge must see the new version).
        Raises EdgesiteError on a compile error and keeps serving the old version (kept in
        ``compile_error`` until a compile succeeds). Each of ``observers`` is called, in the
        calling thread, after every reload that purged, failed, or cleared an earlier failure."""
        started = time.perf_counter()
        try:
            new = self.compiler.compile()
        except EdgesiteError as exc:
            self.compile_error = exc
            self.notify(set())
            raise
        failed_before, self.compile_error = self.compile_error, None
        if new.version == self.manifest.version:
            if failed_before:
                self.notify(set())
            return set()
        new.write(self.versions_root)
        old, self.manifest = self.manifest, new
        self.static_memo.clear()
        self.pool.recycle_all()  # renders in flight finish on their isolate; new ones start fresh
        tags = changed_tags(old, new)
        if tags:
            self.purge(Purge(tags=tuple(sorted(tags))))
        self.cache.note("version", new.version)
        self.last_reload = {"version": new.version, "tags": len(tags), "ms": round((time.perf_counter() - started) * 1000, 2)}
        log.info("%s: version %s, purged %d tags in %.1f ms", self.name, new.version, len(tags), self.last_reload["ms"])
        self.notify(tags)
        return tags

    def purge(self, purge: Purge) -> int:
        """Apply a purge to this site's cache (durable when it returns), then run the
        ``after_purge`` hooks an embedding application registered, e.g. to forward the purge
        to an upstream CDN. Returns the purge's sequence number. A failing hook is logged."""
        seq = self.cache.purge(purge)
        for hook in self.after_purge:
            try:
                hook(self, purge, seq)
            except Exception:
                log.exception("%s: after-purge hook %r failed", self.name, hook)
        return seq

    def notify(self, tags: set[str]) -> None:
        """Run the ``observers`` (the after-deploy hooks): after a new version is served and its
        purge applied (``tags``), and after a compile failed or recovered (empty ``tags``)."""
        for observer in self.observers:
            try:
                observer(self, tags)
            except Exception:
                log.exception("%s: observer %r failed", self.name, observer)

    def warm(self) -> None:
        """Start an isolate and render the home page once, so the first visitor after a start
        or a new version does not pay the isolate's cold start (~70 ms). Result discarded."""
        route = self.manifest.match("/") or {"kind": "not_found", "template": "404.html"}
        try:
            self.pool.render(RenderRequest("GET", "/", [], json.dumps(route), self.manifest.version))
        except EdgesiteError:
            pass


def open_site(path: str | Path, state_dir: Path, pool_factory: Callable[[Site, Path, Manifest], Pool] | None = None,
              *, include_drafts: bool | None = None) -> SiteRuntime:
    """Compile a site and set up its cache and pool under ``state_dir/sites/<name>``. If the
    cache survives from an earlier run, purge what changed since the version it last served."""
    site = Site.open(path)
    compiler = Compiler(site, include_drafts=include_drafts)
    manifest = compiler.compile()
    root = state_dir / "sites" / site.name
    versions_root = root / "versions"
    manifest.write(versions_root)
    cache = open_cache(root / "cache", manifest, versions_root)
    factory = pool_factory or (lambda s, v, m: InlinePool(s.name, s.root, v, m.config.isolate if m.config else None))
    pool = factory(site, versions_root, manifest)
    return SiteRuntime(site=site, compiler=compiler, manifest=manifest, cache=cache, pool=pool,
                       versions_root=versions_root, hosts=site_hosts(site.name, manifest))


def open_cache(directory: Path, manifest: Manifest, versions_root: Path) -> SiteCache:
    """A site's cache, made current for ``manifest``: if it holds pages of another version it
    served before (a restart, a deploy while away), purge exactly what differs (everything,
    if that version's manifest is gone)."""
    cache = SiteCache(directory)
    previous = cache.note("version")
    if previous and previous != manifest.version:
        try:
            old = Manifest.read(str(versions_root / previous / "manifest.json"))
            cache.purge(Purge(tags=tuple(sorted(changed_tags(old, manifest)))))
        except (OSError, ValueError, TypeError):
            cache.purge(Purge(everything=True))
    cache.note("version", manifest.version)
    return cache


def site_hosts(name: str, manifest: Manifest) -> set[str]:
    """The Host names that choose a site on a node serving several: ``<name>.localhost``,
    ``<name>``, and the host of its ``base_url`` unless that is loopback."""
    hosts = {f"{name}.localhost", name}
    base_host = urllib.parse.urlsplit(manifest.site["base_url"]).hostname
    if base_host and base_host not in ("127.0.0.1", "localhost"):
        hosts.add(base_host)
    return hosts


def error_page(status: int, title: str, exc: EdgesiteError | None, site_root: Path | None) -> str:
    """An HTML page naming the error, its file and line, and the lines around it."""
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{status} {html.escape(title)}</title>",
             "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
             "pre{background:#f6f6f6;padding:1rem;overflow:auto}.hl{background:#ffd7d7;display:block}</style></head><body>",
             f"<h1>{status} {html.escape(title)}</h1>"]
    if exc is not None:
        parts.append(f"<p><strong>{html.escape(exc.kind)}</strong>: {html.escape(exc.message)}</p>")
        if exc.file:
            parts.append(f"<p>in <code>{html.escape(exc.where())}</code></p>")
            snippet = _snippet(site_root, exc.file, exc.line) if site_root else ""
            if snippet:
                parts.append(f"<pre>{snippet}</pre>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _snippet(site_root: Path, file: str, line: int, around: int = 3) -> str:
    if line <= 0:
        return ""
    target = (site_root / file).resolve()
    if not target.is_relative_to(site_root.resolve()) or not target.is_file():
        return ""
    lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
    out = []
    for n in range(max(1, line - around), min(len(lines), line + around) + 1):
        text = f"{n:4d} | {html.escape(lines[n - 1])}"
        out.append(f'<span class="hl">{text}</span>' if n == line else text + "\n")
    return "".join(out)


class EdgeNode:
    """The ASGI app of one edge node."""

    def __init__(self, sites: list[SiteRuntime], *, node_id: str | None = None, token: str, isolation: str = "none") -> None:
        if not sites:
            raise EdgesiteError("a node needs at least one site")
        self.sites = sites
        self.by_host = {host: s for s in sites for host in s.hosts}
        self.node_id = node_id or f"{socket.gethostname()}-{os.getpid()}"
        self.token = token
        self.isolation = isolation
        self.started = time.time()
        self.background: set[asyncio.Task[Any]] = set()

    # -- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_edgesite/"):
            await self._api(scope, receive, send, path)
            return
        site = self._site_for(scope)
        try:
            path = normalise_path(path)
        except BadPath as bad:
            await self._send(send, scope, bad.status, [(b"content-type", b"text/plain; charset=utf-8")], f"{bad.status} {bad.reason}\n".encode())
            return
        method = scope["method"]
        if path.startswith(STATIC_PREFIX):
            await self._static(scope, send, site, path)
            return
        manifest = site.manifest
        route = manifest.match(path)
        if route is None and not path.endswith("/") and manifest.match(path + "/") is not None:
            location = path + "/" + (("?" + scope["query_string"].decode("latin-1")) if scope["query_string"] else "")
            await self._send(send, scope, 301, [(b"location", location.encode("latin-1", "replace")), (b"content-type", b"text/plain")], b"")
            return
        if route is None:
            route = {"kind": "not_found", "template": "404.html"}
        if method not in ("GET", "HEAD") and route["kind"] != "worker":
            await self._send(send, scope, 405, [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain")], b"405 Method Not Allowed\n")
            return
        key = path
        if route["kind"] == "worker" and scope["query_string"]:
            key = f"{path}?{scope['query_string'].decode('latin-1')}"
        entry, state = site.cache.get(key) if method in ("GET", "HEAD") else (None, Lookup.MISS)
        if entry is None or state is Lookup.MISS:
            try:
                entry = await self._render_shared(site, key, route, scope, manifest)
            except EdgesiteError as exc:
                await self._error(scope, send, site, exc)
                return
        elif state is Lookup.STALE:
            self._refresh(site, key, route, scope)
        await self._respond(scope, send, site, entry, state)

    def _site_for(self, scope: Scope) -> SiteRuntime:
        if len(self.sites) == 1:
            return self.sites[0]
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").rsplit(":", 1)[0] if not value.startswith(b"[") else value.decode("latin-1")
                return self.by_host.get(host, self.sites[0])
        return self.sites[0]

    # -- rendering ---------------------------------------------------------------------------
    async def _render_shared(self, site: SiteRuntime, key: str, route: dict[str, Any], scope: Scope, manifest: Manifest) -> Entry:
        """Concurrent misses of one key share one render, unless a purge or a new version came
        between: a request that arrives after a purge returned never joins a render that began
        before it."""
        running = site.inflight.get(key)
        if running is not None and running.seq == site.cache.seq and running.version == manifest.version:
            return await asyncio.shield(running.future)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        flight = Flight(future, site.cache.seq, manifest.version)
        site.inflight[key] = flight
        try:
            entry = await self._render(site, key, route, scope, manifest)
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) get it too
            raise
        finally:
            if site.inflight.get(key) is flight:
                del site.inflight[key]

    async def _render(self, site: SiteRuntime, key: str, route: dict[str, Any], scope: Scope, manifest: Manifest) -> Entry:
        seq = site.cache.snapshot()
        url = scope["path"] + (("?" + scope["query_string"].decode("latin-1")) if scope["query_string"] else "")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k in (b"accept", b"accept-language", b"user-agent")]
        req = RenderRequest(method=scope["method"], url=url, headers=headers, route=json.dumps(route), version=manifest.version)
        resp = await asyncio.to_thread(site.pool.render, req)

        def build() -> Entry:
            tags = list(resp.inputs) + deps.path_tags(key.split("?", 1)[0])
            return Entry.build(resp.status, list(resp.headers), resp.body.encode("utf-8"), seq, tags)

        entry = await asyncio.to_thread(build)
        if scope["method"] in ("GET", "HEAD") and entry.status in (200, 301, 404):
            site.cache.put(key, entry)
        return entry

    def _refresh(self, site: SiteRuntime, key: str, route: dict[str, Any], scope: Scope) -> None:
        """A stale hit: re-render once in the background while stale copies are served."""
        if key in site.refreshing or key in site.inflight:
            return
        site.refreshing.add(key)

        async def run() -> None:
            try:
                await self._render_shared(site, key, route, scope, site.manifest)
            except EdgesiteError as exc:
                log.warning("%s: background re-render of %s failed: %s", site.name, key, exc)
            finally:
                site.refreshing.discard(key)

        task = asyncio.get_running_loop().create_task(run())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # -- responses ---------------------------------------------------------------------------
    async def _respond(self, scope: Scope, send: Send, site: SiteRuntime, entry: Entry, state: Lookup) -> None:
        accept = b""
        inm = None
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept = value
            elif name == b"if-none-match":
                inm = value
        body, encoding, etag = entry.body, None, entry.etag
        if entry.br is not None and b"br" in accept:
            body, encoding, etag = entry.br, b"br", etag + "-br"
        elif entry.gzip is not None and b"gzip" in accept:
            body, encoding, etag = entry.gzip, b"gzip", etag + "-gz"
        headers = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in entry.headers]
        headers += [
            (b"etag", f'"{etag}"'.encode()),
            (b"cache-control", (site.manifest.config.browser_cache if site.manifest.config else "no-cache").encode()),
            (b"x-cache", state.value.encode() if state is not Lookup.MISS else b"MISS"),
            (b"x-served-by", self.node_id.encode()),
        ]
        if entry.gzip is not None:
            headers.append((b"vary", b"Accept-Encoding"))
        if encoding:
            headers.append((b"content-encoding", encoding))
        if inm is not None and entry.status == 200 and _etag_matches(inm, entry.etag):
            await send({"type": "http.response.start", "status": 304, "headers": [h for h in headers if h[0] != b"content-type"]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self._send(send, scope, entry.status, headers, body)

    async def _send(self, send: Send, scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    async def _error(self, scope: Scope, send: Send, site: SiteRuntime, exc: EdgesiteError) -> None:
        if isinstance(exc, IsolateError):
            status = {"busy": 503, "timeout": 504}.get(exc.cause, 500)
            title = {"timeout": "Isolate exceeded its time limit", "memory": "Isolate exceeded its memory limit",
                     "busy": "All isolates busy", "trap": "Isolate trapped"}.get(exc.cause, "Isolate error")
        elif isinstance(exc, RenderError):
            status, title = 500, "Render error"
        else:
            status, title = 500, "Error"
        log.error("%s %s: %s", site.name, scope["path"], exc)
        body = error_page(status, title, exc, site.site.root).encode()
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
                   (b"x-cache", b"MISS"), (b"x-served-by", self.node_id.encode()),
                   (b"x-edgesite-error", f"{exc.kind}: {exc.where()}".encode("latin-1", "replace"))]
        await self._send(send, scope, status, headers, body)

    async def _static(self, scope: Scope, send: Send, site: SiteRuntime, path: str) -> None:
        """Static files never enter an isolate. Fingerprinted URLs are immutable."""
        manifest = site.manifest
        rel = manifest.static_paths.get(path)
        fingerprinted = rel is not None and manifest.static.get(rel) == path and not path.endswith("/" + rel)
        if rel is None:
            candidate = path[len(STATIC_PREFIX):]
            rel = candidate if candidate in manifest.static else None
        if rel is None:
            await self._send(send, scope, 404, [(b"content-type", b"text/plain")], b"404 Not Found\n")
            return
        memo = site.static_memo.get(rel)
        if memo is None:
            data = await asyncio.to_thread((site.site.root / "static" / rel).read_bytes)
            memo = (data, manifest.inputs.get(f"static/{rel}", ""), _content_type(rel))
            site.static_memo[rel] = memo
        data, etag, ctype = memo
        config = manifest.config
        cache_control = config.static_cache if (fingerprinted and config) else "public, max-age=0, must-revalidate"
        headers = [(b"content-type", ctype.encode()), (b"etag", f'"{etag}"'.encode()), (b"cache-control", cache_control.encode()),
                   (b"x-served-by", self.node_id.encode())]
        for name, value in scope["headers"]:
            if name == b"if-none-match" and _etag_matches(value, etag):
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        await self._send(send, scope, 200, headers, data)

    # -- API ---------------------------------------------------------------------------------
    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        if path == "/_edgesite/status" and scope["method"] == "GET":
            await self._json(scope, send, 200, self.status())
            return
        if path == "/_edgesite/purge":
            if scope["method"] != "POST":
                await self._json(scope, send, 405, {"error": "use POST"})
                return
            auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not auth.startswith("Bearer ") or not hmac.compare_digest(auth[7:].strip(), self.token):
                await self._json(scope, send, 401, {"error": "missing or wrong bearer token"})
                return
            body = await read_body(receive)
            try:
                purge, site_names = parse_purge(body)
            except ValueError as exc:
                await self._json(scope, send, 400, {"error": str(exc)})
                return
            started = time.perf_counter()
            applied = {}
            for site in self.sites:
                if site_names is None or site.name in site_names:
                    applied[site.name] = site.purge(purge)
            await self._json(scope, send, 200, {"node": self.node_id, "purged": applied,
                                                 "ms": round((time.perf_counter() - started) * 1000, 3)})
            return
        await self._json(scope, send, 404, {"error": f"no such endpoint {path}"})

    async def _json(self, scope: Scope, send: Send, status: int, data: dict[str, Any]) -> None:
        await self._send(send, scope, status, [(b"content-type", b"application/json")], json.dumps(data).encode())

    def status(self) -> dict[str, Any]:
        sites = {}
        for site in self.sites:
            sites[site.name] = {"version": site.manifest.version, "routes": len(site.manifest.routes),
                                "cache": site.cache.stats(), "isolates": site.pool.stats(), "last_reload": site.last_reload}
        first = self.sites[0]
        return {"node": self.node_id, "isolation": self.isolation, "site": first.name, "version": first.manifest.version,
                "entries": first.cache.stats()["entries"], "hits": sum(s.cache.hits for s in self.sites),
                "misses": sum(s.cache.misses for s in self.sites), "uptime_s": round(time.time() - self.started, 1),
                "sites": sites}

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in list(self.background):
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def read_body(receive: Receive) -> bytes:
    """The whole body of an ASGI request."""
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


def parse_purge(body: bytes) -> tuple[Purge, set[str] | None]:
    """The JSON body of a purge request -> Purge. Raises ValueError naming what is wrong."""
    try:
        raw = json.loads(body or b"{}")
    except ValueError:
        raise ValueError("body must be JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(raw) - {"urls", "tags", "prefixes", "everything", "soft", "sites"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    lists = {}
    for name in ("urls", "tags", "prefixes"):
        value = raw.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings")
        lists[name] = tuple(value)
    for url in lists["urls"] + lists["prefixes"]:
        if not url.startswith("/"):
            raise ValueError(f"URL {url!r} must start with /")
    everything, soft = raw.get("everything", False), raw.get("soft", False)
    if not isinstance(everything, bool) or not isinstance(soft, bool):
        raise ValueError("everything and soft must be true or false")
    if not (lists["urls"] or lists["tags"] or lists["prefixes"] or everything):
        raise ValueError("nothing to purge: give urls, tags, prefixes or everything")
    sites = raw.get("sites")
    return Purge(urls=lists["urls"], tags=lists["tags"], prefixes=lists["prefixes"], everything=everything, soft=soft), (set(sites) if sites else None)


def _etag_matches(header: bytes, etag: str) -> bool:
    if header.strip() == b"*":
        return True
    for candidate in header.decode("latin-1").split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        if tag.split("-", 1)[0] == etag:
            return True
    return False


_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "png": "image/png",
          "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "svg": "image/svg+xml", "webp": "image/webp",
          "ico": "image/x-icon", "woff2": "font/woff2", "woff": "font/woff", "json": "application/json",
          "txt": "text/plain; charset=utf-8", "html": "text/html; charset=utf-8", "xml": "application/xml", "pdf": "application/pdf"}


def _content_type(rel: str) -> str:
    return _TYPES.get(rel.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def load_or_create_token(state_dir: Path, given: str | None = None) -> str:
    """The node's purge token: the one given, else the one kept in ``state_dir/token``,
    else a new random one written there (readable by its owner only)."""
    if given:
        return given
    path = state_dir / "token"
    if path.is_file():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token
