"""The bus: one ordered log of purges and version switches, numbered by ``seq``, that every
node follows, plus the versions and blobs a node fetches and the acks it sends back.

Two implementations of the same two sides:
- embedded (the default, nothing to install): the control plane keeps the log (in memory and
  in ``log.jsonl``), versions and blobs; nodes long-poll ``GET /_edgesite/log?after=SEQ`` and
  fetch over HTTP (``HttpNodeBus``);
- Redis (``redis://HOST:PORT``): the log is a stream (``XADD`` with id ``<seq>-0``, replayed
  with ``XRANGE``), a pub/sub channel says "seq N is there" for speed, versions and blobs are
  keys, and each node keeps a heartbeat key with its acked seq (``RedisBus``).
A node persists the last seq it applied and replays from there, so one that was down or cut
off catches up on everything it missed before it serves again.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .deploy import BlobStore, Version

LEASE_S = 3.0  # a node that has not heard from the bus for this long stops serving
POLL_S = 1.0  # longest a node waits on the bus before it reports in again


class BusError(ConnectionError):
    """The bus cannot be reached (or answered nonsense): the node must stop serving."""


class LogReset(BusError):
    """The log is behind the seq a node applied (a Redis without persistence restarted, or the
    control plane's folder was lost): the node must forget what it cached and replay from 0."""


@dataclass(frozen=True)
class LogEntry:
    """One step of the log: a purge (``purge`` is the purge API's JSON body) or a switch of
    ``site`` to ``version`` (a deploy or a rollback), with the tags it purges on a node that
    serves ``previous``."""

    seq: int
    kind: str  # "purge" | "version"
    site: str | None = None
    version: str | None = None
    purge: dict[str, Any] | None = None
    at: float = 0.0
    previous: str | None = None  # a switch: the version it replaces, and the tags that differ
    tags: list[str] | None = None  # (computed once, by the control plane)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "site": self.site, "version": self.version, "purge": self.purge,
                "at": self.at, "previous": self.previous, "tags": self.tags}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "LogEntry":
        return cls(**raw)


@dataclass
class NodeInfo:
    """What the control plane knows of a node: where it listens and the last seq it applied."""

    node: str
    url: str
    seq: int = -1
    ms: float = 0.0
    pid: int = 0
    seen: float = field(default_factory=time.monotonic)

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "url": self.url, "seq": self.seq, "ms": self.ms, "pid": self.pid}


class NodeBus(Protocol):
    """The node's side of the bus. Every method raises BusError when the bus is unreachable."""

    async def sync(self, after: int, wait: float, me: NodeInfo | None) -> list[LogEntry]:
        """Ack ``me.seq`` (also the node's heartbeat; ``None`` while it catches up, unseen), then
        return the entries with seq > ``after`` in order, waiting up to ``wait`` s for one."""

    async def version(self, site: str, version: str) -> Version: ...

    async def blobs(self, blobs: list[str]) -> dict[str, bytes]: ...

    async def close(self) -> None: ...


class ControlBus(Protocol):
    """The control plane's side of the bus."""

    async def append(self, kind: str, **fields: Any) -> LogEntry: ...

    async def entries(self, after: int = 0) -> list[LogEntry]: ...

    async def put_version(self, version: Version, blobs: BlobStore) -> int:
        """Make the version and every blob it names available to nodes; returns blobs sent."""

    async def get_version(self, site: str, version: str) -> Version | None: ...

    async def nodes(self) -> dict[str, NodeInfo]:
        """Nodes that reported within the lease."""

    async def close(self) -> None: ...


# -- embedded ------------------------------------------------------------------------------

class EmbeddedBus:
    """The control plane's own log, versions and blobs (under ``root``), served to nodes by
    the control plane's HTTP API. Appends wake every long-poll at once."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.blob_store = BlobStore(root / "blobs")
        self._log_path = root / "log.jsonl"
        self._log: list[LogEntry] = []
        if self._log_path.is_file():
            for line in self._log_path.read_text().splitlines():
                if line.strip():
                    self._log.append(LogEntry.from_json(json.loads(line)))
        self._changed = asyncio.Condition()
        self._nodes: dict[str, NodeInfo] = {}
        self._log_file = self._log_path.open("a")

    @property
    def seq(self) -> int:
        return self._log[-1].seq if self._log else 0

    async def append(self, kind: str, **fields: Any) -> LogEntry:
        entry = LogEntry(seq=self.seq + 1, kind=kind, at=time.time(), **fields)
        self._log_file.write(json.dumps(entry.to_json()) + "\n")
        self._log_file.flush()
        self._log.append(entry)
        async with self._changed:
            self._changed.notify_all()
        return entry

    async def entries(self, after: int = 0, wait: float = 0.0) -> list[LogEntry]:
        if self.seq <= after and wait > 0:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: self.seq > after), wait)
                except asyncio.TimeoutError:
                    pass
        return [e for e in self._log[max(0, after - self._log[0].seq + 1 if self._log else 0):] if e.seq > after]

    async def put_version(self, version: Version, blobs: BlobStore) -> int:
        sent = 0
        if blobs is not self.blob_store:
            for blob in self.blob_store.missing(version.blobs):
                self.blob_store.put(blob, blobs.get(blob))
                sent += 1
        folder = self.root / "versions" / version.site
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{version.version}.json"
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(version.manifest))
            tmp.replace(target)
        return sent

    async def get_version(self, site: str, version: str) -> Version | None:
        target = self.root / "versions" / site / f"{version}.json"
        if not target.is_file():
            return None
        return Version(site, version, json.loads(target.read_text()))

    def seen(self, info: NodeInfo) -> None:
        info.seen = time.monotonic()
        self._nodes[info.node] = info

    async def nodes(self) -> dict[str, NodeInfo]:
        now = time.monotonic()
        return {k: v for k, v in self._nodes.items() if now - v.seen < LEASE_S}

    def forget(self, node: str) -> None:
        self._nodes.pop(node, None)

    async def close(self) -> None:
        self._log_file.close()


def pack_blobs(found: dict[str, bytes]) -> bytes:
    """Blobs in one body: a JSON header line ``[[hash, length], ...]`` then the bytes."""
    header = json.dumps([[k, len(v)] for k, v in found.items()]).encode() + b"\n"
    return header + b"".join(found.values())


def unpack_blobs(body: bytes) -> dict[str, bytes]:
    head, _, rest = body.partition(b"\n")
    out, at = {}, 0
    for blob, size in json.loads(head):
        out[blob] = rest[at:at + size]
        at += size
    return out


class HttpNodeBus:
    """A node's side of the embedded bus: HTTP to the control plane."""

    def __init__(self, control: str, token: str) -> None:
        import httpx

        self._httpx = httpx
        self.client = httpx.AsyncClient(base_url=control.rstrip("/"), headers={"authorization": f"Bearer {token}"},
                                        timeout=httpx.Timeout(10.0, read=POLL_S + 5))

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = await self.client.request(method, path, **kwargs)
        except self._httpx.HTTPError as exc:
            raise BusError(f"control plane unreachable: {exc!r}") from None
        if resp.status_code != 200:
            raise BusError(f"control plane answered {resp.status_code} to {path}: {resp.text[:200]}")
        return resp

    async def sync(self, after: int, wait: float, me: NodeInfo | None) -> list[LogEntry]:
        """One request: the query carries the ack, the answer is a long-poll of the log."""
        params: dict[str, Any] = {"after": after, "wait": wait}
        if me is not None:
            params.update(me.to_json())
        resp = await self._call("GET", "/_edgesite/log", params=params)
        answer = resp.json()
        if answer.get("head", after) < after:
            raise LogReset(f"the control plane's log ends at {answer['head']}, before {after}")
        return [LogEntry.from_json(e) for e in answer["entries"]]

    async def version(self, site: str, version: str) -> Version:
        resp = await self._call("GET", f"/_edgesite/versions/{site}/{version}")
        return Version(site, version, json.loads(resp.content), resp.content)

    async def blobs(self, blobs: list[str]) -> dict[str, bytes]:
        resp = await self._call("POST", "/_edgesite/blobs", json={"blobs": blobs})
        return unpack_blobs(resp.content)

    async def close(self) -> None:
        await self.client.aclose()


# -- Redis ---------------------------------------------------------------------------------

_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], seq .. '-0', 'e', ARGV[1])
redis.call('PUBLISH', KEYS[3], seq)
return seq
"""


class RedisBus:
    """Both sides of the bus over Redis. Keys live under ``prefix`` (default ``edgesite``):
    ``:seq`` (counter), ``:log`` (stream, id ``<seq>-0``; also the pub/sub channel),
    ``:version:<site>:<v>``, ``:blob:<hash>``, ``:node:<id>`` (heartbeat, expires after the lease)
    and ``:nodes`` (the set of node ids)."""

    def __init__(self, url: str, prefix: str = "edgesite") -> None:
        import redis.asyncio as aioredis

        self._errors: tuple[type[BaseException], ...] = (aioredis.RedisError, OSError)
        self.redis = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=POLL_S + 5)
        self.p = prefix
        self._append = self.redis.register_script(_APPEND)
        self._pubsub: Any = None

    async def _guard(self, coro: Any) -> Any:
        try:
            return await coro
        except self._errors as exc:
            if self._pubsub is not None:
                try:
                    await self._pubsub.aclose()
                except Exception:  # the connection is already gone
                    pass
                self._pubsub = None
            raise BusError(f"redis unreachable: {exc!r}") from None

    # control side
    async def append(self, kind: str, **fields: Any) -> LogEntry:
        body = json.dumps({"kind": kind, "at": time.time(), **fields})
        seq = await self._guard(self._append(keys=[f"{self.p}:seq", f"{self.p}:log", f"{self.p}:log"], args=[body]))
        return LogEntry(seq=int(seq), **json.loads(body))

    async def entries(self, after: int = 0) -> list[LogEntry]:
        rows = await self._guard(self.redis.xrange(f"{self.p}:log", min=f"({after}-0", max="+"))
        return [LogEntry(seq=int(rid.split(b"-")[0]), **json.loads(fields[b"e"])) for rid, fields in rows]

    async def put_version(self, version: Version, blobs: BlobStore) -> int:
        wanted = sorted(version.blobs)
        sent = 0
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            flags = await self._guard(self._exists_each(chunk))
            pipe = self.redis.pipeline(transaction=False)
            for blob, found in zip(chunk, flags):
                if not found:
                    pipe.set(f"{self.p}:blob:{blob}", blobs.get(blob))
                    sent += 1
            await self._guard(pipe.execute())
        await self._guard(self.redis.set(f"{self.p}:version:{version.site}:{version.version}", json.dumps(version.manifest)))
        return sent

    async def _exists_each(self, blobs: list[str]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for blob in blobs:
            pipe.exists(f"{self.p}:blob:{blob}")
        return [bool(n) for n in await pipe.execute()]

    async def get_version(self, site: str, version: str) -> Version | None:
        raw = await self._guard(self.redis.get(f"{self.p}:version:{site}:{version}"))
        return Version(site, version, json.loads(raw), raw) if raw else None

    async def nodes(self) -> dict[str, NodeInfo]:
        """The members of ``:nodes`` whose heartbeat key has not expired (no SCAN: the keyspace
        holds every blob)."""
        names = sorted(n.decode() for n in await self._guard(self.redis.smembers(f"{self.p}:nodes")))
        values = await self._guard(self.redis.mget([f"{self.p}:node:{n}" for n in names])) if names else []
        found = {}
        for name, raw in zip(names, values):
            if raw:
                data = json.loads(raw)
                found[data["node"]] = NodeInfo(**data)
            else:
                await self._guard(self.redis.srem(f"{self.p}:nodes", name))
        return found

    def forget(self, node: str) -> None:
        pass  # heartbeats expire by themselves

    async def watch_acks(self, wake: asyncio.Event) -> None:
        """Set ``wake`` whenever a node acks (runs until cancelled; retries if Redis is away)."""
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(f"{self.p}:acks")
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        wake.set()
            except self._errors:
                await asyncio.sleep(0.2)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:
                    pass

    # node side
    async def sync(self, after: int, wait: float, me: NodeInfo | None) -> list[LogEntry]:
        if me is not None:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(f"{self.p}:node:{me.node}", json.dumps(me.to_json()), px=int(LEASE_S * 1000))
            pipe.sadd(f"{self.p}:nodes", me.node)
            pipe.publish(f"{self.p}:acks", me.seq)
            await self._guard(pipe.execute())
        if self._pubsub is None:
            self._pubsub = self.redis.pubsub()
            await self._guard(self._pubsub.subscribe(f"{self.p}:log"))
        found = await self.entries(after)  # after subscribing: no notice can slip between
        if not found and after > 0 and int(await self._guard(self.redis.get(f"{self.p}:seq")) or 0) < after:
            raise LogReset(f"the redis log ends before {after}")
        if found or wait <= 0:
            return found
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:  # None also means "a subscribe reply": wait on
            if await self._guard(self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)):
                break
        while await self._guard(self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0)):
            pass
        return await self.entries(after)

    async def version(self, site: str, version: str) -> Version:
        found = await self.get_version(site, version)
        if found is None:
            raise BusError(f"version {version} of {site} is not in redis")
        return found

    async def blobs(self, blobs: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for i in range(0, len(blobs), 500):
            chunk = blobs[i:i + 500]
            values = await self._guard(self.redis.mget([f"{self.p}:blob:{b}" for b in chunk]))
            for blob, value in zip(chunk, values):
                if value is None:
                    raise BusError(f"blob {blob} is not in redis")
                out[blob] = value
        return out

    async def close(self) -> None:
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception:
                pass
        await self.redis.aclose()


def bus_seq_file(state_dir: Path) -> Path:
    return state_dir / "log-seq"


def read_applied(state_dir: Path) -> int:
    """The last log seq this node applied (0 if it never followed a log)."""
    path = bus_seq_file(state_dir)
    return int(path.read_text()) if path.is_file() else 0


def write_applied(state_dir: Path, seq: int) -> None:
    """Persist the applied seq (after the purges it covers are durable: a crash in between
    replays them, and purging twice is harmless)."""
    path = bus_seq_file(state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(seq))
    tmp.replace(path)

