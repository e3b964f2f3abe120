"""Watching: file edits purge exactly the affected pages on a running node."""

import os
from pathlib import Path
from typing import Any

ALL = ["/", "/page/2/", "/about/", "/posts/", "/posts/page/2/", "/posts/post-1/", "/posts/post-2/", "/posts/post-3/",
       "/tags/", "/tags/common/", "/tags/common/page/2/", "/tags/t1/", "/tags/t2/", "/tags/t3/", "/atom.xml", "/sitemap.xml"]


def warm(node: Any, urls: list[str]) -> None:
    for url in urls:
        node.get(url)
    assert all(node.get(u).headers["x-cache"] == "HIT" for u in urls)


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def wait_new_version(node: Any, before: str) -> None:
    """Until the node has switched to a new version and finished purging for it."""
    site = node.runtimes[0]
    node.wait_for(lambda: site.manifest.version != before and site.last_reload.get("version") == site.manifest.version)


def purged(node: Any, urls: list[str]) -> list[str]:
    return [u for u in urls if node.get(u).headers["x-cache"] == "MISS"]


def test_editing_one_post_purges_it_its_lists_terms_feed_and_sitemap_and_nothing_else(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ALL)
    before = node.runtimes[0].manifest.version
    edit(mini / "content/posts/post-2.md", "More text.", "Edited text.")
    wait_new_version(node, before)
    assert purged(node, ALL) == ["/", "/page/2/", "/posts/", "/posts/page/2/", "/posts/post-2/", "/tags/common/",
                                 "/tags/common/page/2/", "/tags/t2/", "/atom.xml", "/sitemap.xml"]
    assert "Edited text." in node.get("/posts/post-2/").text


def test_editing_a_base_template_purges_every_page_that_extends_it(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ALL + ["/missing/"])
    before = node.runtimes[0].manifest.version
    edit(mini / "templates/base.html", "<main>", "<main class=\"v2\">")
    wait_new_version(node, before)
    html_pages = [u for u in ALL if not u.endswith(".xml")] + ["/missing/"]
    assert purged(node, ALL + ["/missing/"]) == html_pages
    assert '<main class="v2">' in node.get("/posts/post-1/").text


def test_editing_a_partial_or_a_data_file_purges_the_pages_that_read_it(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    (mini / "templates/partials/footer.html").write_text("<footer>f</footer>")
    edit(mini / "templates/page.html", "{% endblock %}", "{% include 'partials/footer.html' %}{% endblock %}")
    wait_new_version(node, "")
    node.wait_for(lambda: "templates/partials/footer.html" in " ".join(node.runtimes[0].manifest.inputs))
    warm(node, ALL)
    before = node.runtimes[0].manifest.version
    edit(mini / "templates/partials/footer.html", "f", "g")
    wait_new_version(node, before)
    assert purged(node, ALL) == ["/about/", "/posts/post-1/", "/posts/post-2/", "/posts/post-3/"]
    warm(node, ALL)
    before = node.runtimes[0].manifest.version
    edit(mini / "data/nav.yaml", "tiny", "wee")
    wait_new_version(node, before)
    assert purged(node, ALL) == [u for u in ALL if not u.endswith(".xml")]
    assert "Mini — wee" in node.get("/about/").text


def test_adding_a_post_at_a_url_cached_as_404_purges_that_404(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    assert node.get("/posts/new-one/").status_code == 404
    assert node.get("/posts/new-one/").headers["x-cache"] == "HIT"
    before = node.runtimes[0].manifest.version
    (mini / "content/posts/new-one.md").write_text("---\ntitle: New one\ndate: 2024-06-01\n---\nFresh.\n")
    wait_new_version(node, before)
    fresh = node.get("/posts/new-one/")
    assert fresh.status_code == 200 and "Fresh." in fresh.text


def test_deleting_and_renaming_a_post_purge_old_url_neighbours_and_lists(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ALL)
    before = node.runtimes[0].manifest.version
    os.rename(mini / "content/posts/post-2.md", mini / "content/posts/renamed.md")
    wait_new_version(node, before)
    assert node.get("/posts/post-2/").status_code == 404
    assert node.get("/posts/renamed/").status_code == 200
    # post-1's previous neighbour was post-2; its link must now point at the renamed page
    assert '<a rel="prev" href="/posts/renamed/">' in node.get("/posts/post-1/").text
    assert "/posts/renamed/" in node.get("/posts/").text + node.get("/posts/page/2/").text
    assert node.get("/about/").headers["x-cache"] == "HIT"
    before = node.runtimes[0].manifest.version
    (mini / "content/posts/renamed.md").unlink()
    wait_new_version(node, before)
    assert node.get("/posts/renamed/").status_code == 404
    assert "/posts/renamed/" not in node.get("/tags/t2/").text + node.get("/posts/").text


def test_editing_site_toml_purges_every_page(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ALL)
    before = node.runtimes[0].manifest.version
    edit(mini / "site.toml", 'title = "Mini"', 'title = "Maxi"')
    wait_new_version(node, before)
    assert purged(node, ALL) == ALL
    assert "<title>Maxi</title>" in node.get("/").text


def test_a_compile_error_keeps_the_old_version_serving(mini: Path, start_node: Any) -> None:
    node = start_node(mini, watch=True)
    warm(node, ["/posts/post-1/"])
    before = node.runtimes[0].manifest.version
    (mini / "content/posts/clash.md").write_text("---\ntitle: Clash\nslug: post-1\n---\nx\n")
    node.wait_for(lambda: "error" in node.runtimes[0].last_reload)
    assert "produced twice" in node.runtimes[0].last_reload["error"]
    assert node.runtimes[0].manifest.version == before
    assert node.get("/posts/post-1/").status_code == 200
    (mini / "content/posts/clash.md").unlink()


def test_a_restarted_node_purges_what_changed_while_it_was_down(mini: Path, tmp_path: Path, start_node: Any) -> None:
    state = tmp_path / "shared-state"
    first = start_node(mini, state_dir=state)
    warm(first, ["/posts/post-1/", "/posts/post-2/"])
    first.close()
    edit(mini / "content/posts/post-1.md", "More text.", "Changed while down.")
    second = start_node(mini, state_dir=state)
    assert "Changed while down." in second.get("/posts/post-1/").text
    assert second.get("/posts/post-2/").headers["x-cache"] == "HIT"
