"""edgesite dev over real HTTP: live-reload events only for the pages an edit affects, and an
error overlay naming file and line that clears when the file is fixed."""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgesite.dev import DevServer, build_dev_server, inject
from tests.conftest import ServerThread, free_port, wait_until_up


class RunningDev:
    """A DevServer served by uvicorn on a loopback port, watching its site, in a thread."""

    def __init__(self, site: Path, state_dir: Path) -> None:
        self.server: DevServer = build_dev_server(site, state_dir, token="t")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ServerThread(self.server, self.port, [self.server.site], True, timeout_graceful_shutdown=1)
        wait_until_up(self.url)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def open_page(self, url: str) -> "Page":
        """GET url like a browser, then open its live-reload stream with the ETag it got."""
        resp = self.client.get(url)
        return Page(self, url, resp.headers.get("etag", "").strip('"'))

    def close(self) -> None:
        self.client.close()
        self._server.stop()
        self.server.site.pool.close()
        self.server.site.cache.close()


class Page:
    """The live-reload stream of one open page: events arrive on a queue."""

    def __init__(self, dev: RunningDev, url: str, etag: str) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._client = httpx.Client(base_url=dev.url, timeout=httpx.Timeout(30, read=None))
        self._thread = threading.Thread(target=self._read, args=(url, etag), daemon=True)
        self._thread.start()
        assert self.next()[0] == "hello"

    def _read(self, url: str, etag: str) -> None:
        event = ""
        try:
            with self._client.stream("GET", "/_edgesite/livereload", params={"url": url, "etag": etag}) as resp:
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        self.events.put((event, json.loads(line[6:])))
        except httpx.HTTPError:
            pass

    def next(self, timeout: float = 15) -> tuple[str, dict[str, Any]]:
        return self.events.get(timeout=timeout)

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def dev(mini: Path, tmp_path: Path) -> Any:
    running = RunningDev(mini, tmp_path / "dev-state")
    yield running
    running.close()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_every_html_page_carries_the_live_reload_script_with_its_etag(dev: RunningDev) -> None:
    resp = dev.client.get("/posts/post-1/", headers={"accept-encoding": "gzip, br"})
    etag = resp.headers["etag"].strip('"')
    assert resp.headers.get("content-encoding") is None
    assert resp.text.count("/_edgesite/livereload.js") == 1
    assert f'data-etag="{etag}"></script></body>' in resp.text
    assert int(resp.headers["content-length"]) == len(resp.content)
    head = dev.client.head("/posts/post-1/")
    assert int(head.headers["content-length"]) == len(resp.content)
    assert "/_edgesite/livereload" not in dev.client.get("/atom.xml").text
    assert dev.client.get("/_edgesite/livereload.js").headers["content-type"].startswith("text/javascript")


def test_inject_puts_the_script_before_the_last_closing_body_tag() -> None:
    assert inject(b"<p>x</p></BODY></html>", "e1") == b'<p>x</p><script src="/_edgesite/livereload.js" data-etag="e1"></script></BODY></html>'
    assert inject(b"<p>x</p>", "e1").endswith(b'data-etag="e1"></script>')


def test_editing_a_page_reloads_it_and_not_an_unaffected_page(dev: RunningDev, mini: Path) -> None:
    post2, about = dev.open_page("/posts/post-2/"), dev.open_page("/about/")
    edit(mini / "content/posts/post-2.md", "More text.", "Edited text.")
    event, data = post2.next()
    assert (event, data["url"]) == ("reload", "/posts/post-2/")
    assert about.next()[0] == "unchanged"
    resp = dev.client.get("/posts/post-2/")
    assert "Edited text." in resp.text and resp.headers["x-cache"] == "HIT"  # the check warmed it
    post2.close()
    about.close()


def test_editing_the_base_template_reloads_every_open_page(dev: RunningDev, mini: Path) -> None:
    pages = [dev.open_page(u) for u in ("/posts/post-1/", "/about/", "/tags/t1/")]
    edit(mini / "templates/base.html", "<main>", '<main class="v2">')
    assert [p.next()[0] for p in pages] == ["reload", "reload", "reload"]
    for page in pages:
        page.close()


def test_an_edit_that_leaves_a_page_byte_identical_does_not_reload_it(dev: RunningDev, mini: Path) -> None:
    about = dev.open_page("/about/")
    (mini / "content/posts/new.md").write_text("---\ntitle: New\ndate: 2024-05-01\n---\nNew.\n")
    assert about.next()[0] == "unchanged"
    about.close()


def test_a_broken_template_shows_an_overlay_naming_file_and_line_and_clears_when_fixed(dev: RunningDev, mini: Path) -> None:
    post1, about = dev.open_page("/posts/post-1/"), dev.open_page("/about/")
    page_html = mini / "templates/page.html"
    good = page_html.read_text()
    page_html.write_text(good.replace("{{ page.title }}</h1>", "{{ page.title }</h1>"))
    for page in (post1, about):
        event, data = page.next()
        assert event == "overlay"
        assert (data["file"], data["line"], data["kind"]) == ("templates/page.html", 2, "template-syntax")
        assert [n for n, _ in data["lines"]] == [1, 2]
        assert "{{ page.title }</h1>" in data["lines"][1][1]
    page_html.write_text(good)
    assert post1.next()[0] == "clear"  # the same bytes as before the error: no reload needed
    assert about.next()[0] == "clear"
    post1.close()
    about.close()


def test_an_undefined_variable_overlay_names_its_line_and_a_changed_fix_reloads(dev: RunningDev, mini: Path) -> None:
    post1 = dev.open_page("/posts/post-1/")
    page_html = mini / "templates/page.html"
    good = page_html.read_text()
    page_html.write_text(good.replace("{{ page.content }}", "\n{{ page.autor.name }}\n{{ page.content }}"))
    event, data = post1.next()
    assert event == "overlay"
    assert (data["file"], data["line"]) == ("templates/page.html", 3)
    assert "autor" in data["message"]
    page_html.write_text(good.replace("{{ page.content }}", "<p>fixed</p>{{ page.content }}"))
    assert post1.next()[0] == "reload"
    assert "<p>fixed</p>" in dev.client.get("/posts/post-1/").text
    post1.close()


def test_broken_front_matter_shows_an_overlay_on_that_page_only(dev: RunningDev, mini: Path) -> None:
    post2, about = dev.open_page("/posts/post-2/"), dev.open_page("/about/")
    good = (mini / "content/posts/post-2.md").read_text()
    (mini / "content/posts/post-2.md").write_text(good.replace("title: Post 2", "title: [Post 2"))
    event, data = post2.next()
    assert event == "overlay"
    assert data["file"] == "content/posts/post-2.md" and data["line"] >= 2
    assert about.next()[0] == "unchanged"
    (mini / "content/posts/post-2.md").write_text(good)
    assert post2.next()[0] == "clear"
    post2.close()
    about.close()


def test_a_broken_site_toml_shows_an_overlay_everywhere_until_fixed(dev: RunningDev, mini: Path) -> None:
    about = dev.open_page("/about/")
    good = (mini / "site.toml").read_text()
    (mini / "site.toml").write_text(good + "\n[broken\n")
    event, data = about.next()
    assert event == "overlay" and data["file"] == "site.toml"
    (mini / "site.toml").write_text(good)
    assert about.next()[0] == "clear"
    about.close()


def test_drafts_are_shown_in_dev(dev: RunningDev) -> None:
    assert dev.client.get("/posts/draft/").status_code == 200
