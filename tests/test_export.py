"""edgesite export: the site as static files, byte-identical to what a node serves."""

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from edgesite.cli import main
from edgesite.export import export_site, output_path
from edgesite.routes import compile_site

REPO = Path(__file__).parent.parent


def test_output_paths_put_folder_urls_in_index_files(tmp_path: Path) -> None:
    assert output_path(tmp_path, "/") == tmp_path / "index.html"
    assert output_path(tmp_path, "/posts/x/") == tmp_path / "posts/x/index.html"
    assert output_path(tmp_path, "/atom.xml") == tmp_path / "atom.xml"


def test_an_export_is_byte_identical_to_what_a_node_serves(mini: Path, tmp_path: Path, start_node: Any) -> None:
    (mini / "content/posts/post-1.md").write_text(
        "---\ntitle: Post 1\ndate: 2024-01-01\ntags: [common, t1]\naliases: [/old/one/]\n---\nBody of post 1.\n")
    out = tmp_path / "out"
    report = export_site(mini, out)
    assert report.failed == [] and report.skipped == []
    manifest = compile_site(mini)
    node = start_node(mini)
    for url in list(manifest.routes) + ["/404.html"]:
        served = node.get(url, follow_redirects=False)
        assert output_path(out, url).read_bytes() == served.content, url
    assert node.get("/old/one/", follow_redirects=False).status_code == 301
    assert '<meta http-equiv="refresh" content="0; url=/posts/post-1/">' in (out / "old/one/index.html").read_text()
    assert "Not found: /404.html" in (out / "404.html").read_text()
    for path, url in manifest.static.items():
        original = (mini / "static" / path).read_bytes()
        assert (out / "static" / path).read_bytes() == original == node.get(url).content
        assert (out / url.lstrip("/")).read_bytes() == original


def test_export_command_reports_a_failing_page_and_exits_1(mini: Path, tmp_path: Path) -> None:
    (mini / "templates/page.html").write_text("{% extends 'base.html' %}{% block main %}{{ nope.x }}{% endblock %}")
    result = CliRunner().invoke(main, ["export", str(mini), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "error: /about/: templates/page.html, line 1: undefined variable: 'nope' is undefined" in result.output
    assert (tmp_path / "out/posts/index.html").is_file()


def test_both_example_sites_export_without_errors(tmp_path: Path) -> None:
    for name in ("blog", "docs"):
        report = export_site(REPO / "sites" / name, tmp_path / name)
        assert report.failed == [], name
        assert (tmp_path / name / "index.html").is_file() and (tmp_path / name / "search.json").is_file()
