import datetime as dt
import json
import os
from pathlib import Path

import pytest

from edgesite.errors import CompileError
from edgesite.routes import Compiler, compile_site
from edgesite.site import Site


def test_the_route_table_lists_every_page_list_term_feed_and_sitemap(mini: Path) -> None:
    manifest = compile_site(mini)
    assert sorted(manifest.routes) == [
        "/", "/about/", "/atom.xml", "/page/2/", "/posts/", "/posts/page/2/", "/posts/post-1/", "/posts/post-2/",
        "/posts/post-3/", "/search.json", "/sitemap.xml", "/tags/", "/tags/common/", "/tags/common/page/2/", "/tags/t1/", "/tags/t2/", "/tags/t3/",
    ]
    assert manifest.routes["/posts/post-1/"] == {"kind": "page", "page": "content/posts/post-1.md", "template": "page.html"}
    assert manifest.routes["/posts/page/2/"]["number"] == 2


def test_drafts_are_hidden_unless_asked_for(mini: Path) -> None:
    assert "/posts/draft/" not in compile_site(mini).routes
    assert "/posts/draft/" in compile_site(mini, include_drafts=True).routes


def test_future_pages_are_hidden_until_their_date(mini: Path) -> None:
    (mini / "content/posts/later.md").write_text("---\ntitle: Later\ndate: 2030-01-01\n---\nsoon\n")
    compiler = Compiler(Site.open(mini))
    before = compiler.compile(now=dt.datetime(2029, 12, 31, tzinfo=dt.timezone.utc))
    assert "/posts/later/" not in before.routes
    assert before.next_publish == "2030-01-01T00:00:00+00:00"
    after = compiler.compile(now=dt.datetime(2030, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc))
    assert "/posts/later/" in after.routes and after.next_publish is None


def test_permalinks_aliases_and_explicit_urls(mini: Path) -> None:
    site_toml = mini / "site.toml"
    site_toml.write_text(site_toml.read_text() + '\n[permalinks]\nposts = "/{year}/{month}/{slug}/"\n')
    (mini / "content/posts/post-1.md").write_text("---\ntitle: One\ndate: 2024-01-05\nslug: first\naliases: [/old/one]\n---\nx\n")
    (mini / "content/special.md").write_text("---\ntitle: S\nurl: /custom/place/\n---\nx\n")
    manifest = compile_site(mini)
    assert manifest.routes["/2024/01/first/"]["page"] == "content/posts/post-1.md"
    assert manifest.routes["/old/one/"] == {"kind": "alias", "target": "/2024/01/first/"}
    assert manifest.routes["/custom/place/"]["page"] == "content/special.md"


def test_duplicate_urls_are_a_compile_error_naming_both_files(mini: Path) -> None:
    (mini / "content/posts/clash.md").write_text("---\ntitle: Clash\nslug: post-1\n---\nx\n")
    with pytest.raises(CompileError) as err:
        compile_site(mini)
    assert "URL /posts/post-1/ is produced twice" in str(err.value)
    assert "content/posts/post-1.md" in str(err.value) and "content/posts/clash.md" in str(err.value)


def test_bad_permalinks_are_compile_errors(mini: Path) -> None:
    site_toml = mini / "site.toml"
    original = site_toml.read_text()
    site_toml.write_text(original + '\n[permalinks]\nposts = "/{yeer}/{slug}/"\n')
    with pytest.raises(CompileError, match=r"unknown placeholder \{yeer\}"):
        compile_site(mini)
    site_toml.write_text(original + '\n[permalinks]\nposts = "{slug}/"\n')
    with pytest.raises(CompileError, match="must start with '/'"):
        compile_site(mini)


def test_a_recompile_after_one_edit_reads_only_that_file(mini: Path) -> None:
    compiler = Compiler(Site.open(mini))
    first = compiler.compile()
    assert compiler.files_read > 10
    target = mini / "content/posts/post-2.md"
    target.write_text(target.read_text().replace("Body of post 2", "Edited body"))
    os.utime(target, ns=(1, 2_000_000_000_000_000_000))
    second = compiler.compile()
    assert compiler.files_read == 1
    assert second.version != first.version
    assert compiler.compile().version == second.version and compiler.files_read == 0


def test_broken_front_matter_becomes_an_error_route_and_the_rest_compiles(mini: Path) -> None:
    (mini / "content/posts/broken.md").write_text("---\ntitle: [unclosed\n---\nx\n")
    manifest = compile_site(mini)
    route = manifest.routes["/posts/broken/"]
    assert route["kind"] == "error" and route["file"] == "content/posts/broken.md" and route["line"] == 3
    assert "/posts/post-1/" in manifest.routes


def test_worker_routes_are_read_without_running_worker_py(mini: Path) -> None:
    (mini / "worker.py").write_text(
        "raise SystemExit('the host must never run this')\n"
        "@route('/search.json')\ndef search(request, site): pass\n"
        "@route('/hello/{name}/')\ndef hello(request, site): pass\n"
    )
    manifest = compile_site(mini)
    assert manifest.routes["/search.json"]["function"] == "search"
    assert manifest.match("/hello/ada/")["params"] == {"name": "ada"}


def test_the_manifest_round_trips_through_json(mini: Path, tmp_path: Path) -> None:
    from edgesite.routes import Manifest

    manifest = compile_site(mini)
    path = manifest.write(tmp_path / "versions")
    again = Manifest.from_json(json.loads(path.read_text()))
    assert again.to_json() == manifest.to_json()


def _json_shaped(value: object, where: str = "manifest") -> list[str]:
    """Places where a value is not what json.loads would give (tuples, dates, non-str keys)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in ([f"{where}: key {k!r}"] if not isinstance(k, str) else []) + _json_shaped(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _json_shaped(v, f"{where}[{i}]")]
    return [] if value is None or isinstance(value, str | int | float | bool) else [f"{where}: {type(value).__name__}"]


def test_the_manifest_a_process_keeps_is_exactly_what_its_json_gives(mini: Path, tmp_path: Path) -> None:
    """In-process renders reuse the written object instead of parsing the file; the isolate
    parses it. Both must see the same values in the same order."""
    import shutil

    from edgesite.routes import Manifest

    (mini / "data/dates.yaml").write_text("when: 2024-01-02\nat: {1: one}\nlist: [2024-01-03]\n")
    (mini / "data/t.toml").write_text("start = 07:32:00\nday = 1979-05-27\n")
    sites = [mini] + [p for p in sorted((Path(__file__).parent.parent / "sites").iterdir()) if (p / "site.toml").exists()]
    for site in sites:
        manifest = compile_site(site)
        path = manifest.write(tmp_path / site.name)
        assert Manifest.read(str(path)) is manifest
        assert _json_shaped(manifest.to_json()) == []
        parsed = json.loads(path.read_text())
        assert json.dumps(parsed) == json.dumps(manifest.to_json())
    assert compile_site(mini).data["dates"]["value"] == {"when": "2024-01-02", "at": {"1": "one"}, "list": ["2024-01-03"]}
    shutil.rmtree(tmp_path / "mini")
