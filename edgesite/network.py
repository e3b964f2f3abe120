"""Several edge nodes that stay consistent: the control plane, the front door, the node agent.

- The **control plane** holds the deployed versions and the log (through a bus, ``bus.py``):
  a deploy, a rollback, a watched edit or a purge is one log entry; it answers only once every
  live node has applied that entry (a node that does not answer a probe is reported ``down``).
- The **front door** (the main port) spreads requests over live nodes, round robin, and tries
  the next one when a node refuses the connection or is catching up (503).
- The **node agent** runs in each node process: it replays the log from the last seq it
  applied before the node opens its port, then follows it; while it has not heard from the bus
  within the lease (``bus.LEASE_S``) its node answers 503 instead of serving what may be stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .bus import LEASE_S, POLL_S, BusError, ControlBus, EmbeddedBus, LogEntry, LogReset, NodeBus, NodeInfo, RedisBus, pack_blobs
from .bus import read_applied, write_applied
from .cache import Purge, SiteCache
from .deploy import BlobStore, DeployResult, PoolFactory, Version, materialise, open_deployed, package, prepare, switch
from .errors import EdgesiteError
from .node import EdgeNode, SiteRuntime, parse_purge, read_body
from .invalidate import changed_tags
from .routes import Compiler, Manifest, digest
from .site import Site

log = logging.getLogger("edgesite.network")
logging.getLogger("httpx").setLevel(logging.WARNING)
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"proxy-connection"}


def make_bus(url: str | None, control_dir: Path) -> Any:
    """``redis://...`` -> RedisBus; None -> the embedded bus kept under ``control_dir``."""
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise EdgesiteError(f"unknown bus {url!r}: use redis://HOST:PORT (or nothing, for the embedded bus)")
        return RedisBus(url)
    return EmbeddedBus(control_dir)


# -- control plane -------------------------------------------------------------------------

class ControlPlane:
    """Versions, the log and the acks. ``sites`` are author folders it deploys (and watches)."""

    def __init__(self, bus: ControlBus, token: str, state_dir: Path, sites: list[Path] | None = None, *,
                 drafts: bool | None = None) -> None:
        self.bus, self.token = bus, token
        self.blobs = bus.blob_store if isinstance(bus, EmbeddedBus) else BlobStore(state_dir / "blobs")
        self.compilers = {Site.open(p).name: Compiler(Site.open(p), include_drafts=drafts) for p in sites or []}
        self.acked = asyncio.Event()
        self._lock = asyncio.Lock()
        self._probe = httpx.AsyncClient(timeout=httpx.Timeout(1.0, connect=0.5))
        self._tasks: list[asyncio.Task[Any]] = []
        self._last: dict[str, Version] = {}  # each site's latest deployed version, kept for the next diff
        if isinstance(bus, RedisBus):
            self._tasks.append(asyncio.get_running_loop().create_task(bus.watch_acks(self.acked)))

    async def history(self) -> dict[str, list[str]]:
        """Each site's versions in the order they were switched to (last = current)."""
        found: dict[str, list[str]] = {}
        for entry in await self.bus.entries(0):
            if entry.kind == "version" and entry.site and entry.version:
                found.setdefault(entry.site, []).append(entry.version)
        return found

    async def wait_acked(self, seq: int, timeout: float = 30.0) -> tuple[dict[str, float], tuple[str, ...]]:
        """Wait until every live node has applied ``seq``. Returns each node's time (ms since the
        call) and the nodes found down (refusing a probe, or silent past the timeout)."""
        started = time.monotonic()
        acked: dict[str, float] = {}
        down: set[str] = set()
        probed = 0.0
        while True:
            self.acked.clear()
            nodes = await self.bus.nodes()
            now = time.monotonic()
            for info in nodes.values():
                if info.seq >= seq and info.node not in acked:
                    acked[info.node] = round((now - started) * 1000, 2)
            pending = [n for n in nodes.values() if n.node not in acked and n.node not in down]
            if not pending:
                return acked, tuple(sorted(down))
            if now - started > timeout:
                return acked, tuple(sorted(down | {n.node for n in pending}))
            if now - probed > 0.2:
                probed = now
                for info, alive in zip(pending, await asyncio.gather(*(self._alive(n) for n in pending))):
                    if not alive:
                        down.add(info.node)
                        getattr(self.bus, "forget", lambda _n: None)(info.node)
            try:
                await asyncio.wait_for(self.acked.wait(), 0.05)
            except asyncio.TimeoutError:
                pass

    async def _alive(self, info: NodeInfo) -> bool:
        """False only if the node's port refuses connections: a node that is merely slow (its
        loop busy applying) is waited for, or it could serve what was just purged."""
        try:
            await self._probe.get(info.url + "/_edgesite/health")
            return True
        except httpx.ConnectError:
            return False
        except httpx.HTTPError:
            return True

    async def purge(self, body: dict[str, Any]) -> dict[str, Any]:
        """Append a purge (the purge API's body, already checked) and wait for every node."""
        entry = await self.bus.append("purge", purge=body)
        nodes, down = await self.wait_acked(entry.seq)
        return {"seq": entry.seq, "nodes": nodes, "down": list(down)}

    async def deploy(self, version: Version, blobs_sent: int = 0) -> DeployResult:
        """Make ``version`` current (its blobs must be in ``self.blobs``); no-op if it already is."""
        missing = self.blobs.missing(version.blobs)
        if missing:
            raise EdgesiteError(f"{version.site}: {len(missing)} blobs missing, e.g. {missing[0]}")
        async with self._lock:
            history = (await self.history()).get(version.site, [])
            previous = history[-1] if history else None
            await self.bus.put_version(version, self.blobs)
            if previous == version.version:
                return DeployResult(version.site, version.version, previous, 0, blobs_sent)
            tags = await self._diff(version.site, previous, version)
            entry = await self.bus.append("version", site=version.site, version=version.version, previous=previous, tags=tags)
        nodes, down = await self.wait_acked(entry.seq)
        log.info("%s: version %s live on %d nodes (%d blobs sent)", version.site, version.version, len(nodes), blobs_sent)
        return DeployResult(version.site, version.version, previous, entry.seq, blobs_sent, nodes, down)

    async def _diff(self, site: str, previous: str | None, version: Version) -> list[str] | None:
        """The tags a node at ``previous`` purges when it switches: computed here once, not on
        every node (a diff of two 10,000-page manifests costs about a second)."""
        old = self._last.get(site)
        if old is None or old.version != previous:
            old = await self.bus.get_version(site, previous) if previous else None
        self._last[site] = version
        if old is None:
            return None
        pair = (Manifest.from_json(old.manifest), Manifest.from_json(version.manifest))
        return sorted(await asyncio.to_thread(changed_tags, *pair))

    async def deploy_folder(self, name: str) -> DeployResult:
        """Compile a watched site and deploy it (a saved edit: a deploy of the changed files)."""
        version, new = await asyncio.to_thread(package, self.compilers[name], self.blobs)
        return await self.deploy(version, new)

    async def rollback(self, site: str | None, version: str | None) -> DeployResult:
        """Switch ``site`` back to ``version`` (default: the one before the current one)."""
        history = await self.history()
        if site is None:
            if len(history) != 1:
                raise EdgesiteError(f"say which site to roll back: {', '.join(sorted(history)) or 'none deployed'}")
            site = next(iter(history))
        past = history.get(site, [])
        if not past:
            raise EdgesiteError(f"site {site!r} has no deployed version")
        if version is None:
            earlier = [v for v in past if v != past[-1]]
            if not earlier:
                raise EdgesiteError(f"{site}: no earlier version to roll back to")
            version = earlier[-1]
        found = await self.bus.get_version(site, version)
        if found is None:
            raise EdgesiteError(f"{site}: no version {version} (known: {', '.join(dict.fromkeys(reversed(past)))})")
        return await self.deploy(found)

    async def status(self) -> dict[str, Any]:
        entries = await self.bus.entries(0)
        history = await self.history()
        nodes = await self.bus.nodes()

        async def node_status(info: NodeInfo) -> dict[str, Any]:
            try:
                found = (await self._probe.get(info.url + "/_edgesite/status")).json()
                fresh = (await self._probe.get(info.url + "/_edgesite/health")).json().get("fresh", False)
            except (httpx.HTTPError, ValueError):
                found, fresh = None, False
            return {**info.to_json(), "fresh": fresh, "status": found}

        rows = await asyncio.gather(*(node_status(n) for n in sorted(nodes.values(), key=lambda n: n.node)))
        return {"control": True, "seq": entries[-1].seq if entries else 0, "node": "control plane", "isolation": "-",
                "sites": {s: {"version": v[-1], "deploys": len(v)} for s, v in history.items()}, "nodes": rows}

    async def watch(self, stop: asyncio.Event) -> None:
        """Deploy each watched site whenever its folder changes."""
        import watchfiles

        from .watch import _ignored

        async def one(name: str) -> None:
            root = self.compilers[name].site.root
            async for _changes in watchfiles.awatch(root, stop_event=stop, debounce=30, step=10,
                                                   watch_filter=lambda c, p: not _ignored(c, p)):
                try:
                    await self.deploy_folder(name)
                except EdgesiteError as exc:
                    log.error("%s: not deployed: %s", name, exc)

        await asyncio.gather(*(one(n) for n in self.compilers))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._probe.aclose()
        await self.bus.close()

    # -- HTTP API ------------------------------------------------------------------------------
    def app(self) -> Starlette:
        def authorised(request: Request) -> bool:
            auth = request.headers.get("authorization", "")
            return auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip(), self.token)

        def guarded(handler: Any) -> Any:
            async def run(request: Request) -> Response:
                if not authorised(request):
                    return JSONResponse({"error": "missing or wrong bearer token"}, 401)
                try:
                    response: Response = await handler(request)
                    return response
                except EdgesiteError as exc:
                    return JSONResponse({"error": str(exc)}, 409)
            return run

        async def status(request: Request) -> Response:
            return JSONResponse(await self.status())

        async def health(request: Request) -> Response:
            return JSONResponse({"ok": True})

        async def purge(request: Request) -> Response:
            body = await request.body()
            try:
                parse_purge(body)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, 400)
            return JSONResponse(await self.purge(json.loads(body)))

        async def log_(request: Request) -> Response:
            q = request.query_params
            if "node" in q and isinstance(self.bus, EmbeddedBus):
                self.bus.seen(NodeInfo(node=q["node"], url=q["url"], seq=int(q["seq"]), ms=float(q.get("ms", 0)),
                                       pid=int(q.get("pid", 0))))
                self.acked.set()
            after, wait = int(q.get("after", 0)), min(float(q.get("wait", 0)), POLL_S)
            if isinstance(self.bus, EmbeddedBus):
                found = await self.bus.entries(after, wait)
            else:
                found = await self.bus.entries(after)
            head = self.bus.seq if isinstance(self.bus, EmbeddedBus) else (found[-1].seq if found else after)
            return JSONResponse({"entries": [e.to_json() for e in found], "head": head})

        async def version(request: Request) -> Response:
            site, wanted = request.path_params["site"], request.path_params["version"]
            if isinstance(self.bus, EmbeddedBus):  # the stored JSON as it is: no parse and dump per node
                raw = self.bus.root / "versions" / site / f"{wanted}.json"
                if raw.is_file() and "/" not in site + wanted:
                    return Response(await asyncio.to_thread(raw.read_bytes), media_type="application/json")
            found = await self.bus.get_version(site, wanted)
            return JSONResponse(found.manifest) if found else JSONResponse({"error": "no such version"}, 404)

        async def blobs(request: Request) -> Response:
            wanted = (await request.json())["blobs"]
            return Response(pack_blobs({b: self.blobs.get(b) for b in wanted}), media_type="application/octet-stream")

        async def missing(request: Request) -> Response:
            return JSONResponse({"missing": self.blobs.missing((await request.json())["blobs"])})

        async def put_blob(request: Request) -> Response:
            self.blobs.put(request.path_params["blob"], await request.body())
            return JSONResponse({"ok": True})

        async def deploy(request: Request) -> Response:
            raw = await request.json()
            manifest = raw["manifest"]
            version = Version(raw["site"], manifest["version"], manifest)
            return JSONResponse((await self.deploy(version, int(raw.get("blobs_sent", 0)))).to_json())

        async def rollback(request: Request) -> Response:
            raw = await request.json()
            return JSONResponse((await self.rollback(raw.get("site"), raw.get("version"))).to_json())

        return Starlette(routes=[
            Route("/_edgesite/status", status), Route("/_edgesite/health", health),
            Route("/_edgesite/purge", guarded(purge), methods=["POST"]),
            Route("/_edgesite/log", guarded(log_)),
            Route("/_edgesite/versions/{site}/{version}", guarded(version)),
            Route("/_edgesite/blobs", guarded(blobs), methods=["POST"]),
            Route("/_edgesite/blobs/missing", guarded(missing), methods=["POST"]),
            Route("/_edgesite/blobs/{blob}", guarded(put_blob), methods=["PUT"]),
            Route("/_edgesite/deploy", guarded(deploy), methods=["POST"]),
            Route("/_edgesite/rollback", guarded(rollback), methods=["POST"]),
        ])


# -- front door ----------------------------------------------------------------------------

class FrontDoor:
    """The main port: ``/_edgesite/*`` is the control plane; everything else is proxied to a
    live node, round robin; a node that refuses the connection or is catching up (503 with
    ``x-edgesite-catching-up``) is skipped for a second and the next one is tried."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control
        self.api = control.app()
        self.urls: list[str] = []
        self.down_until: dict[str, float] = {}
        self._next = 0
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=1.0), follow_redirects=False,
                                        limits=httpx.Limits(max_connections=512, max_keepalive_connections=128,
                                                            keepalive_expiry=2.0))  # under uvicorn's 5 s
        self._refresher: asyncio.Task[None] | None = None

    async def _refresh_once(self) -> None:
        try:
            self.urls = sorted(n.url for n in (await self.control.bus.nodes()).values())
        except BusError:
            pass

    async def _refresh(self) -> None:
        while True:
            await self._refresh_once()
            await asyncio.sleep(0.2)

    def _order(self) -> list[str]:
        urls = self.urls
        if not urls:
            return []
        self._next = (self._next + 1) % len(urls)
        rotated = urls[self._next:] + urls[:self._next]
        now = time.monotonic()
        up = [u for u in rotated if self.down_until.get(u, 0) <= now]
        return up + [u for u in rotated if u not in up]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self._refresher = asyncio.get_running_loop().create_task(self._refresh())
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._refresher:
                        self._refresher.cancel()
                    await self.client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"].startswith("/_edgesite/"):
            await self.api(scope, receive, send)
            return
        await self._proxy(scope, receive, send)

    async def _proxy(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_body(receive)
        target = (scope.get("raw_path") or urllib.parse.quote(scope["path"]).encode()).decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", client[0].encode()))
        tried: dict[str, str] = {}
        idempotent = scope["method"] in ("GET", "HEAD")
        for round_ in range(2):  # the second round: nodes that registered since the last refresh
            if round_:
                await self._refresh_once()
            for url in [u for u in self._order() if u not in tried]:
                resp = None
                for _attempt in range(2 if idempotent else 1):  # a pooled connection the node just closed
                    try:
                        request = self.client.build_request(scope["method"], url + target, headers=headers, content=body)
                        resp = await self.client.send(request, stream=True)
                        break
                    except (httpx.ConnectError, httpx.ConnectTimeout):
                        break
                    except httpx.TransportError:
                        if not idempotent:
                            break
                if resp is None:
                    self.down_until[url] = time.monotonic() + 1.0
                    tried[url] = "refused"
                    continue
                try:
                    if resp.status_code == 503 and "x-edgesite-catching-up" in resp.headers:
                        self.down_until[url] = time.monotonic() + 0.2
                        tried[url] = "catching up"
                        continue
                    out = [(k, v) for k, v in resp.headers.raw if k.lower() not in HOP_BY_HOP]
                    await send({"type": "http.response.start", "status": resp.status_code, "headers": out})
                    async for chunk in resp.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                    return
                finally:
                    await resp.aclose()
        reasons = ", ".join(f"{u} {why}" for u, why in tried.items()) or "none registered"
        message_body = f"502 no edge node is available ({reasons})\n".encode()
        await send({"type": "http.response.start", "status": 502,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(message_body)).encode())]})
        await send({"type": "http.response.body", "body": message_body})


# -- node agent ----------------------------------------------------------------------------

class NodeAgent:
    """Follows the log for one node process: purges, version switches, and its own freshness."""

    def __init__(self, bus: NodeBus, state_dir: Path, factory: PoolFactory, node_id: str, url: str) -> None:
        self.bus, self.state_dir, self.factory = bus, state_dir, factory
        self.node_id, self.url = node_id, url
        self.blobs = BlobStore(state_dir / "blobs")
        self.seq = read_applied(state_dir)
        self.sites: list[SiteRuntime] = []
        self.node: EdgeNode | None = None
        self.fresh_until = 0.0
        self.apply_ms = 0.0

    def fresh(self) -> bool:
        return time.monotonic() < self.fresh_until

    def restore(self) -> None:
        """Reopen the sites this node served before it stopped, at the versions it served."""
        for root in sorted((self.state_dir / "sites").glob("*")):
            cache = SiteCache(root / "cache")
            current = cache.note("version")
            cache.close()
            manifest = root / "versions" / str(current) / "manifest.json"
            if current and manifest.is_file() and (root / "bundles" / current).is_dir():
                version = Version(root.name, current, json.loads(manifest.read_text()))
                self.sites.append(open_deployed(version, root, self.factory))

    async def catch_up(self) -> None:
        """Replay the log from the last applied seq until it is exhausted and a site is known;
        retries while the bus is unreachable (the node's port is not open yet)."""
        while True:
            try:
                entries = await self.bus.sync(self.seq, 0 if self.sites else POLL_S, None)
                if entries:
                    await self.apply(entries)
                elif self.sites:
                    return
            except LogReset as exc:
                await self.reset(exc)
            except BusError as exc:
                log.warning("%s: waiting for the bus: %s", self.node_id, exc)
                await asyncio.sleep(0.5)

    async def follow(self) -> None:
        """Ack, then read (long-poll) and apply, forever. The lease is renewed after each
        successful exchange; a node cut off from the bus lets it lapse and answers 503."""
        warned = False
        while True:
            try:
                me = NodeInfo(self.node_id, self.url, self.seq, self.apply_ms, os.getpid())
                entries = await self.bus.sync(self.seq, POLL_S if self.fresh() else 0, me)
                if entries:
                    await self.apply(entries)
                self.fresh_until = time.monotonic() + LEASE_S
                warned = False
            except LogReset as exc:
                self.fresh_until = 0.0
                await self.reset(exc)
            except BusError as exc:
                if not warned:
                    log.warning("%s: cut off from the bus (serving 503 after the lease): %s", self.node_id, exc)
                    warned = True
                await asyncio.sleep(0.2)
            except Exception:
                log.exception("%s: could not apply log entries after seq %d", self.node_id, self.seq)
                await asyncio.sleep(0.5)

    async def reset(self, exc: LogReset) -> None:
        """The log started again: nothing cached can be trusted; replay it from the start."""
        log.warning("%s: %s; purging everything and replaying the log from 0", self.node_id, exc)
        for site in self.sites:
            site.purge(Purge(everything=True))
        self.seq = 0
        await asyncio.to_thread(write_applied, self.state_dir, 0)

    async def apply(self, entries: list[LogEntry]) -> None:
        """Apply entries in order. Of several switches of one site only the last is made: the
        purge of a switch is computed against what this node serves, so skipping is exact."""
        started = time.perf_counter()
        last = {e.site: e.seq for e in entries if e.kind == "version"}
        try:
            for entry in entries:
                if entry.kind == "purge" and entry.purge is not None:
                    purge, names = parse_purge(json.dumps(entry.purge).encode())
                    for site in self.sites:
                        if names is None or site.name in names:
                            site.purge(purge)
                elif entry.kind == "version" and entry.site and entry.version and last[entry.site] == entry.seq:
                    await self.switch(entry)
                self.seq = entry.seq
        finally:
            await asyncio.to_thread(write_applied, self.state_dir, self.seq)
            self.apply_ms = round((time.perf_counter() - started) * 1000, 2)

    async def switch(self, entry: LogEntry) -> None:
        name = str(entry.site)
        version = await self.bus.version(name, str(entry.version))
        wanted = self.blobs.missing(version.blobs)
        for i in range(0, len(wanted), 200):
            found = await self.bus.blobs(wanted[i:i + 200])
            await asyncio.to_thread(self.blobs.put_many, found)
        root = self.state_dir / "sites" / name
        await asyncio.to_thread(materialise, version, self.blobs, root / "bundles")
        current = next((s for s in self.sites if s.name == name), None)
        if current is not None:
            manifest, tags = await asyncio.to_thread(prepare, current, version, root, entry.previous, entry.tags)
            switch(current, version, root, manifest, tags)  # on the loop: no request between switch and purge
            return
        runtime = await asyncio.to_thread(open_deployed, version, root, self.factory)
        self.sites.append(runtime)
        if self.node is not None:
            self.node.by_host.update({h: runtime for h in runtime.hosts})


class GatedNode:
    """An EdgeNode that answers 503 (``x-edgesite-catching-up``) while its agent is not fresh."""

    def __init__(self, node: EdgeNode, agent: NodeAgent) -> None:
        self.node, self.agent = node, agent

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/_edgesite/health":
            body = json.dumps({"ok": True, "fresh": self.agent.fresh(), "seq": self.agent.seq}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and not self.agent.fresh() and scope["path"] != "/_edgesite/status":
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"text/plain"), (b"retry-after", b"1"), (b"x-edgesite-catching-up", b"1"),
                                    (b"x-served-by", self.node.node_id.encode())]})
            await send({"type": "http.response.body", "body": b"503 this node is catching up with the log\n"})
            return
        await self.node(scope, receive, send)


async def run_edge_node(bus: NodeBus, state_dir: Path, host: str, port: int, factory: PoolFactory, *, node_id: str,
                        token: str, isolation: str, advertise: str | None = None) -> None:
    """One node process: restore, catch up on the log, then open the port and follow the log."""
    import uvicorn

    state_dir.mkdir(parents=True, exist_ok=True)
    agent = NodeAgent(bus, state_dir, factory, node_id, advertise or f"http://{host}:{port}")
    await asyncio.to_thread(agent.restore)
    await agent.catch_up()
    node = EdgeNode(agent.sites, node_id=node_id, token=token, isolation=isolation)
    agent.node = node
    server = uvicorn.Server(uvicorn.Config(GatedNode(node, agent), host=host, port=port, access_log=False,
                                           log_level="warning", lifespan="on"))
    follow = asyncio.get_running_loop().create_task(agent.follow())
    (state_dir / "node.json").write_text(json.dumps({"host": host, "port": port, "pid": os.getpid(), "node": node_id,
                                                     "sites": [s.name for s in agent.sites], "seq": agent.seq}))
    try:
        await server.serve()
    finally:
        follow.cancel()
        for site in agent.sites:
            site.pool.close()
        await bus.close()


# -- several nodes on this machine ---------------------------------------------------------

class Supervisor:
    """Starts N node processes on consecutive ports and restarts any that dies: at once the
    first time, then with a doubling delay (up to 30 s) while it keeps dying within 10 s."""

    def __init__(self, count: int, first_port: int, host: str, state_dir: Path, args: list[str], env: dict[str, str]) -> None:
        self.ports = [first_port + i for i in range(count)]
        self.host, self.state_dir, self.args, self.env = host, state_dir, args, env
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}
        self.failures: dict[int, int] = {}
        self.due: dict[int, float] = {}
        self.stopping = False

    def start(self, port: int) -> None:
        i = self.ports.index(port) + 1
        cmd = [sys.executable, "-m", "edgesite", "node", "--host", self.host, "--port", str(port), "--node-id", f"node-{i}",
               "--state-dir", str(self.state_dir / "edge" / str(port)), *self.args]
        self.procs[port] = subprocess.Popen(cmd, env=self.env, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        self.started[port] = time.monotonic()
        self.due.pop(port, None)

    def restart_delay(self, port: int) -> float:
        """Note that the node on ``port`` exited; how long to wait before starting it again."""
        quick = time.monotonic() - self.started.get(port, 0.0) < 10
        self.failures[port] = self.failures.get(port, 0) + 1 if quick else 1
        return 0.0 if self.failures[port] <= 1 else min(30.0, 0.5 * 2 ** (self.failures[port] - 2))

    async def run(self) -> None:
        for port in self.ports:
            self.start(port)
        while not self.stopping:
            await asyncio.sleep(0.3)
            now = time.monotonic()
            for port, proc in list(self.procs.items()):
                if proc.poll() is None or self.stopping:
                    continue
                if port not in self.due:
                    delay = self.restart_delay(port)
                    self.due[port] = now + delay
                    log.warning("node on port %d exited (%s); restarting it in %.1f s", port, proc.returncode, delay)
                if now >= self.due[port]:
                    self.start(port)

    def stop(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _die_with_parent() -> None:
    """In a node process before exec: get SIGTERM when the supervisor dies, however it dies."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _server(config: Any) -> Any:
    """A uvicorn server whose SIGINT/SIGTERM end ``serve()`` and return, so the caller's
    cleanup (stopping the node processes) runs; uvicorn itself re-raises them at exit."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server(config)


async def serve_network(sites: tuple[str, ...], host: str, port: int, nodes: int, bus_url: str | None, *,
                        isolation: str, watch: bool, token: str, state_dir: Path, drafts: bool | None = None) -> None:
    """``edgesite serve SITE --nodes N``: control plane and front door on ``port``, N node
    processes on the ports after it, the sites deployed and (if ``watch``) redeployed on edits."""
    import uvicorn

    if isolation == "wasm" and nodes > 0:  # build (or find) the runtime once, with progress, not once per node
        from .component import build_component

        await asyncio.to_thread(build_component, progress=True)
    bus = make_bus(bus_url, state_dir / "control")
    control = ControlPlane(bus, token, state_dir, [Path(s) for s in sites], drafts=drafts)
    for name in control.compilers:
        result = await control.deploy_folder(name)
        log.info("%s: version %s deployed", name, result.version)
    args = ["--isolation", isolation] + (["--bus", bus_url] if bus_url else ["--control", f"http://127.0.0.1:{port}"])
    supervisor = Supervisor(nodes, port + 1, host, state_dir, args, {**os.environ, "EDGESITE_TOKEN": token})
    server = _server(uvicorn.Config(FrontDoor(control), host=host, port=port, access_log=False, log_level="warning",
                                           lifespan="on", server_header=False, date_header=False))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(supervisor.run())]
    if watch:
        tasks.append(asyncio.create_task(control.watch(stop)))
    (state_dir / "node.json").write_text(json.dumps({"host": host, "port": port, "pid": os.getpid(), "node": "control plane",
                                                     "nodes": supervisor.ports}))
    try:
        await server.serve()
    finally:
        stop.set()
        supervisor.stop()
        for task in tasks:
            task.cancel()
        await control.close()


# -- clients: deploy and rollback from the command line ------------------------------------

def deploy_to(url: str, token: str, path: str | Path, drafts: bool | None = None) -> dict[str, Any]:
    """Compile the site at ``path``, upload the blobs the control plane lacks, deploy."""
    site = Site.open(path)
    manifest = Compiler(site, include_drafts=drafts).compile()
    with httpx.Client(base_url=url.rstrip("/"), headers={"authorization": f"Bearer {token}"}, timeout=120) as client:
        by_blob = {blob: rel for rel, blob in manifest.inputs.items()}
        resp = client.post("/_edgesite/blobs/missing", json={"blobs": sorted(by_blob)})
        _check(resp)
        missing = resp.json()["missing"]
        for blob in missing:
            data = (site.root / by_blob[blob]).read_bytes()
            if digest(data) != blob:
                raise EdgesiteError(f"{by_blob[blob]} changed while deploying; deploy again")
            _check(client.put(f"/_edgesite/blobs/{blob}", content=data))
        resp = client.post("/_edgesite/deploy", json={"site": site.name, "manifest": manifest.to_json(), "blobs_sent": len(missing)})
        _check(resp)
        return dict(resp.json())


def rollback_at(url: str, token: str, site: str | None, version: str | None) -> dict[str, Any]:
    with httpx.Client(base_url=url.rstrip("/"), headers={"authorization": f"Bearer {token}"}, timeout=120) as client:
        resp = client.post("/_edgesite/rollback", json={"site": site, "version": version})
        _check(resp)
        return dict(resp.json())


def _check(resp: httpx.Response) -> None:
    if resp.status_code != 200:
        raise EdgesiteError(f"the control plane answered {resp.status_code}: {resp.text.strip()}")
