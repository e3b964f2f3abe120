import gzip
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest


def test_a_page_is_a_miss_then_a_hit_with_headers(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    first = node.get("/posts/post-1/")
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    second = node.get("/posts/post-1/")
    assert second.headers["x-cache"] == "HIT"
    assert second.headers["x-served-by"] == "test-node"
    assert second.headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert second.text == first.text and "<h1>Post 1</h1>" in second.text


def test_etag_gives_304_and_head_has_no_body(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    etag = node.get("/posts/post-1/", headers={"accept-encoding": "identity"}).headers["etag"]
    again = node.get("/posts/post-1/", headers={"if-none-match": etag, "accept-encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    head = node.client.head("/posts/post-1/")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0


def raw_get(url: str, encoding: str) -> httpx.Response:
    """GET without letting httpx decode the body, so the bytes on the wire are checked."""
    with httpx.Client() as client:
        resp = client.send(client.build_request("GET", url, headers={"accept-encoding": encoding}), stream=True)
        resp._content = b"".join(resp.iter_raw())
        return resp


def test_compressed_variants_follow_accept_encoding(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    url = node.url + "/posts/post-1/"
    plain = raw_get(url, "identity")
    gz = raw_get(url, "gzip")
    br = raw_get(url, "br, gzip")
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    assert gz.headers["content-encoding"] == "gzip" and gzip.decompress(gz.content) == plain.content
    assert br.headers["content-encoding"] == "br" and brotli.decompress(br.content) == plain.content
    assert len({plain.headers["etag"], gz.headers["etag"], br.headers["etag"]}) == 3
    assert all(r.headers["vary"] == "Accept-Encoding" for r in (gz, br))


@pytest.mark.parametrize("path,status", [
    ("/../etc/passwd", 404), ("/%2e%2e/%2e%2e/etc/passwd", 400), ("/posts/%2E%2E/%2E%2E/site.toml", 400),
    ("/a%00b/", 400), ("/a%5cb/", 400), ("/static/..%2f..%2fsite.toml", 400), ("/" + "a" * 300 + "/", 414),
    ("/nope/", 404), ("/site.toml", 404), ("/content/posts/post-1.md", 404), ("/static/../site.toml", 404),
    ("/templates/base.html", 404),
])
def test_hostile_and_unknown_paths_never_reach_a_file(mini: Path, start_node: Any, path: str, status: int) -> None:
    """(httpx resolves literal ``..`` before sending: those arrive as /etc/passwd and /site.toml.)"""
    node = start_node(mini)
    resp = node.get(path)
    assert resp.status_code == status
    assert 'title = "Mini"' not in resp.text and "root:" not in resp.text
    assert node.get("/posts/post-1/").status_code == 200


def test_raw_dot_segments_sent_on_the_wire_are_refused(mini: Path, start_node: Any) -> None:
    import socket

    node = start_node(mini)
    for raw_path in (b"/../site.toml", b"/static/../../site.toml", b"/posts\\..\\site.toml"):
        with socket.create_connection(("127.0.0.1", node.port)) as sock:
            sock.sendall(b"GET " + raw_path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.split(b" ", 2)[1] in (b"400", b"404"), reply[:100]
        assert b'title = "Mini"' not in reply


def test_a_missing_trailing_slash_redirects(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    resp = node.get("/posts/post-1")
    assert resp.status_code == 301 and resp.headers["location"] == "/posts/post-1/"


def test_unknown_routes_get_the_sites_404_page_cached(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    assert node.get("/nope/").status_code == 404
    again = node.get("/nope/")
    assert again.status_code == 404 and again.headers["x-cache"] == "HIT" and "Not found: /nope/" in again.text


def test_static_files_are_served_fingerprinted_and_immutable(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    page = node.get("/posts/post-1/").text
    href = page.split('href="', 1)[1].split('"', 1)[0]
    assert href.startswith("/static/css/site.") and href.endswith(".css") and href != "/static/css/site.css"
    css = node.get(href)
    assert css.status_code == 200 and css.text == "body { color: #222; }\n"
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert css.headers["content-type"].startswith("text/css")
    plain = node.get("/static/css/site.css")
    assert plain.status_code == 200 and "immutable" not in plain.headers["cache-control"]


def test_a_broken_template_gives_an_error_page_and_the_rest_still_serves(mini: Path, start_node: Any) -> None:
    (mini / "templates/term.html").write_text("{% extends 'base.html' %}\n{% block main %}\n{{ term.name | nosuchfilter }}\n{% endblock %}\n")
    (mini / "content/posts/post-3.md").write_text("---\ntitle: bad\ntags: [x\n---\nx\n")
    node = start_node(mini)
    broken = node.get("/tags/t1/")
    assert broken.status_code == 500
    assert "templates/term.html" in broken.text and "nosuchfilter" in broken.text
    bad_fm = node.get("/posts/post-3/")
    assert bad_fm.status_code == 500 and "content/posts/post-3.md, line 4" in bad_fm.text
    assert "   3 | tags: [x" in bad_fm.text
    assert node.get("/posts/post-1/").status_code == 200
    assert node.get("/posts/").status_code == 200


def test_status_reports_node_site_version_and_counts(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    node.get("/posts/post-1/")
    node.get("/posts/post-1/")
    status = node.get("/_edgesite/status").json()
    assert status["node"] == "test-node" and status["site"] == "mini"
    assert status["version"] == node.runtimes[0].manifest.version
    assert (status["hits"], status["misses"], status["entries"]) == (1, 1, 1)


def test_purge_api_requires_the_bearer_token(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    node.get("/posts/post-1/")
    assert node.client.post("/_edgesite/purge", json={"everything": True}).status_code == 401
    wrong = node.client.post("/_edgesite/purge", json={"everything": True}, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert node.purge(urls=["relative"]).status_code == 400
    assert node.purge().status_code == 400
    assert node.get("/posts/post-1/").headers["x-cache"] == "HIT"


def test_purge_api_by_url_tag_prefix_and_everything(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    urls = ["/posts/post-1/", "/posts/post-2/", "/about/", "/tags/t1/"]
    for url in urls:
        node.get(url)
    assert node.purge(urls=["/posts/post-1/"]).status_code == 200
    assert [node.get(u).headers["x-cache"] for u in urls] == ["MISS", "HIT", "HIT", "HIT"]
    node.purge(tags=["file:templates/term.html"])
    assert [node.get(u).headers["x-cache"] for u in urls] == ["HIT", "HIT", "HIT", "MISS"]
    node.purge(prefixes=["/posts/"])
    assert [node.get(u).headers["x-cache"] for u in urls] == ["MISS", "MISS", "HIT", "HIT"]
    node.purge(everything=True)
    assert [node.get(u).headers["x-cache"] for u in urls] == ["MISS"] * 4


def test_a_soft_purge_serves_stale_once_while_one_rerender_runs(mini: Path, start_node: Any) -> None:
    node = start_node(mini)
    node.get("/about/")
    node.purge(urls=["/about/"], soft=True)
    assert node.get("/about/").headers["x-cache"] == "STALE"
    node.wait_for(lambda: node.get("/about/").headers["x-cache"] == "HIT")


class SlowPool:
    """Wraps a real pool: renders wait until released, and are counted."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.release, self.started, self.count = inner, threading.Event(), threading.Event(), 0

    def render(self, req: Any) -> Any:
        self.count += 1
        self.started.set()
        self.release.wait(20)
        return self.inner.render(req)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def slow_factory(holder: list[SlowPool]) -> Any:
    from edgesite.isolate import InlinePool

    def make(site: Any, versions: Path, manifest: Any) -> SlowPool:
        pool = SlowPool(InlinePool(site.name, site.root, versions, manifest.config.isolate))
        holder.append(pool)
        return pool
    return make


def test_concurrent_misses_of_one_url_share_one_render(mini: Path, start_node: Any) -> None:
    pools: list[SlowPool] = []
    node = start_node(mini, pool_factory=slow_factory(pools))
    with ThreadPoolExecutor(8) as ex:
        futures = [ex.submit(lambda: httpx.get(node.url + "/posts/post-1/", timeout=30)) for _ in range(8)]
        assert pools[0].started.wait(10)
        time.sleep(0.3)
        pools[0].release.set()
        results = [f.result() for f in futures]
    assert all(r.status_code == 200 for r in results)
    assert pools[0].count == 1


def test_a_render_that_started_before_a_purge_is_not_served_after_it(mini: Path, start_node: Any) -> None:
    pools: list[SlowPool] = []
    node = start_node(mini, pool_factory=slow_factory(pools))
    with ThreadPoolExecutor(1) as ex:
        slow = ex.submit(lambda: httpx.get(node.url + "/posts/post-1/", timeout=30))
        assert pools[0].started.wait(10)  # the render has begun (and snapshotted the purge sequence)
        assert node.purge(urls=["/posts/post-1/"]).status_code == 200  # the purge returns first
        pools[0].release.set()
        assert slow.result().status_code == 200  # that request may get what it waited for...
    after = node.get("/posts/post-1/")
    assert after.headers["x-cache"] == "MISS"  # ...but nobody is served it from the cache after the purge
    assert pools[0].count == 2


def test_two_sites_on_one_node_are_chosen_by_host_with_separate_caches(mini: Path, tmp_path: Path, start_node: Any) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(mini, other)
    (other / "site.toml").write_text((other / "site.toml").read_text().replace('title = "Mini"', 'title = "Other"'))
    node = start_node(mini, other)
    a = node.get("/posts/post-1/", headers={"host": "mini.localhost"})
    b = node.get("/posts/post-1/", headers={"host": "other.localhost"})
    assert "<title>Post 1</title>" in a.text and "Other —" in b.text and "Mini —" in a.text
    assert b.headers["x-cache"] == "MISS"
    status = node.get("/_edgesite/status").json()
    assert status["sites"]["mini"]["cache"]["entries"] == 1 and status["sites"]["other"]["cache"]["entries"] == 1


def test_hooks_hear_every_purge_and_every_new_version(mini: Path, start_node: Any) -> None:
    """An embedding application's after-purge hook (e.g. to tell an upstream CDN) and
    after-deploy observer run for API purges and for watched edits alike."""
    node = start_node(mini, watch=True)
    site = node.runtimes[0]
    purges: list[tuple[tuple[str, ...], tuple[str, ...], int]] = []
    versions: list[str] = []
    site.after_purge.append(lambda s, purge, seq: purges.append((purge.urls, purge.tags, seq)))
    site.observers.append(lambda s, tags: versions.append(s.manifest.version) if tags else None)
    node.purge(urls=["/about/"])
    assert purges == [(("/about/",), (), 1)]
    (mini / "content/about.md").write_text("+++\ntitle = \"About\"\n+++\nChanged.\n")
    node.wait_for(lambda: len(versions) == 1)
    assert versions == [site.manifest.version]
    assert len(purges) == 2 and "file:content/about.md" in purges[1][1] and purges[1][2] == 2


def test_a_missing_template_and_an_undefined_variable_are_named_and_the_rest_still_serves(mini: Path, start_node: Any) -> None:
    (mini / "content/posts/post-1.md").write_text("---\ntitle: P\ntemplate: fancy\n---\nx\n")
    (mini / "templates/taxonomy.html").write_text("{% extends 'base.html' %}\n{% block main %}\n{{ nope.attr }}\n{% endblock %}\n")
    node = start_node(mini)
    missing = node.get("/posts/post-1/")
    assert missing.status_code == 500 and "template &#x27;fancy.html&#x27; not found" in missing.text
    assert missing.headers["x-edgesite-error"].startswith("template-missing")
    undefined = node.get("/tags/")
    assert undefined.status_code == 500 and "templates/taxonomy.html, line 3" in undefined.text
    assert "&#x27;nope&#x27; is undefined" in undefined.text
    assert node.get("/posts/post-2/").status_code == 200 and node.get("/about/").status_code == 200
