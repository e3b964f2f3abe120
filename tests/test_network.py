"""The edge network end to end: a control plane, a front door and 3 real node processes on
loopback, over the embedded bus and over a real redis-server."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from network_support import Network, RedisServer, wait_until

PAGES = ["/", "/posts/", "/posts/post-1/", "/posts/post-2/", "/about/", "/tags/t1/", "/atom.xml"]
SLOW_WORKER = '''
import pathlib, time
from edgesite.worker import route

VERSION = "one"


@route("/slow/")
def slow(request, site):
    pathlib.Path({started!r}).write_text("started")
    for _ in range(400):  # bounded: at most 20 s
        if pathlib.Path({release!r}).exists():
            break
        time.sleep(0.05)
    return "<p>worker version " + VERSION + "</p>"
'''


@pytest.fixture(params=["embedded", "redis"])
def bus(request: Any, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "embedded":
        yield None
        return
    server = RedisServer(tmp_path / "redis")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def network(mini: Path, tmp_path: Path, bus: str | None) -> Iterator[Network]:
    net = Network(mini, tmp_path / "state", 3, bus=bus)
    try:
        yield net
    finally:
        net.close()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def warm(net: Network) -> None:
    for url in net.node_urls:
        for page in PAGES:
            net.get(url, page)
        assert all(net.get(url, p).headers["x-cache"] == "HIT" for p in PAGES)


def test_every_node_serves_an_edit_by_the_time_its_deploy_is_acknowledged(network: Network, mini: Path) -> None:
    warm(network)
    edit(mini / "content/posts/post-1.md", "Body of post 1.", "Edited body.")
    result = network.deploy()
    assert sorted(result["nodes"]) == ["node-1", "node-2", "node-3"] and result["down"] == []
    assert result["blobs_sent"] == 1
    for url in network.node_urls:
        page = network.get(url, "/posts/post-1/")
        assert "Edited body." in page.text and page.headers["x-cache"] == "MISS"
        assert network.get(url, "/about/").headers["x-cache"] == "HIT"  # exactly what changed was purged


def test_the_purge_api_answers_once_every_node_has_applied_it_with_each_nodes_time(network: Network) -> None:
    warm(network)
    answer = network.purge(urls=["/posts/post-2/"], tags=["file:content/about.md"])
    assert sorted(answer["nodes"]) == ["node-1", "node-2", "node-3"]
    assert all(isinstance(ms, float) for ms in answer["nodes"].values())
    for url in network.node_urls:
        assert network.get(url, "/posts/post-2/").headers["x-cache"] == "MISS"
        assert network.get(url, "/about/").headers["x-cache"] == "MISS"
        assert network.get(url, "/posts/post-1/").headers["x-cache"] == "HIT"


def test_a_node_killed_during_purges_and_edits_comes_back_serving_nothing_stale(network: Network, mini: Path) -> None:
    warm(network)
    victim = network.node_urls[1]
    pid = network.live()[victim]["pid"]
    served = []
    for i in range(6):
        if i == 2:
            os.kill(pid, signal.SIGKILL)  # in the middle of the burst
        edit(mini / "content/posts/post-2.md", f"{'More text.' if i == 0 else f'Round {i - 1}.'}", f"Round {i}.")
        network.deploy()
        network.purge(tags=["file:content/about.md"] if i % 2 else ["file:templates/base.html"])
        served.append(network.get(network.url, "/posts/post-1/").status_code)  # the front door keeps answering
    assert served == [200] * 6
    wait_until(lambda: network.live().get(victim, {}).get("pid") not in (None, pid), 60, "the node restarted")
    fresh = network.get(network.node_urls[0], "/posts/post-2/").text
    assert "Round 5." in fresh
    for page in PAGES:
        resp = network.get(victim, page)
        assert resp.status_code == 200
        assert resp.headers["x-cache"] == "MISS", page  # every page it had cached was purged while it was away
        assert resp.text == network.get(network.node_urls[0], page).text


def test_the_front_door_skips_a_dead_node(network: Network) -> None:
    pid = network.live()[network.node_urls[0]]["pid"]
    os.kill(pid, signal.SIGKILL)
    answers: list[httpx.Response] = []

    def both_answered() -> bool:
        answers.append(network.get(network.url, "/posts/post-1/"))
        return {r.headers.get("x-served-by") for r in answers} >= {"node-2", "node-3"}

    wait_until(both_answered, 20, "both live nodes answered")
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers if r.status_code != 200]
    assert {r.headers["x-served-by"] for r in answers} == {"node-2", "node-3"}


def test_a_request_in_flight_during_a_deploy_completes_on_the_old_version(network: Network, mini: Path, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    (mini / "worker.py").write_text(SLOW_WORKER.format(started=str(started), release=str(release)))
    network.deploy()
    node = network.node_urls[0]
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(target=lambda: result.update(old=network.get(node, "/slow/")))
    request.start()
    wait_until(started.exists, 20, "the slow render started")
    edit(mini / "worker.py", 'VERSION = "one"', 'VERSION = "two"')
    network.deploy()
    release.touch()
    request.join(30)
    assert "worker version one" in result["old"].text
    assert "worker version two" in network.get(node, "/slow/").text


def test_rollback_switches_every_node_back_and_purges_what_differs(network: Network, mini: Path) -> None:
    first = network.status()["sites"]["mini"]["version"]
    edit(mini / "content/about.md", "About", "Regarding")
    second = network.deploy()["version"]
    warm(network)
    back = network.rollback()
    assert (back["version"], back["previous"]) == (first, second)
    for url in network.node_urls:
        assert "Regarding" not in network.get(url, "/about/").text
        assert network.get(url, "/posts/post-1/").headers["x-cache"] == "HIT"
    assert network.rollback(second)["version"] == second
    assert all("Regarding" in network.get(u, "/about/").text for u in network.node_urls)


@pytest.mark.parametrize("bus", ["embedded"], indirect=True)
def test_watching_turns_a_saved_edit_into_a_deploy_of_one_file(mini: Path, tmp_path: Path, bus: str | None) -> None:
    net = Network(mini, tmp_path / "state", 2, bus=bus, watch=True)
    try:
        before = net.status()["sites"]["mini"]["version"]
        edit(mini / "content/posts/post-1.md", "Body of post 1.", "Watched edit.")
        wait_until(lambda: net.status()["sites"]["mini"]["version"] != before, 20, "a new version")
        wait_until(lambda: all("Watched edit." in net.get(u, "/posts/post-1/").text for u in net.node_urls), 20, "fresh everywhere")
        assert sorted(n["seq"] for n in net.status()["nodes"]) == [2, 2]
    finally:
        net.close()


def test_a_node_ahead_of_a_restarted_log_forgets_its_cache_and_replays_it(mini: Path, tmp_path: Path) -> None:
    from network_support import RedisServer

    redis = RedisServer(tmp_path / "redis")
    net = Network(mini, tmp_path / "state", 1, bus=redis.url)
    try:
        node = net.node_urls[0]
        for i in range(3):
            net.purge(urls=[f"/x{i}/"])
        net.get(node, "/about/")
        assert net.get(node, "/about/").headers["x-cache"] == "HIT"
        import redis as redis_client

        redis_client.Redis(port=redis.port).flushall()  # what a restart without persistence leaves
        net.deploy()  # the log starts again at 1 with the current version
        wait_until(lambda: [n["seq"] for n in net.status()["nodes"]] == [1], 30, "the node replayed the new log")
        assert net.get(node, "/about/").headers["x-cache"] == "MISS"  # its cache was forgotten
    finally:
        net.close()
        redis.stop()


@pytest.mark.parametrize("bus", ["embedded"], indirect=True)
def test_isolates_of_a_node_see_the_deployed_bundle_not_the_authors_folder(mini: Path, tmp_path: Path, bus: str | None) -> None:
    net = Network(mini, tmp_path / "state", 1, bus=bus, isolation="wasm")
    try:
        node = net.node_urls[0]
        (mini / "content/about.md").write_text('+++\ntitle = "About"\n+++\nNot deployed yet.\n')
        page = net.get(node, "/about/")
        assert page.status_code == 200 and "About <em>us</em>" in page.text
        net.deploy()
        assert "Not deployed yet." in net.get(node, "/about/").text
        assert net.status()["nodes"][0]["status"]["isolation"] == "wasm"
    finally:
        net.close()


def test_a_node_cut_off_from_the_bus_stops_serving_once_its_lease_lapses(mini: Path, tmp_path: Path) -> None:
    from network_support import RedisServer

    redis = RedisServer(tmp_path / "redis")
    net = Network(mini, tmp_path / "state", 1, bus=redis.url)
    try:
        node = net.node_urls[0]
        assert net.get(node, "/about/").status_code == 200
        redis.stop()  # purges could now be published without reaching it
        wait_until(lambda: net.get(node, "/about/").status_code == 503, 15, "the node stops serving")
        page = net.get(node, "/about/")
        assert page.headers["x-edgesite-catching-up"] == "1"
    finally:
        net.close()
