"""The dev server behind ``edgesite dev``: one node rendering in-process, watching, and live reload.

``DevServer`` is an ASGI app in front of an ``EdgeNode``. It adds a small script to every HTML
page it serves; the script opens ``/_edgesite/livereload?url=<path>&etag=<etag>`` (server-sent
events). After every reload of the site (``SiteRuntime.observers``: a purge, a failed compile,
or a recovery from one) the dev server checks each open page once:

- its cache entry is still valid and has the page's ETag: the page is unaffected
  (``event: unchanged``);
- otherwise it re-renders the URL (which also warms the cache for the reload) and compares:
  new bytes -> ``event: reload``; a render or compile error -> ``event: overlay`` with the
  kind, message, file, line and the lines around it; the same bytes as the page, after an
  overlay -> ``event: clear``; the same bytes -> ``event: unchanged``.

Every open page gets exactly one of these events per reload, in order, so a client (or a
test) knows when the check for an edit is over. On connecting it gets ``event: hello``.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import Lookup
from .errors import EdgesiteError
from .node import EdgeNode, Receive, Scope, Send, SiteRuntime

log = logging.getLogger("edgesite.dev")
LIVERELOAD = "/_edgesite/livereload"
SCRIPT_URL = "/_edgesite/livereload.js"
KEEPALIVE_S = 15.0
AROUND = 3


@dataclass(eq=False)
class Client:
    """One open page: its URL, the ETag of the bytes it shows, its event queue."""

    url: str
    etag: str
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = field(default_factory=asyncio.Queue)
    overlay: dict[str, Any] | None = None


@dataclass
class Fetched:
    status: int
    etag: str
    error: dict[str, Any] | None


class DevNode(EdgeNode):
    """An EdgeNode that remembers the last render error of each URL (for the overlay)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.render_errors: dict[str, EdgesiteError] = {}

    async def _error(self, scope: Scope, send: Send, site: SiteRuntime, exc: EdgesiteError) -> None:
        self.render_errors[scope["path"]] = exc
        await super()._error(scope, send, site, exc)


def overlay_data(exc: EdgesiteError, site_root: Path, url: str) -> dict[str, Any]:
    """What the overlay shows: kind, message, file, line and up to AROUND lines either side."""
    lines: list[list[Any]] = []
    if exc.file and exc.line > 0:
        target = (site_root / exc.file).resolve()
        if target.is_relative_to(site_root.resolve()) and target.is_file():
            text = target.read_text(encoding="utf-8", errors="replace").splitlines()
            for n in range(max(1, exc.line - AROUND), min(len(text), exc.line + AROUND) + 1):
                lines.append([n, text[n - 1]])
    return {"url": url, "kind": exc.kind, "message": exc.message, "file": exc.file, "line": exc.line, "lines": lines}


class DevServer:
    """The ASGI app of ``edgesite dev``: the node, plus live reload and the error overlay."""

    def __init__(self, node: DevNode) -> None:
        if len(node.sites) != 1:
            raise EdgesiteError("edgesite dev serves one site")
        self.node = node
        self.site = node.sites[0]
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock: asyncio.Lock | None = None
        self.checks = 0
        self.site.observers.append(self._observe)

    # -- reload checks -------------------------------------------------------------------------
    def _observe(self, site: SiteRuntime, tags: set[str]) -> None:
        """Called by SiteRuntime.reload, in the watcher's thread."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._start_check)

    def _start_check(self) -> None:
        task = asyncio.get_running_loop().create_task(self.check())
        self.node.background.add(task)
        task.add_done_callback(self.node.background.discard)

    async def check(self) -> None:
        """Tell every open page whether the latest reload affected it (one event each)."""
        assert self.lock is not None
        async with self.lock:
            self.checks += 1
            site = self.site
            compile_error = site.compile_error
            fetched: dict[str, Fetched] = {}
            for client in list(self.clients):
                if compile_error is not None:
                    data = overlay_data(compile_error, site.site.root, client.url)
                    self._tell(client, "overlay", data)
                    continue
                if client.overlay is None and client.etag:
                    entry, state = site.cache.get(client.url)
                    if entry is not None and state is Lookup.HIT and entry.etag == client.etag:
                        self._tell(client, "unchanged", {"url": client.url, "version": site.manifest.version})
                        continue
                if client.url not in fetched:
                    fetched[client.url] = await self.fetch(client.url)
                got = fetched[client.url]
                if got.error is not None:
                    self._tell(client, "overlay", got.error)
                elif got.etag != client.etag:
                    self._tell(client, "reload", {"url": client.url, "version": site.manifest.version})
                elif client.overlay is not None:
                    self._tell(client, "clear", {"url": client.url, "version": site.manifest.version})
                else:
                    self._tell(client, "unchanged", {"url": client.url, "version": site.manifest.version})

    def _tell(self, client: Client, event: str, data: dict[str, Any]) -> None:
        if event == "overlay":
            client.overlay = data
        elif event in ("clear", "reload"):
            client.overlay = None
        client.queue.put_nowait((event, data))

    async def fetch(self, url: str) -> Fetched:
        """Render ``url`` through the node, as a browser reload would (and so warm its cache)."""
        path, _, query = url.partition("?")
        scope: Scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                        "headers": [(b"host", b"localhost")], "http_version": "1.1", "scheme": "http"}
        start: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)

        self.node.render_errors.pop(path, None)
        await self.node(scope, receive, send)
        headers = dict(start.get("headers", []))
        status = int(start.get("status", 500))
        exc = self.node.render_errors.get(path)
        error = overlay_data(exc, self.site.site.root, url) if (exc is not None and status >= 500) else None
        return Fetched(status, _etag(headers.get(b"etag", b"")), error)

    # -- ASGI ----------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.loop is None and scope["type"] in ("http", "lifespan"):
            self.loop = asyncio.get_running_loop()
            self.lock = asyncio.Lock()
        if scope["type"] != "http":
            await self.node(scope, receive, send)
            return
        if scope["path"] == LIVERELOAD:
            await self._events(scope, receive, send)
            return
        if scope["path"] == SCRIPT_URL:
            body = SCRIPT.encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/javascript; charset=utf-8"), (b"cache-control", b"no-cache"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        # identity bodies only, so the script can be added
        scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"accept-encoding"])
        await self.node(scope, receive, _Injector(send, head=scope["method"] == "HEAD"))

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = urllib.parse.parse_qs(scope["query_string"].decode("latin-1"))
        url = query.get("url", ["/"])[0] or "/"
        if not url.startswith("/"):
            url = "/"
        client = Client(url=url, etag=_etag(query.get("etag", [""])[0].encode()))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store"),
                                (b"x-accel-buffering", b"no")]})
        self.clients.add(client)
        disconnected = asyncio.get_running_loop().create_task(_wait_disconnect(receive))
        try:
            await send({"type": "http.response.body", "body": _sse("hello", {"url": url, "version": self.site.manifest.version}),
                        "more_body": True})
            while not disconnected.done():
                getter = asyncio.ensure_future(client.queue.get())
                done, _ = await asyncio.wait({getter, disconnected}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    event, data = getter.result()
                    await send({"type": "http.response.body", "body": _sse(event, data), "more_body": True})
                else:
                    getter.cancel()
                    if not disconnected.done():
                        await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
        except OSError:
            pass
        finally:
            self.clients.discard(client)
            disconnected.cancel()


class _Injector:
    """Wraps ``send``: adds the live-reload script to HTML responses (fixing Content-Length)."""

    def __init__(self, send: Send, head: bool = False) -> None:
        self.send = send
        self.head = head
        self.start: dict[str, Any] | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            ctype = dict(message.get("headers", [])).get(b"content-type", b"")
            if ctype.startswith(b"text/html") and message["status"] != 304:
                self.start = message
                return
            await self.send(message)
            return
        if self.start is None:
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(self.chunks)
        headers = [(k, v) for k, v in self.start["headers"] if k not in (b"content-length", b"cache-control")]
        etag = _etag(dict(self.start["headers"]).get(b"etag", b""))
        if self.head:
            length = int(dict(self.start["headers"]).get(b"content-length", b"0")) + len(script_tag(etag))
        else:
            body = inject(body, etag)
            length = len(body)
        headers += [(b"cache-control", b"no-cache"), (b"content-length", str(length).encode())]
        await self.send({"type": "http.response.start", "status": self.start["status"], "headers": headers})
        await self.send({"type": "http.response.body", "body": body})


def script_tag(etag: str) -> bytes:
    return f'<script src="{SCRIPT_URL}" data-etag="{html.escape(etag)}"></script>'.encode()


def inject(body: bytes, etag: str) -> bytes:
    """Add the live-reload script before the last ``</body>`` (or at the end)."""
    tag = script_tag(etag)
    at = body.lower().rfind(b"</body>")
    return body[:at] + tag + body[at:] if at >= 0 else body + tag


def _etag(raw: bytes) -> str:
    value = raw.decode("latin-1").strip().removeprefix("W/").strip('"')
    return re.sub(r"-(br|gz)$", "", value)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def build_dev_server(site: str | Path, state_dir: Path, token: str | None = None) -> DevServer:
    """A DevServer for one site: in-process rendering, drafts shown."""
    from .node import load_or_create_token, open_site

    runtime = open_site(site, state_dir, include_drafts=True)  # default pool: the render core in-process
    node = DevNode([runtime], node_id="dev", token=load_or_create_token(state_dir, token), isolation="none")
    return DevServer(node)


async def run_dev(server: DevServer, host: str, port: int) -> None:
    """Serve until interrupted, watching the site."""
    import uvicorn

    from .watch import watch_site

    config = uvicorn.Config(server, host=host, port=port, access_log=False, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1)
    uv = uvicorn.Server(config)
    stop = asyncio.Event()
    task = asyncio.create_task(watch_site(server.site, stop))
    try:
        await uv.serve()
    finally:
        stop.set()
        task.cancel()
        server.site.pool.close()


SCRIPT = r"""(function () {
  "use strict";
  var me = document.currentScript;
  var etag = (me && me.getAttribute("data-etag")) || "";
  var url = location.pathname + location.search;
  var host = null;
  function hide() { if (host) { host.remove(); host = null; } }
  function show(err) {
    hide();
    host = document.createElement("edgesite-overlay");
    host.setAttribute("role", "alertdialog");
    host.setAttribute("aria-label", "Build error");
    var root = host.attachShadow({ mode: "open" });
    var css = ":host{position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.55);display:flex;" +
      "align-items:flex-start;justify-content:center;padding:5vh 1rem;overflow:auto;font:15px/1.5 system-ui,sans-serif}" +
      ".box{background:#fff;color:#1a1a1a;max-width:56rem;width:100%;border-radius:8px;border-top:6px solid #c62828;" +
      "box-shadow:0 10px 40px rgba(0,0,0,.4);padding:1.25rem 1.5rem}" +
      "h2{margin:0 0 .25rem;font-size:1.1rem;color:#b71c1c}p{margin:.25rem 0}code,pre{font:13px/1.5 ui-monospace,monospace}" +
      "pre{background:#f5f5f5;padding:.75rem;border-radius:4px;overflow:auto;margin:.75rem 0 0}" +
      ".hl{background:#ffd7d7;display:block}small{color:#555}" +
      "@media (prefers-color-scheme:dark){.box{background:#1e1e1e;color:#eee}pre{background:#111}.hl{background:#5c1f1f}small{color:#aaa}h2{color:#ff8a80}}";
    var box = document.createElement("div");
    box.className = "box";
    var h = document.createElement("h2");
    h.textContent = (err.kind || "error") + " error";
    var msg = document.createElement("p");
    msg.textContent = err.message || "";
    box.appendChild(h);
    box.appendChild(msg);
    if (err.file) {
      var where = document.createElement("p");
      var code = document.createElement("code");
      code.textContent = err.file + (err.line ? ", line " + err.line : "");
      where.appendChild(code);
      box.appendChild(where);
    }
    if (err.lines && err.lines.length) {
      var pre = document.createElement("pre");
      err.lines.forEach(function (l) {
        var span = document.createElement("span");
        var n = String(l[0]);
        span.textContent = ("    " + n).slice(-Math.max(4, n.length)) + " | " + l[1] + "\n";
        if (l[0] === err.line) span.className = "hl";
        pre.appendChild(span);
      });
      box.appendChild(pre);
    }
    var note = document.createElement("p");
    note.innerHTML = "<small>edgesite dev: fix the file and this goes away.</small>";
    box.appendChild(note);
    var style = document.createElement("style");
    style.textContent = css;
    root.appendChild(style);
    root.appendChild(box);
    document.documentElement.appendChild(host);
  }
  if (!window.EventSource) return;
  var es = new EventSource("/_edgesite/livereload?url=" + encodeURIComponent(url) + "&etag=" + encodeURIComponent(etag));
  es.addEventListener("reload", function () { location.reload(); });
  es.addEventListener("overlay", function (e) { show(JSON.parse(e.data)); });
  es.addEventListener("clear", function () { hide(); });
  window.__edgesiteDev = { show: show, hide: hide, source: es };
})();
"""
