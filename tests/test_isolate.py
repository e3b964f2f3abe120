"""The isolate pool against a real runtime component: rendering, limits, sandbox, recycling.

Every fault test also checks that the pool renders a normal page afterwards. The component is
built once (cached under the default runtime cache, so later runs load it in milliseconds).
"""

from __future__ import annotations

import json
import socket
import threading
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime
from wasmtime.component import Component

from edgesite.component import engine_for, load_component
from edgesite.contract import RenderRequest
from edgesite.errors import IsolateError, RenderError
from edgesite.isolate import InlinePool, IsolatePool
from edgesite.routes import Manifest, compile_site
from edgesite.site import IsolateLimits

WORKER = '''\
import socket
import time
from edgesite.worker import Response, route


@route("/loop")
def loop(request, site):
    while True:
        pass


@route("/spin")
def spin(request, site):
    end = time.monotonic() + int(request.query["ms"]) / 1000
    while time.monotonic() < end:
        pass
    return Response("spun", content_type="text/plain")


@route("/alloc")
def alloc(request, site):
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


@route("/read")
def read(request, site):
    try:
        with open(request.query["path"], encoding="utf-8") as fh:
            return Response(fh.read(), content_type="text/plain")
    except OSError as exc:
        return Response(f"refused: {type(exc).__name__}", content_type="text/plain")


@route("/write")
def write(request, site):
    try:
        with open("/site/written.txt", "w") as fh:
            fh.write("x")
        return Response("written", content_type="text/plain")
    except OSError as exc:
        return Response(f"refused: {type(exc).__name__}", content_type="text/plain")


@route("/socket")
def connect(request, site):
    try:
        if "host" in request.query:
            socket.getaddrinfo(request.query["host"], int(request.query["port"]))
            return Response("resolved", content_type="text/plain")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.connect(("127.0.0.1", int(request.query["port"])))
        return Response("connected", content_type="text/plain")
    except OSError as exc:
        return Response(f"refused: {type(exc).__name__}", content_type="text/plain")


@route("/boom")
def boom(request, site):
    raise ValueError("kaboom")
'''

FILES = {
    "site.toml": 'title = "Faults"\n',
    "content/hello.md": "---\ntitle: Hello\ntags: [a]\n---\n# Hello\n\nSome *text* and `code`.\n\n```python\nx = 1\n```\n",
    "content/spin.md": "---\ntitle: Spin\ntemplate: spin.html\n---\nnever rendered\n",
    "templates/page.html": "<html><title>{{ page.title }}</title>{{ page.content }}</html>\n",
    "templates/term.html": "<h1>{{ term.name }}</h1>{% for p in paginator.pages %}{{ p.title }}{% endfor %}\n",
    "templates/section.html": "<ul>{% for p in section.pages %}<li>{{ p.title }}</li>{% endfor %}</ul>\n",
    "templates/spin.html": "{% for i in range(10 ** 15) %}{% endfor %}\n",
    "worker.py": WORKER,
}


def make_site(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    return engine_for()


@pytest.fixture(scope="module")
def component(engine: wasmtime.Engine) -> Component:
    return load_component(engine, progress=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Manifest]:
    base = tmp_path_factory.mktemp("isolate")
    make_site(base / "other", {"secret.txt": "other site's secret\n"})
    root = make_site(base / "faults", FILES)
    manifest = compile_site(root)
    versions = base / "versions"
    manifest.write(versions)
    return root, versions, manifest


def request(manifest: Manifest, url: str) -> RenderRequest:
    route = manifest.match(url.split("?", 1)[0])
    assert route is not None, url
    return RenderRequest("GET", url, [], json.dumps(route), manifest.version)


@pytest.fixture
def make_pool(site: tuple[Path, Path, Manifest], component: Component, engine: wasmtime.Engine) -> Iterator[object]:
    pools: list[IsolatePool] = []

    def make(**limits: int) -> IsolatePool:
        root, versions, _ = site
        values = {"timeout_ms": 500, "memory_mb": 64, **limits}
        pool = IsolatePool("faults", root, versions, IsolateLimits(**values), component, engine)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def assert_serves(pool: IsolatePool, manifest: Manifest) -> None:
    resp = pool.render(request(manifest, "/hello/"))
    assert resp.status == 200
    assert resp.body.startswith("<html><title>Hello</title><h1")


def test_a_page_renders_in_the_isolate_with_the_same_bytes_as_in_process(make_pool, site) -> None:
    root, versions, manifest = site
    pool = make_pool()
    inline = InlinePool("faults", root, versions)
    urls = [url for url, route in sorted(manifest.routes.items()) if route["kind"] != "worker" and url != "/spin/"]
    assert {"/", "/hello/", "/atom.xml", "/sitemap.xml", "/tags/a/"} <= set(urls)
    for url in urls:
        assert outcome(pool, request(manifest, url)) == outcome(inline, request(manifest, url)), url
    assert pool.stats()["renders"] == len(urls)


def outcome(pool: IsolatePool | InlinePool, req: RenderRequest) -> object:
    """The response, or the error as plain values (so the two paths can be compared)."""
    try:
        return pool.render(req)
    except RenderError as exc:
        return (exc.kind, exc.message, exc.file, exc.line)


def test_a_worker_route_that_loops_forever_times_out_and_the_pool_keeps_serving(make_pool, site) -> None:
    pool = make_pool(timeout_ms=200)
    with pytest.raises(IsolateError) as info:
        pool.render(request(site[2], "/loop"))
    assert info.value.cause == "timeout"
    assert str(info.value) == "faults: the render ran past its time limit (200 ms)"
    assert_serves(pool, site[2])
    stats = pool.stats()
    assert (stats["traps"], stats["timeouts"], stats["started"]) == (1, 1, 2)


def test_a_template_that_loops_forever_times_out(make_pool, site) -> None:
    pool = make_pool(timeout_ms=200)
    with pytest.raises(IsolateError) as info:
        pool.render(request(site[2], "/spin/"))
    assert info.value.cause == "timeout"
    assert_serves(pool, site[2])


def test_allocating_without_bound_hits_the_memory_limit(make_pool, site) -> None:
    pool = make_pool(memory_mb=64, timeout_ms=10_000)
    with pytest.raises(IsolateError) as info:
        pool.render(request(site[2], "/alloc"))
    assert info.value.cause == "memory"
    assert str(info.value) == "faults: the render hit the isolate's memory limit (64 MiB)"
    assert_serves(pool, site[2])
    assert pool.stats()["memory"] == 1


@pytest.mark.parametrize("path", ["/etc/passwd", "/site/../other/secret.txt", "/versions/../other/secret.txt", "OTHER", "/site/../../etc/passwd"])
def test_reading_outside_the_site_is_refused(make_pool, site, path: str) -> None:
    root, _, manifest = site
    if path == "OTHER":
        path = str(root.parent / "other" / "secret.txt")  # the other site's real path on the host
    pool = make_pool()
    resp = pool.render(request(manifest, f"/read?path={path}"))
    assert resp.body in ("refused: PermissionError", "refused: FileNotFoundError")
    assert_serves(pool, manifest)


def test_reading_the_sites_own_files_is_allowed(make_pool, site) -> None:
    resp = make_pool().render(request(site[2], "/read?path=/site/content/hello.md"))
    assert resp.body == FILES["content/hello.md"]


def test_writing_into_the_site_is_refused(make_pool, site) -> None:
    root, _, manifest = site
    assert make_pool().render(request(manifest, "/write")).body == "refused: PermissionError"
    assert not (root / "written.txt").exists()


def test_opening_a_socket_is_refused(make_pool, site) -> None:
    with socket.socket() as listener:  # a real listener on loopback: only the sandbox can refuse
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        pool = make_pool()
        assert pool.render(request(site[2], f"/socket?port={port}")).body == "refused: PermissionError"
        assert pool.render(request(site[2], f"/socket?port={port}&host=localhost")).body == "refused: gaierror"
        assert_serves(pool, site[2])


def test_a_worker_exception_is_a_render_error_naming_it(make_pool, site) -> None:
    root, versions, manifest = site
    pool = make_pool()
    with pytest.raises(RenderError) as info:
        pool.render(request(manifest, "/boom"))
    error = info.value
    assert (error.kind, error.message, error.file) == ("worker", "ValueError in boom(): kaboom", "worker.py")
    assert error.line == WORKER.splitlines().index('    raise ValueError("kaboom")') + 1
    with pytest.raises(RenderError) as inline:
        InlinePool("faults", root, versions).render(request(manifest, "/boom"))
    assert (inline.value.kind, inline.value.message, inline.value.file, inline.value.line) == (
        error.kind, error.message, error.file, error.line)
    assert_serves(pool, manifest)
    assert pool.stats()["traps"] == 0  # an error result does not poison the isolate


def test_isolates_are_recycled_after_max_requests(make_pool, site) -> None:
    pool = make_pool(max_requests=3, pool_size=1)
    for _ in range(7):
        assert_serves(pool, site[2])
    stats = pool.stats()
    assert (stats["started"], stats["recycles"], stats["renders"]) == (3, 2, 7)


def test_recycle_all_gives_later_requests_fresh_isolates(make_pool, site) -> None:
    pool = make_pool(pool_size=2)
    assert_serves(pool, site[2])
    pool.recycle_all()
    assert pool.stats()["live"] == 0
    assert_serves(pool, site[2])
    assert (pool.stats()["started"], pool.stats()["recycles"]) == (2, 1)


def test_a_full_pool_queues_requests_until_an_isolate_is_free(make_pool, site) -> None:
    pool = make_pool(pool_size=1, timeout_ms=5_000, queue_timeout_ms=60_000)
    started = threading.Event()
    results: list[str] = []

    def slow() -> None:
        started.set()
        results.append(pool.render(request(site[2], "/spin?ms=300")).body)

    thread = threading.Thread(target=slow)
    thread.start()
    started.wait()
    while pool.stats()["live"] == 0:
        pass  # wait until the slow render holds the only isolate
    assert_serves(pool, site[2])
    thread.join()
    assert results == ["spun"]
    assert pool.stats()["live"] == 1


def test_a_full_pool_fails_busy_after_the_queue_timeout(make_pool, site) -> None:
    pool = make_pool(pool_size=1, timeout_ms=3_000, queue_timeout_ms=50)
    errors: list[BaseException] = []

    def hog() -> None:
        try:
            pool.render(request(site[2], "/loop"))
        except IsolateError as exc:
            errors.append(exc)

    thread = threading.Thread(target=hog)
    thread.start()
    while pool.stats()["live"] == 0:
        pass
    with pytest.raises(IsolateError) as info:
        pool.render(request(site[2], "/hello/"))
    assert info.value.cause == "busy"
    assert str(info.value) == "all 1 isolates of faults stayed busy for 50 ms"
    thread.join()
    assert [e.cause for e in errors if isinstance(e, IsolateError)] == ["timeout"]
    assert_serves(pool, site[2])
    assert (pool.stats()["busy"], pool.stats()["busy_waits"]) == (1, 1)


def test_threads_render_at_once_on_separate_isolates(make_pool, site) -> None:
    pool = make_pool(pool_size=2)
    expected = pool.render(request(site[2], "/hello/"))
    bodies: list[str] = []

    def work() -> None:
        for _ in range(10):
            bodies.append(pool.render(request(site[2], "/hello/")).body)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bodies == [expected.body] * 30
    assert pool.stats()["live"] <= 2


def test_two_sites_in_one_node_cannot_read_each_others_files(make_pool, site, component, engine, tmp_path) -> None:
    _, _, manifest = site
    second = make_site(tmp_path / "second", {"site.toml": 'title = "Second"\n', "content/x.md": "x\n", "secret.txt": "mine\n"})
    pool = make_pool()
    for path in (str(second / "secret.txt"), "/site/../second/secret.txt", "/site/secret.txt"):
        assert pool.render(request(manifest, f"/read?path={path}")).body.startswith("refused: ")
