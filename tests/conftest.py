"""Shared fixtures: copies of small test sites and real edge nodes on loopback ports."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).parent
SITES = HERE / "sites"
REPO = HERE.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """A writable copy of tests/sites/mini."""
    target = tmp_path / "mini"
    shutil.copytree(SITES / "mini", target)
    return target


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    """Poll a server's status endpoint until it answers. Raises RuntimeError if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/_edgesite/status", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


class ServerThread:
    """An ASGI app under uvicorn on a loopback port, in a thread of the test process, with the
    tasks that keep its sites current (watching, or the publishing timer) until it stops."""

    def __init__(self, app: Any, port: int, sites: list[Any], watch: bool, **config: Any) -> None:
        self.app, self.port, self.sites, self.watch, self.config = app, port, sites, watch, config
        self.server: Any = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()

    async def _main(self) -> None:
        import uvicorn

        from edgesite.watch import site_tasks

        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, access_log=False,
                                                    log_level="warning", **self.config))
        stop = asyncio.Event()
        tasks = site_tasks(self.sites, stop, self.watch)
        try:
            await self.server.serve()
        finally:
            stop.set()
            for task in tasks:
                task.cancel()

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.thread.join(timeout=10)


class RunningNode:
    """An edge node served by uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, sites: list[Path], state_dir: Path, *, isolation: str = "none", watch: bool = False,
                 token: str | None = "test-token", pool_factory: Any = None) -> None:
        from edgesite.cli import make_pool_factory
        from edgesite.node import EdgeNode, load_or_create_token, open_site

        factory = pool_factory or make_pool_factory(isolation, quiet=True)
        self.runtimes = [open_site(p, state_dir, factory) for p in sites]
        token = load_or_create_token(state_dir, token)
        self.node = EdgeNode(self.runtimes, node_id="test-node", token=token, isolation=isolation)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = state_dir
        self.token = token
        self._server = ServerThread(self.node, self.port, self.runtimes, watch)
        wait_until_up(self.url)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def purge(self, **body: Any) -> httpx.Response:
        return self.client.post("/_edgesite/purge", json=body, headers={"authorization": f"Bearer {self.token}"})

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        """Poll until predicate() is true (for the watcher, which runs asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError("condition not met in time")

    def close(self) -> None:
        self.client.close()
        self._server.stop()
        for runtime in self.runtimes:
            runtime.pool.close()
            runtime.cache.close()


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Any]:
    """start_node(site_path, ...) -> RunningNode; every node is stopped after the test."""
    nodes: list[RunningNode] = []

    def start(*sites: Path, **kwargs: Any) -> RunningNode:
        state = kwargs.pop("state_dir", None) or tmp_path / f"state{len(nodes)}"
        node = RunningNode(list(sites), state, **kwargs)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.close()
