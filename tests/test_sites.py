"""The example sites are end-to-end tests: real nodes on loopback walk every route of every
site in sites/, in isolates and in-process, and both must give identical bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgesite.routes import compile_site

REPO = Path(__file__).parent.parent
SITES = sorted(p for p in (REPO / "sites").iterdir() if (p / "site.toml").is_file())


def routes_of(site: Path) -> list[str]:
    manifest = compile_site(site)
    return sorted(url for url, route in manifest.routes.items() if route["kind"] != "worker" or "{" not in url)


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, tuple[int, bytes, str]]]]:
    """{mode: {site: {url: (status, body, content-type)}}} for every route, every site, both modes."""
    from tests.conftest import RunningNode

    out: dict[str, dict[str, dict[str, tuple[int, bytes, str]]]] = {}
    for mode in ("none", "wasm"):
        state = tmp_path_factory.mktemp(f"walk-{mode}")
        node = RunningNode(SITES, state, isolation=mode)
        try:
            out[mode] = {}
            for site in SITES:
                host = {"host": f"{site.name}.localhost", "accept-encoding": "identity"}
                pages = {}
                for url in routes_of(site) + ["/no/such/page/"]:
                    resp = node.get(url, headers=host)
                    pages[url] = (resp.status_code, resp.content, resp.headers.get("content-type", ""))
                out[mode][site.name] = pages
        finally:
            node.close()
    return out


@pytest.mark.parametrize("site", SITES, ids=[s.name for s in SITES])
def test_every_route_of_every_example_site_serves(walked: Any, site: Path) -> None:
    pages = walked["none"][site.name]
    failed = {url: status for url, (status, _, _) in pages.items() if status >= 500}
    assert failed == {}
    assert pages["/no/such/page/"][0] == 404
    html = [url for url, (status, _, ctype) in pages.items() if status == 200 and ctype.startswith("text/html")]
    assert len(html) >= 10
    assert all(b"</html>" in pages[url][1] for url in html)


@pytest.mark.parametrize("site", SITES, ids=[s.name for s in SITES])
def test_isolates_and_in_process_rendering_give_identical_bytes(walked: Any, site: Path) -> None:
    inline, wasm = walked["none"][site.name], walked["wasm"][site.name]
    assert inline.keys() == wasm.keys()
    different = [url for url in inline if inline[url] != wasm[url]]
    assert different == []
