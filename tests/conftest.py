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
        self._watch = watch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait_until_up(self.url)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _run(self) -> None:
        import uvicorn

        from edgesite.watch import site_tasks

        async def main() -> None:
            config = uvicorn.Config(self.node, host="127.0.0.1", port=self.port, access_log=False, log_level="warning")
            self._server = uvicorn.Server(config)
            self._loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            self._stop = stop
            tasks = site_tasks(self.runtimes, stop, self._watch)
            try:
                await self._server.serve()
            finally:
                stop.set()
                for task in tasks:
                    task.cancel()

        asyncio.run(main())

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
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=10)
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
