"""edgesite new: the starter site compiles, every route serves from a real node, nothing is overwritten."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgesite.cli import main
from edgesite.errors import EdgesiteError
from edgesite.routes import compile_site
from edgesite.scaffold import create

EXPECTED = ["/", "/about/", "/atom.xml", "/posts/", "/posts/hello-world/", "/posts/writing-with-edgesite/",
            "/sitemap.xml", "/tags/", "/tags/howto/", "/tags/welcome/"]


def test_new_writes_a_site_whose_every_route_serves_from_a_node(tmp_path: Path, start_node: Any) -> None:
    site = tmp_path / "my-blog"
    result = CliRunner().invoke(main, ["new", str(site)])
    assert result.exit_code == 0, result.output
    manifest = compile_site(site)
    assert manifest.errors == {}
    urls = sorted(manifest.routes)
    assert set(EXPECTED) <= set(urls)
    node = start_node(site)
    for url in urls:
        resp = node.get(url)
        assert resp.status_code == 200, (url, resp.text[:500])
    missing = node.get("/no/such/page/")
    assert missing.status_code == 404 and "Page not found" in missing.text
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', node.get("/").text):
        assert node.get(asset).status_code == 200


def test_the_title_comes_from_the_folder_name_or_the_option(tmp_path: Path) -> None:
    create(tmp_path / "my-blog")
    assert 'title = "My Blog"' in (tmp_path / "my-blog/site.toml").read_text()
    create(tmp_path / "x", title='Ann\'s "notes"')
    assert compile_site(tmp_path / "x").site["title"] == 'Ann\'s "notes"'


def test_the_theme_has_landmarks_a_skip_link_and_a_dark_mode(tmp_path: Path, start_node: Any) -> None:
    create(tmp_path / "s")
    node = start_node(tmp_path / "s")
    html = node.get("/posts/hello-world/").text
    for needle in ('<a class="skip-link" href="#main">', '<main id="main"', '<header class="site-header">',
                   '<nav class="menu" aria-label="Main">', '<footer class="site-footer">', 'name="viewport"',
                   'class="theme-toggle"', 'aria-pressed="false"', 'role="search"', 'lang="en"'):
        assert needle in html, needle
    assert "http://" not in re.sub(r'href="http://127\.0\.0\.1:8000/[^"]*"', "", html)  # no external requests
    css = (tmp_path / "s/static/css/site.css").read_text()
    assert "prefers-color-scheme: dark" in css and '[data-theme="dark"]' in css and ":focus-visible" in css
    assert 'localStorage.setItem("theme"' in (tmp_path / "s/static/js/site.js").read_text()
    assert 'fetch("/search.json"' in (tmp_path / "s/static/js/site.js").read_text()


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full/notes.txt").write_text("mine")
    with pytest.raises(EdgesiteError, match="is not empty"):
        create(tmp_path / "full")
    result = CliRunner().invoke(main, ["new", str(tmp_path / "full")])
    assert result.exit_code == 1
    assert "is not empty" in result.output
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["notes.txt"]


def test_new_accepts_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    written = create(tmp_path / "empty")
    assert Path("site.toml") in written and Path("templates/base.html") in written
