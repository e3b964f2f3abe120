"""Faults inside isolates, seen over HTTP from a real node: each becomes a clear 5xx page
naming its cause, the isolate is discarded, and the node keeps serving every other page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

WORKER = '''\
from edgesite.worker import route

@route("/loop/")
def loop(request, site):
    while True:
        pass

@route("/hog/")
def hog(request, site):
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))

@route("/boom/")
def boom(request, site):
    raise ValueError("kaboom")

@route("/peek/")
def peek(request, site):
    return open("/etc/passwd").read()
'''


@pytest.fixture
def faulty(mini: Path) -> Path:
    (mini / "worker.py").write_text(WORKER)
    with (mini / "site.toml").open("a") as fh:
        fh.write("\n[isolate]\ntimeout_ms = 300\nmemory_mb = 64\npool_size = 2\n")
    (mini / "templates/spin.html").write_text("{% for i in range(10**9) %}{% for j in range(10**9) %}{% endfor %}{% endfor %}")
    (mini / "content/spin.md").write_text("---\ntitle: Spin\ntemplate: spin\n---\n")
    return mini


def still_serving(node: Any) -> None:
    ok = node.get("/posts/post-1/")
    assert ok.status_code == 200 and "<h1>Post 1</h1>" in ok.text


@pytest.mark.parametrize("path,status,named", [
    ("/loop/", 504, "time limit"),
    ("/spin/", 504, "time limit"),
    ("/hog/", 500, "memory"),
    ("/boom/", 500, "ValueError in boom(): kaboom"),
    ("/peek/", 500, "/etc/passwd"),
])
def test_a_fault_in_an_isolate_is_a_clear_5xx_and_the_node_keeps_serving(faulty: Path, start_node: Any, path: str, status: int, named: str) -> None:
    node = start_node(faulty, isolation="wasm")
    still_serving(node)
    resp = node.get(path)
    assert resp.status_code == status
    assert named in resp.text
    assert "root:" not in resp.text
    still_serving(node)
    assert node.get(path).status_code == status  # not cached: the fault is met again, not served stale
    still_serving(node)
    isolates = node.get("/_edgesite/status").json()["sites"]["mini"]["isolates"]
    assert isolates["mode"] == "wasm"
