"""A real browser under ``edgesite dev``: Chromium (Debian's package) driven over its DevTools
protocol by a tiny client on ``websockets``. An edited Markdown file reloads the open page; a
broken template shows the overlay, which goes when fixed; the default theme is screenshotted
at desktop and phone widths, light and dark."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest

from edgesite.scaffold import create
from tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio"]


class CDP:
    """One DevTools websocket to the browser; commands go to one page through a flat session."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(ws_url, max_size=None, open_timeout=20))
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def open_page(self) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None  # the page is between documents
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"not true within {timeout}s: {expression}")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = Path(profile) / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("chromium did not start")
        time.sleep(0.05)
    port, path = port_file.read_text().split("\n")[:2]
    cdp = CDP(f"ws://127.0.0.1:{port}{path}")
    cdp.open_page()
    yield cdp
    cdp.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def dev_site(tmp_path: Path) -> Any:
    """A fresh starter site under a real ``edgesite dev`` process; yields (site path, base URL)."""
    site = tmp_path / "site"
    create(site)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgesite", "dev", str(site), "--port", str(port), "--cache-dir", str(tmp_path / "state")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/_edgesite/status", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("edgesite dev did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))
            time.sleep(0.1)
    yield site, base
    proc.terminate()
    proc.wait(timeout=10)


def live(cdp: CDP) -> None:
    """Wait until the page's live-reload stream is open, and mark the document."""
    cdp.wait_for("window.__edgesiteDev && window.__edgesiteDev.source.readyState === 1")
    cdp.evaluate("window.__marker = 'before'")


def test_editing_the_markdown_of_the_open_page_reloads_it_with_the_new_text(browser: CDP, dev_site: Any) -> None:
    site, base = dev_site
    browser.goto(base + "/posts/hello-world/")
    assert "This is the first post." in browser.evaluate("document.querySelector('main').innerText")
    live(browser)
    post = site / "content/posts/hello-world.md"
    post.write_text(post.read_text().replace("This is the first post.", "This post was edited while it was open."))
    browser.wait_for("window.__marker === undefined && document.readyState === 'complete' && "
                     "document.querySelector('main').innerText.includes('This post was edited while it was open.')")


def test_an_edit_elsewhere_does_not_reload_the_open_page(browser: CDP, dev_site: Any) -> None:
    site, base = dev_site
    browser.goto(base + "/about/")
    live(browser)
    post = site / "content/posts/hello-world.md"
    post.write_text(post.read_text().replace("This is the first post.", "Changed."))
    browser.wait_for(f"fetch({json.dumps(base + '/posts/hello-world/')}).then(r => r.text()).then(t => t.includes('Changed.'))")
    time.sleep(0.5)
    assert browser.evaluate("window.__marker") == "before"


def test_a_broken_template_shows_the_overlay_and_fixing_it_removes_it(browser: CDP, dev_site: Any) -> None:
    site, base = dev_site
    browser.goto(base + "/posts/hello-world/")
    live(browser)
    page_html = site / "templates/page.html"
    good = page_html.read_text()
    page_html.write_text(good.replace("{{ page.title }}</h1>", "{{ page.title }</h1>"))
    text = browser.wait_for("(function(){var o=document.querySelector('edgesite-overlay');"
                            "return o && o.shadowRoot.textContent;})()")
    assert "templates/page.html, line 9" in text and "{{ page.title }</h1>" in text
    if os.environ.get("EDGESITE_SCREENSHOTS"):
        shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        (Path(os.environ["EDGESITE_SCREENSHOTS"]) / "overlay.png").write_bytes(shot)
    page_html.write_text(good)
    browser.wait_for("document.querySelector('edgesite-overlay') === null")
    assert browser.evaluate("window.__marker") == "before"  # the same bytes as before: cleared, not reloaded


def test_the_dark_mode_toggle_persists_across_pages(browser: CDP, dev_site: Any) -> None:
    _, base = dev_site
    browser.goto(base + "/")
    browser.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])
    assert browser.evaluate("document.querySelector('.theme-toggle').getAttribute('aria-pressed')") == "false"
    browser.evaluate("document.querySelector('.theme-toggle').click()")
    assert browser.evaluate("localStorage.getItem('theme')") == "dark"
    browser.goto(base + "/about/")
    assert browser.evaluate("document.documentElement.dataset.theme") == "dark"
    assert browser.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 20, 24)"
    assert browser.evaluate("document.querySelector('.theme-toggle').getAttribute('aria-pressed')") == "true"
    browser.evaluate("localStorage.removeItem('theme')")


SHOTS = [("desktop", 1280, 900, False), ("phone", 390, 844, True)]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name,width,height,mobile", SHOTS, ids=[s[0] for s in SHOTS])
def test_screenshots_of_the_default_theme(browser: CDP, dev_site: Any, tmp_path: Path, scheme: str, name: str, width: int,
                                          height: int, mobile: bool) -> None:
    _, base = dev_site
    out = Path(os.environ.get("EDGESITE_SCREENSHOTS") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
    browser.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])
    lightness = {}
    for page in ("/", "/posts/hello-world/"):
        browser.goto(base + page)
        data = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        path = out / f"{name}-{scheme}-{page.strip('/').replace('/', '-') or 'home'}.png"
        path.write_bytes(data)
        w, h, pixels = decode_png(data)
        assert (w, h) == (width, height)
        assert len(set(pixels)) > 20, f"{path} looks blank"
        lightness[page] = sum(sum(p[:3]) for p in pixels) / (3 * len(pixels))
    for value in lightness.values():
        assert value > 200 if scheme == "light" else value < 60


def decode_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and a sample of the pixels of an 8-bit RGB(A), non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 8 == 0:
            pixels += [tuple(line[x:x + bpp]) for x in range(0, stride, bpp * 8)]
        prev = line
    return width, height, pixels
