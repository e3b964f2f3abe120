"""Dependency exactness: whatever a page read, at any depth, purges it when it changes, and
nothing else does. Each test runs a real node with watching and asserts the exact purged set."""

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from edgesite.contract import RenderRequest
from edgesite.render import Renderer
from edgesite.routes import compile_site

ALL = ["/", "/page/2/", "/about/", "/posts/", "/posts/page/2/", "/posts/post-1/", "/posts/post-2/", "/posts/post-3/",
       "/tags/", "/tags/common/", "/tags/common/page/2/", "/tags/t1/", "/tags/t2/", "/tags/t3/", "/atom.xml",
       "/sitemap.xml", "/search.json"]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def warm(node: Any, urls: list[str]) -> None:
    for url in urls:
        node.get(url)
    assert [u for u in urls if node.get(u).headers["x-cache"] != "HIT"] == []


def purged(node: Any, urls: list[str]) -> list[str]:
    return [u for u in urls if node.get(u).headers["x-cache"] == "MISS"]


def settled(node: Any) -> bool:
    """The node has switched to a new version *and* purged (reload switches first)."""
    site = node.runtimes[0]
    return bool(site.last_reload.get("version") == site.manifest.version)


def changed(node: Any, action: Any) -> None:
    before = node.runtimes[0].manifest.version
    action()
    node.wait_for(lambda: node.runtimes[0].manifest.version != before and settled(node))


def test_editing_a_partial_used_only_by_a_shortcode_purges_exactly_the_pages_using_that_shortcode(mini: Path, start_node: Any) -> None:
    write(mini / "templates/partials/box-inner.html", "inner v1")
    write(mini / "templates/shortcodes/box.html", "<div class=box>{% include 'partials/box-inner.html' %}</div>")
    edit(mini / "content/posts/post-1.md", "More text.", "{{< box >}}\n\nMore text.")
    edit(mini / "content/about.md", "About *us*.", "About *us*.\n\n{{< box >}}")
    node = start_node(mini, watch=True)
    warm(node, ALL)
    changed(node, lambda: edit(mini / "templates/partials/box-inner.html", "v1", "v2"))
    assert purged(node, ALL) == ["/about/", "/posts/post-1/"]
    assert "<div class=box>inner v2</div>" in node.get("/posts/post-1/").text


def test_a_data_file_read_by_a_macro_purges_only_the_pages_that_call_the_macro(mini: Path, start_node: Any) -> None:
    write(mini / "data/badges.yaml", "label: beta\n")
    write(mini / "templates/macros.html", "{% macro badge() %}<b>{{ data.badges.label }}</b>{% endmacro %}"
          "{% macro plain() %}<i>plain</i>{% endmacro %}")
    write(mini / "templates/special.html", "{% extends 'page.html' %}{% import 'macros.html' as m with context %}"
          "{% block main %}{{ m.badge() }}{{ super() }}{% endblock %}")
    write(mini / "templates/section.html", "{% import 'macros.html' as m %}" + (mini / "templates/section.html").read_text()
          .replace("{% block main %}", "{% block main %}{{ m.plain() }}"))
    edit(mini / "content/about.md", 'title = "About"', 'title = "About"\ntemplate = "special"')
    node = start_node(mini, watch=True)
    warm(node, ALL)
    changed(node, lambda: edit(mini / "data/badges.yaml", "beta", "gamma"))
    assert purged(node, ALL) == ["/about/"]
    assert "<b>gamma</b>" in node.get("/about/").text


def test_renaming_a_post_purges_its_neighbours_its_old_url_and_the_lists_and_nothing_else(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ALL)
    changed(node, lambda: os.rename(mini / "content/posts/post-2.md", mini / "content/posts/renamed.md"))
    assert purged(node, ALL) == ["/", "/page/2/", "/posts/", "/posts/page/2/", "/posts/post-1/", "/posts/post-2/",
                                 "/posts/post-3/", "/tags/common/", "/tags/common/page/2/", "/tags/t2/", "/atom.xml",
                                 "/sitemap.xml", "/search.json"]
    assert node.get("/posts/post-2/").status_code == 404
    assert '<a rel="prev" href="/posts/renamed/">Post 2</a>' in node.get("/posts/post-1/").text


def test_renaming_a_post_with_an_alias_turns_its_old_url_into_a_redirect(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ALL)

    def rename() -> None:
        text = (mini / "content/posts/post-2.md").read_text().replace("title: Post 2", "title: Post 2\naliases: [/posts/post-2/]")
        (mini / "content/posts/renamed.md").write_text(text)
        (mini / "content/posts/post-2.md").unlink()

    changed(node, rename)
    node.wait_for(lambda: "content/posts/post-2.md" not in node.runtimes[0].manifest.pages and settled(node))
    old = node.get("/posts/post-2/", follow_redirects=False)
    assert old.status_code == 301 and old.headers["location"] == "/posts/renamed/"
    assert node.get("/about/").headers["x-cache"] == "HIT" and node.get("/tags/t1/").headers["x-cache"] == "HIT"


def test_a_future_dated_post_appears_at_its_date_without_any_edit(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ALL)
    due = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=3)
    changed(node, lambda: write(mini / "content/posts/soon.md", f"---\ntitle: Soon\ndate: {due.isoformat()}\ntags: [t1]\n---\nNow.\n"))
    assert node.runtimes[0].manifest.next_publish == due.isoformat()
    assert node.get("/posts/soon/").status_code == 404
    assert purged(node, ALL) == []  # a hidden post changes nothing that is served
    node.wait_for(lambda: node.get("/posts/soon/").status_code == 200, timeout=15)
    assert dt.datetime.now(dt.timezone.utc) >= due
    assert "Now." in node.get("/posts/soon/").text
    assert purged(node, ALL) == ["/", "/page/2/", "/posts/", "/posts/page/2/", "/posts/post-3/", "/tags/", "/tags/t1/",
                                 "/atom.xml", "/sitemap.xml", "/search.json"]


def test_a_global_input_is_one_tag_every_page_carries(mini: Path, start_node: Any) -> None:
    manifest = compile_site(mini)
    versions = mini.parent / "versions"
    manifest.write(versions)
    renderer = Renderer(str(mini), str(versions))
    for url in ALL + ["/missing/"]:
        route = manifest.match(url) or {"kind": "not_found", "template": "404.html"}
        inputs = renderer.handle(RenderRequest("GET", url, [], json.dumps(route), manifest.version)).inputs
        assert "file:site.toml" in inputs, url
    node = start_node(mini, watch=True)
    warm(node, ALL + ["/missing/"])
    changed(node, lambda: edit(mini / "site.toml", 'name = "Posts"', 'name = "All posts"'))
    assert purged(node, ALL + ["/missing/"]) == ALL + ["/missing/"]


def test_related_links_depend_on_the_shared_term_lists_only(mini: Path, start_node: Any) -> None:
    edit(mini / "templates/page.html", "{{ page.content }}", "{{ page.content }}{% for r in page.related %}[{{ r.title }}]{% endfor %}")
    node = start_node(mini, watch=True)
    warm(node, ALL)
    changed(node, lambda: write(mini / "content/posts/post-0.md", "---\ntitle: Post 0\ndate: 2023-01-01\ntags: [t3]\n---\nx\n"))
    assert purged(node, ALL) == ["/", "/page/2/", "/posts/", "/posts/page/2/", "/posts/post-1/", "/posts/post-3/", "/tags/",
                                 "/tags/t3/", "/atom.xml", "/sitemap.xml", "/search.json"]
    assert "[Post 0]" in node.get("/posts/post-3/").text  # post-1 is purged as post-0's new neighbour, not as related


def test_adding_a_translation_purges_the_pages_that_show_their_translations(mini: Path, start_node: Any) -> None:
    edit(mini / "site.toml", 'base_url = "http://example.test/"', 'base_url = "http://example.test/"\nlanguage = "en"')
    with open(mini / "site.toml", "a") as fh:
        fh.write('[languages.en]\nname = "English"\n[languages.fr]\nname = "Français"\n')
    edit(mini / "templates/page.html", "{{ page.content }}", "{{ page.content }}{% for t in page.translations %}<a hreflang={{ t.lang }} href={{ t.url }}>{% endfor %}")
    node = start_node(mini, watch=True)
    warm(node, ALL)
    changed(node, lambda: write(mini / "content/posts/post-2.fr.md", "---\ntitle: Article 2\ndate: 2024-02-01\n---\nx\n"))
    assert purged(node, ALL) == ["/posts/post-2/", "/sitemap.xml", "/search.json"]
    assert "<a hreflang=fr href=/fr/posts/post-2/>" in node.get("/posts/post-2/").text


def test_a_scheduled_post_appears_at_its_date_even_without_watching(mini: Path, start_node: Any) -> None:
    due = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=3)
    write(mini / "content/posts/soon.md", f"---\ntitle: Soon\ndate: {due.isoformat()}\n---\nNow.\n")
    node = start_node(mini, watch=False)
    assert node.get("/posts/soon/").status_code == 404
    node.wait_for(lambda: node.get("/posts/soon/").status_code == 200, timeout=15)
    assert dt.datetime.now(dt.timezone.utc) >= due
    assert "/posts/soon/" in node.get("/posts/").text
