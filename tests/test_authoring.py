"""Authoring features: what Hugo, Jekyll, Pelican and MkDocs authors rely on."""

import json
import os
import subprocess
from pathlib import Path

from edgesite.contract import RenderResponse
from edgesite.render import Renderer
from edgesite.contract import RenderRequest
from edgesite.routes import compile_site


def render(site: Path, url: str) -> RenderResponse:
    manifest = compile_site(site)
    versions = site.parent / "versions"
    manifest.write(versions)
    route = manifest.match(url) or {"kind": "not_found", "template": "404.html"}
    return Renderer(str(site), str(versions)).handle(RenderRequest("GET", url, [], json.dumps(route), manifest.version))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_shortcodes_are_not_expanded_in_code_and_can_be_escaped(mini: Path) -> None:
    write(mini / "templates/shortcodes/note.html", "<aside>{{ text }}</aside>")
    write(mini / "content/sc.md", '---\ntitle: SC\n---\n{{< note text="a" >}}\n\nInline `{{< note text="b" >}}`.\n\n'
          '```\n{{< note text="c" >}}\n{{</* note text="d" */>}}\n```\n\nShown: {{</* note */>}}\n')
    body = render(mini, "/sc/").body
    assert "<aside>a</aside>" in body and "<aside>b</aside>" not in body and "<aside>c</aside>" not in body
    assert "<code>{{&lt; note text=&quot;b&quot; &gt;}}</code>" in body
    assert "<pre><code>{{&lt; note text=&quot;c&quot; &gt;}}\n{{&lt; note text=&quot;d&quot; &gt;}}\n</code></pre>" in body
    assert "<p>Shown: {{&lt; note &gt;}}</p>" in body


def test_csv_data_files_are_lists_of_rows(mini: Path) -> None:
    write(mini / "data/people.csv", "name,role\nAda,author\nLin,editor\n")
    write(mini / "templates/page.html", "{% for p in data.people %}{{ p.name }}={{ p.role }};{% endfor %}")
    resp = render(mini, "/about/")
    assert resp.body == "Ada=author;Lin=editor;" and "file:data/people.csv" in resp.inputs


def test_related_pages_share_terms_in_a_deterministic_order_and_depend_on_those_terms(mini: Path) -> None:
    write(mini / "content/posts/post-4.md", "---\ntitle: Post 4\ndate: 2024-04-01\ntags: [t1, common]\n---\nx\n")
    write(mini / "templates/page.html", "{% for p in page.related %}{{ p.title }};{% endfor %}")
    resp = render(mini, "/posts/post-1/")
    assert resp.body == "Post 4;Post 3;Post 2;"  # two shared terms first, then newest first
    assert {"list:term:tags:common", "list:term:tags:t1"} <= set(resp.inputs)


def test_previous_and_next_follow_the_section_order(mini: Path) -> None:
    write(mini / "templates/page.html", "{{ page.prev.title if page.prev else '-' }}|{{ page.next.title if page.next else '-' }}")
    assert render(mini, "/posts/post-2/").body == "Post 3|Post 1"
    assert "neighbours:content/posts/post-2.md" in render(mini, "/posts/post-2/").inputs


def test_search_json_lists_every_page_and_depends_on_the_list_of_all_pages(mini: Path) -> None:
    resp = render(mini, "/search.json")
    assert ("content-type", "application/json") in resp.headers and resp.inputs == ["file:site.toml", "list:all"]
    entries = json.loads(resp.body)
    assert entries[0] == {"title": "Post 3", "url": "/posts/post-3/", "summary": "Body of post 3.", "tags": ["common", "t3"]}
    assert [e["url"] for e in entries] == ["/posts/post-3/", "/posts/post-2/", "/posts/post-1/", "/about/"]


def test_summaries_reading_time_and_word_count(mini: Path) -> None:
    write(mini / "content/long.md", "---\ntitle: Long\n---\nFirst *part*.\n<!--more-->\n" + "word " * 450 + "\n")
    write(mini / "templates/page.html", "{{ page.summary }}|{{ page.word_count }}|{{ page.reading_time }}")
    assert render(mini, "/long/").body == "<p>First <em>part</em>.</p>\n|453|3"


def multilingual(mini: Path) -> None:
    write(mini / "site.toml", (mini / "site.toml").read_text().replace(
        'base_url = "http://example.test/"', 'base_url = "http://example.test/"\nlanguage = "en"') +
        '[languages.en]\nname = "English"\nweight = 1\n[languages.fr]\nname = "Français"\ntitle = "Mini FR"\nweight = 2\n')
    write(mini / "content/posts/post-1.fr.md", "---\ntitle: Article 1\ndate: 2024-01-01\ntags: [commun]\n---\nCorps.\n")
    write(mini / "content/fr/posts/post-2.md", "---\ntitle: Article 2\ndate: 2024-02-01\n---\nCorps 2.\n")
    write(mini / "templates/page.html", "{{ page.lang }}:{% for t in page.translations %}{{ t.lang }}={{ t.url }};{% endfor %}"
          "{% for t in page.tags %}{{ t.url }}{% endfor %}")


def test_multilingual_pages_have_prefixed_urls_translations_and_their_own_terms(mini: Path) -> None:
    multilingual(mini)
    manifest = compile_site(mini)
    assert {"/fr/", "/fr/posts/", "/fr/posts/post-1/", "/fr/posts/post-2/", "/fr/tags/commun/", "/fr/atom.xml",
            "/fr/sitemap.xml"} <= set(manifest.routes)
    assert "/tags/commun/" not in manifest.routes
    assert render(mini, "/posts/post-1/").body == "en:fr=/fr/posts/post-1/;/tags/common//tags/t1/"
    resp = render(mini, "/fr/posts/post-1/")
    assert resp.body == "fr:en=/posts/post-1/;/fr/tags/commun/"
    assert "translations:content/posts/post-1.fr.md" in resp.inputs
    assert render(mini, "/fr/posts/post-2/").body == "fr:en=/posts/post-2/;"


def test_each_language_has_its_feed_and_a_sitemap_with_hreflang_alternates(mini: Path) -> None:
    multilingual(mini)
    feed = render(mini, "/fr/atom.xml").body
    assert "<title>Mini FR</title>" in feed and "Article 2" in feed and "Post 1" not in feed
    assert '<link href="http://example.test/fr/atom.xml" rel="self"/>' in feed
    sitemap = render(mini, "/sitemap.xml").body
    assert ('<url><loc>http://example.test/posts/post-1/</loc><lastmod>2024-01-01</lastmod>'
            '<xhtml:link rel="alternate" hreflang="en" href="http://example.test/posts/post-1/"/>'
            '<xhtml:link rel="alternate" hreflang="fr" href="http://example.test/fr/posts/post-1/"/></url>') in sitemap.replace(
        *_lastmod(sitemap))
    assert "/fr/" not in render(mini, "/sitemap.xml").body.split("hreflang")[0]
    assert "<loc>http://example.test/fr/posts/post-2/</loc>" in render(mini, "/fr/sitemap.xml").body


def _lastmod(sitemap: str) -> tuple[str, str]:
    """The sitemap's lastmod of post-1 comes from its mtime here (no git): normalise it."""
    start = sitemap.index("<loc>http://example.test/posts/post-1/</loc><lastmod>") + len("<loc>http://example.test/posts/post-1/</loc><lastmod>")
    return sitemap[start: start + 10], "2024-01-01"


def test_last_modified_comes_from_front_matter_else_git_else_mtime(mini: Path) -> None:
    write(mini / "templates/page.html", "{{ page.lastmod | date('%Y-%m-%d %H:%M') }}")
    write(mini / "content/fm.md", "---\ntitle: FM\nlastmod: 2023-05-06T07:08:00Z\n---\nx\n")
    os.utime(mini / "content/about.md", (1_700_000_000, 1_700_000_000))
    assert render(mini, "/fm/").body == "2023-05-06 07:08"
    assert render(mini, "/about/").body == "2023-11-14 22:13"
    env = {**os.environ, "GIT_COMMITTER_DATE": "2022-02-03T04:05:06Z", "GIT_AUTHOR_DATE": "2022-02-03T04:05:06Z"}
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=mini, check=True, env=env)
    assert render(mini, "/about/").body == "2022-02-03 04:05"
    assert render(mini, "/fm/").body == "2023-05-06 07:08"


def test_sri_gives_the_sha384_of_a_static_file(mini: Path) -> None:
    import base64
    import hashlib

    write(mini / "templates/page.html", '<link href="{{ static("css/site.css") }}" integrity="{{ sri("css/site.css") }}">')
    expected = "sha384-" + base64.b64encode(hashlib.sha384((mini / "static/css/site.css").read_bytes()).digest()).decode()
    resp = render(mini, "/about/")
    assert f'integrity="{expected}"' in resp.body and "file:static/css/site.css" in resp.inputs


def test_math_is_katex_ready_markup(mini: Path) -> None:
    write(mini / "content/m.md", "---\ntitle: M\n---\nInline $a^2$ and\n\n$$\nb^2\n$$\n")
    body = render(mini, "/m/").body
    assert '<span class="math inline">a^2</span>' in body and '<div class="math block">' in body


def test_hugo_and_jekyll_front_matter_keys(mini: Path) -> None:
    write(mini / "site.toml", (mini / "site.toml").read_text() + '[taxonomies]\ntags = "tag"\ncategories = "category"\n')
    write(mini / "content/posts/2023-07-08-jekyll-post.md", "---\ntitle: J\ncategories: [news]\nlayout: wide\n---\nx\n")
    write(mini / "templates/wide.html", "wide {{ page.date | date }} {{ page.terms.categories[0].url }}")
    write(mini / "content/posts/perma.md", "---\ntitle: P\ndate: 2024-01-05\npermalink: /p/custom/\ncategory: misc\n---\nx\n")
    write(mini / "content/posts/hidden.md", "---\ntitle: H\npublished: false\n---\nx\n")
    write(mini / "content/posts/later.md", "---\ntitle: L\ndate: 2024-01-01\npublishDate: 2999-01-01\n---\nx\n")
    write(mini / "content/posts/gone.md", "---\ntitle: G\ndate: 2024-01-01\nexpiryDate: 2000-01-01\n---\nx\n")
    write(mini / "content/posts/soon-gone.md", "---\ntitle: S\ndate: 2024-01-01\nexpiryDate: 2998-01-01\n---\nx\n")
    write(mini / "content/notes/n.md", "---\ntitle: N\ntype: memo\ndescription: About N\n---\nx\n")
    write(mini / "templates/memo/page.html", "memo {{ page.description }}")
    manifest = compile_site(mini)
    assert render(mini, "/posts/jekyll-post/").body == "wide 2023-07-08 /categories/news/"
    assert (manifest.match("/p/custom/") or {}).get("page") == "content/posts/perma.md"
    assert "/categories/misc/" in manifest.routes
    assert not {"/posts/hidden/", "/posts/later/", "/posts/gone/"} & set(manifest.routes)
    assert "/posts/soon-gone/" in manifest.routes
    assert manifest.next_publish == "2998-01-01T00:00:00+00:00"  # the watcher wakes at the expiry
    assert render(mini, "/notes/n/").body == "memo About N"


def test_sections_are_ordered_by_index_weight_then_title(mini: Path) -> None:
    write(mini / "content/zeta/_index.md", "---\ntitle: Zeta\nweight: 1\n---\n")
    write(mini / "content/zeta/a.md", "---\ntitle: A\n---\n")
    write(mini / "content/alpha/_index.md", "---\ntitle: Alpha\nweight: 2\n---\n")
    write(mini / "content/alpha/a.md", "---\ntitle: A\n---\n")
    write(mini / "content/beta/a.md", "---\ntitle: B\n---\n")
    write(mini / "templates/page.html", "{% for s in site.sections %}{{ s.title }};{% endfor %}")
    assert render(mini, "/about/").body == "Beta;Posts;Zeta;Alpha;"


def test_main_sections_decide_what_the_home_page_and_feed_list(mini: Path) -> None:
    write(mini / "content/notes/n.md", "---\ntitle: Note\ndate: 2025-01-01\n---\nx\n")
    write(mini / "templates/index.html", "{% for p in paginator.pages %}{{ p.title }};{% endfor %}{{ site.main_sections | join(',') }}")
    assert render(mini, "/").body == "Post 3;Post 2;posts"  # posts has the most dated pages
    assert "Note" not in render(mini, "/atom.xml").body
    write(mini / "site.toml", 'main_sections = ["notes", "posts"]\n' + (mini / "site.toml").read_text())
    assert render(mini, "/").body == "Note;Post 3;notes,posts"
    assert "<title>Note</title>" in render(mini, "/atom.xml").body


def test_templates_can_use_do_and_the_404_page_gets_request_path(mini: Path) -> None:
    write(mini / "templates/page.html", "{% set xs = [] %}{% do xs.append(1) %}{{ xs }} {{ url('/x/') }}")
    assert render(mini, "/about/").body == "[1] http://example.test/x/"
    assert "<h1>Not found: /nope/</h1>" in render(mini, "/nope/").body


def test_the_blogs_search_endpoint_answers_json_over_its_posts(tmp_path: Path) -> None:
    import shutil

    blog = tmp_path / "blog"
    shutil.copytree(Path(__file__).parent.parent / "sites/blog", blog)
    manifest = compile_site(blog)
    renderer = Renderer(str(blog), str(tmp_path / "versions"))
    renderer.use(manifest)
    route = json.dumps(manifest.match("/api/search"))
    found = json.loads(renderer.handle(RenderRequest("GET", "/api/search?q=CACHE hit", [], route, manifest.version), manifest).body)
    assert found["query"] == "CACHE hit" and found["results"][0]["title"] == "Measuring a cache hit"
    assert all("cache" in json.dumps(r).lower() for r in found["results"])
    everything = renderer.handle(RenderRequest("GET", "/api/search", [], route, manifest.version), manifest)
    assert len(json.loads(everything.body)["results"]) == sum(1 for p in manifest.pages.values() if p["url"].startswith("/posts/") and p["kind"] == "page")
    assert "list:all" in everything.inputs
