"""Helpers for the edge-network tests: a real ``edgesite serve --nodes N`` (control plane, front
door, N node processes) and a real redis-server, each on loopback ports of its own."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "network-test-token"


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + count >= 65000:
            continue
        ok = True
        for port in range(base + 1, base + count):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no block of free ports")


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not met in {timeout} s")


class RedisServer:
    """redis-server on a free loopback port, in a temporary folder, no persistence."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_ports(1)
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder),
                                      "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}"
        import redis

        client = redis.Redis(port=self.port)
        wait_until(lambda: _ping(client), 10, "redis-server up")
        client.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _ping(client: Any) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class Network:
    """``edgesite serve SITE --nodes N`` in a subprocess; ``url`` is the front door."""

    def __init__(self, site: Path, state: Path, nodes: int = 3, *, bus: str | None = None, watch: bool = False,
                 isolation: str = "none") -> None:
        self.site, self.count = site, nodes
        self.port = free_ports(nodes + 1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.node_urls = [f"http://127.0.0.1:{self.port + i}" for i in range(1, nodes + 1)]
        cmd = [sys.executable, "-m", "edgesite", "serve", str(site), "--nodes", str(nodes), "--port", str(self.port),
               "--isolation", isolation, "--cache-dir", str(state), "--token", TOKEN]
        if not watch:
            cmd.append("--no-watch")
        if bus:
            cmd += ["--bus", bus]
        self.log = (state.parent / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "EDGESITE_HOME": str(state.parent)})
        self.client = httpx.Client(timeout=30)
        self.seen_pids: set[int] = set()
        wait_until(lambda: len(self.live()) == nodes, 60, f"{nodes} nodes live")

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = self.client.get(self.url + "/_edgesite/status").json()
        self.seen_pids.update(n["pid"] for n in data["nodes"])
        return data

    def live(self) -> dict[str, dict[str, Any]]:
        """Live nodes by URL (each answered its status and is serving)."""
        return {n["url"]: n for n in self.status()["nodes"] if n["status"] is not None and n["fresh"]}

    def get(self, url: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(url + path, **kwargs)

    def purge(self, **body: Any) -> dict[str, Any]:
        resp = self.client.post(self.url + "/_edgesite/purge", json=body, headers={"authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def deploy(self) -> dict[str, Any]:
        from edgesite.network import deploy_to

        return deploy_to(self.url, TOKEN, self.site)

    def rollback(self, version: str | None = None) -> dict[str, Any]:
        from edgesite.network import rollback_at

        return rollback_at(self.url, TOKEN, None, version)

    def close(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in self.seen_pids:  # nodes of this test only, should the supervisor have failed to stop them
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log.close()
