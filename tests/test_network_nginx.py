"""deploy/nginx.conf, run by a real nginx in front of two nodes that follow a control plane
over a real redis-server: the README's several-machines setup, on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from network_support import TOKEN, Network, RedisServer, free_ports, wait_until

REPO = Path(__file__).parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def test_nginx_with_the_readme_config_serves_from_both_nodes_and_purges_reach_both(mini: Path, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    control = Network(mini, tmp_path / "state", 0, bus=redis.url)  # the control plane only
    first = free_ports(2)
    nodes = [subprocess.Popen([sys.executable, "-m", "edgesite", "node", "--bus", redis.url, "--port", str(port),
                               "--node-id", f"machine-{i}", "--isolation", "none", "--state-dir", str(tmp_path / f"node{i}")],
                              env={**os.environ, "EDGESITE_TOKEN": TOKEN}) for i, port in enumerate((first, first + 1), 1)]
    lb_port = free_ports(1)
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    conf = (REPO / "deploy/nginx.conf").read_text()
    conf = conf.replace("10.0.0.11:8001", f"127.0.0.1:{first}").replace("10.0.0.12:8001", f"127.0.0.1:{first + 1}")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{lb_port};")
    (prefix / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log"),
                              "-g", "daemon off;"])
    lb = f"http://127.0.0.1:{lb_port}"
    try:
        wait_until(lambda: len(control.live()) == 2, 60, "both nodes registered")
        seen: set[str] = set()

        def both_served() -> bool:
            resp = httpx.get(lb + "/posts/post-1/")
            assert resp.status_code == 200 and "Body of post 1." in resp.text
            seen.add(resp.headers["x-served-by"])
            return seen == {"machine-1", "machine-2"}

        wait_until(both_served, 20, "both nodes served through nginx")
        assert httpx.get(lb + "/_edgesite/status").status_code == 404
        answer = control.purge(urls=["/posts/post-1/"])
        assert sorted(answer["nodes"]) == ["machine-1", "machine-2"]
        for port in (first, first + 1):
            assert httpx.get(f"http://127.0.0.1:{port}/posts/post-1/").headers["x-cache"] == "MISS"
    finally:
        nginx.terminate()
        nginx.wait(10)
        for proc in nodes:
            proc.terminate()
            proc.wait(10)
        control.close()
        redis.stop()
