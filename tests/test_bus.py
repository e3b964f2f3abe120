"""The bus: the same log, versions and blobs over the embedded store and a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgesite.bus import BusError, EmbeddedBus, NodeInfo, RedisBus, pack_blobs, unpack_blobs
from edgesite.deploy import BlobStore, Version
from edgesite.routes import digest
from network_support import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: Any) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_embedded_log_numbers_entries_and_survives_a_restart(tmp_path: Path) -> None:
    async def go() -> None:
        bus = EmbeddedBus(tmp_path)
        first = await bus.append("purge", purge={"urls": ["/a/"]})
        second = await bus.append("version", site="s", version="v1")
        assert (first.seq, second.seq) == (1, 2)
        assert [e.seq for e in await bus.entries(1)] == [2]
        await bus.close()
        again = EmbeddedBus(tmp_path)
        assert [(e.kind, e.seq) for e in await again.entries(0)] == [("purge", 1), ("version", 2)]
        assert (await again.append("purge", purge={"everything": True})).seq == 3
        await again.close()

    run(go())


def test_an_embedded_long_poll_wakes_on_append(tmp_path: Path) -> None:
    async def go() -> list[int]:
        bus = EmbeddedBus(tmp_path)
        waiting = asyncio.create_task(bus.entries(0, wait=10))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await bus.append("purge", purge={"urls": ["/"]})
        found = await asyncio.wait_for(waiting, 5)
        await bus.close()
        return [e.seq for e in found]

    assert run(go()) == [1]


def test_blobs_travel_in_one_body() -> None:
    blobs = {"a": b"x" * 3, "b": b"", "c": b"\n\n"}
    assert unpack_blobs(pack_blobs(blobs)) == blobs


def test_redis_log_replays_from_a_seq_and_wakes_a_waiting_node(redis_server: RedisServer) -> None:
    async def go() -> None:
        control, node = RedisBus(redis_server.url, prefix="t1"), RedisBus(redis_server.url, prefix="t1")
        await control.append("version", site="s", version="v1")
        me = NodeInfo("n1", "http://127.0.0.1:1", seq=0)
        assert [e.version for e in await node.sync(0, 0, me)] == ["v1"]
        waiting = asyncio.create_task(node.sync(1, 5, me))
        await asyncio.sleep(0.1)
        await control.append("purge", purge={"tags": ["file:x"]})
        found = await asyncio.wait_for(waiting, 5)
        assert [(e.seq, e.kind, e.purge) for e in found] == [(2, "purge", {"tags": ["file:x"]})]
        assert [e.seq for e in await control.entries(0)] == [1, 2]
        assert (await control.nodes())["n1"].url == "http://127.0.0.1:1"
        await control.close()
        await node.close()

    run(go())


def test_redis_holds_versions_and_sends_only_missing_blobs(redis_server: RedisServer, tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    for data in (b"one", b"two"):
        store.put(digest(data), data)
    version = Version("s", "v1", {"inputs": {"a.md": digest(b"one"), "b.md": digest(b"two")}})

    async def go() -> None:
        bus = RedisBus(redis_server.url, prefix="t2")
        assert await bus.put_version(version, store) == 2
        assert await bus.put_version(version, store) == 0
        assert (await bus.version("s", "v1")).manifest == version.manifest
        assert await bus.blobs([digest(b"two")]) == {digest(b"two"): b"two"}
        with pytest.raises(BusError):
            await bus.version("s", "missing")
        await bus.close()

    run(go())


def test_an_unreachable_redis_is_a_bus_error(tmp_path: Path) -> None:
    from network_support import free_ports

    async def go() -> None:
        bus = RedisBus(f"redis://127.0.0.1:{free_ports(1)}")
        with pytest.raises(BusError):
            await bus.sync(0, 0, None)
        await bus.close()

    run(go())


def test_a_log_that_ends_before_the_nodes_seq_is_a_reset(redis_server: RedisServer) -> None:
    from edgesite.bus import LogReset

    async def go() -> None:
        bus = RedisBus(redis_server.url, prefix="t3")
        await bus.append("purge", purge={"everything": True})
        assert await bus.sync(1, 0, None) == []
        with pytest.raises(LogReset):
            await bus.sync(7, 0, None)  # the node applied 7; this log (restarted) has 1
        await bus.close()

    run(go())
