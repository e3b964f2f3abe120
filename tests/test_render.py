import json
from pathlib import Path

import pytest

from edgesite.contract import RenderRequest, RenderResponse
from edgesite.errors import RenderError
from edgesite.render import Renderer
from edgesite.routes import compile_site


def render(site: Path, url: str) -> RenderResponse:
    manifest = compile_site(site)
    versions = site.parent / "versions"
    manifest.write(versions)
    route = manifest.match(url) or {"kind": "not_found", "template": "404.html"}
    return Renderer(str(site), str(versions)).handle(RenderRequest("GET", url, [], json.dumps(route), manifest.version))


def test_a_page_render_returns_html_and_exactly_the_inputs_it_read(mini: Path) -> None:
    resp = render(mini, "/posts/post-2/")
    assert resp.status == 200
    assert "<h1>Post 2</h1><p>Body of post 2.</p>" in resp.body
    assert '<a rel="prev" href="/posts/post-3/">Post 3</a>' in resp.body
    assert resp.inputs == [
        "file:content/posts/post-2.md", "file:data/nav.yaml", "file:site.toml", "file:static/css/site.css",
        "file:templates/base.html", "file:templates/page.html", "file:templates/partials/header.html",
        "neighbours:content/posts/post-2.md",
    ]


def test_list_pages_depend_on_their_collections_not_on_each_page_file(mini: Path) -> None:
    section = render(mini, "/posts/")
    assert "list:section:posts" in section.inputs
    assert not any(tag.startswith("file:content/posts/post-") for tag in section.inputs)
    term = render(mini, "/tags/common/")
    assert "list:term:tags:common" in term.inputs
    assert "list:main:en" in render(mini, "/atom.xml").inputs  # the feed lists the main sections


def test_markdown_extensions_render(mini: Path) -> None:
    (mini / "content/rich.md").write_text(
        "---\ntitle: Rich\n---\n## Table\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~ [^n]\n\n- [x] done\n\n"
        "Term\n: Def\n\n!!! warning \"Careful\"\n    Indented.\n\n```python\nprint('hi')\n```\n\n$e^x$\n\n[^n]: A note.\n"
    )
    body = render(mini, "/rich/").body
    for fragment in ('<h2 id="table">Table</h2>', "<table>", "<s>gone</s>", 'class="footnote-ref"', 'type="checkbox"',
                     "<dt>Term</dt>", '<div class="admonition warning">', '<pre class="highlight"><code class="language-python">',
                     '<span class="nb">print</span>', '<span class="math inline">e^x</span>'):
        assert fragment in body


def test_a_template_syntax_error_names_the_template_and_line(mini: Path) -> None:
    (mini / "templates/page.html").write_text("{% extends 'base.html' %}\n{% block main %}\n{% if %}\n{% endblock %}\n")
    with pytest.raises(RenderError) as err:
        render(mini, "/posts/post-1/")
    assert (err.value.kind, err.value.file, err.value.line) == ("template-syntax", "templates/page.html", 3)


def test_an_undefined_variable_names_the_template_and_line(mini: Path) -> None:
    (mini / "templates/partials/header.html").write_text("<header>\n{{ site.title }}\n{{ no_such_thing.x }}\n</header>\n")
    with pytest.raises(RenderError) as err:
        render(mini, "/posts/post-1/")
    assert err.value.kind == "undefined"
    assert (err.value.file, err.value.line) == ("templates/partials/header.html", 3)
    assert "no_such_thing" in err.value.message


def test_a_missing_template_is_named(mini: Path) -> None:
    (mini / "content/posts/post-1.md").write_text("---\ntitle: P\ntemplate: fancy\n---\nx\n")
    with pytest.raises(RenderError) as err:
        render(mini, "/posts/post-1/")
    assert err.value.kind == "template-missing"
    assert "'fancy.html' not found" in err.value.message


def test_broken_front_matter_renders_as_an_error_with_file_and_line(mini: Path) -> None:
    (mini / "content/posts/post-1.md").write_text("---\ntitle: ok\ntags: [a\n---\nx\n")
    with pytest.raises(RenderError) as err:
        render(mini, "/posts/post-1/")
    assert err.value.kind == "front-matter" and err.value.file == "content/posts/post-1.md" and err.value.line == 4


def test_shortcodes_render_their_template_and_depend_on_it(mini: Path) -> None:
    (mini / "templates/shortcodes").mkdir()
    (mini / "templates/shortcodes/note.html").write_text('<aside class="note">{{ text }} on {{ page.title }}</aside>')
    (mini / "content/sc.md").write_text('---\ntitle: SC\n---\nBefore\n\n{{< note text="careful" >}}\n\nAfter\n')
    resp = render(mini, "/sc/")
    assert '<aside class="note">careful on SC</aside>' in resp.body
    assert "file:templates/shortcodes/note.html" in resp.inputs


def test_the_404_page_uses_the_site_template(mini: Path) -> None:
    resp = render(mini, "/missing/")
    assert resp.status == 404 and "<h1>Not found: /missing/</h1>" in resp.body


def test_worker_routes_run_the_sites_worker(mini: Path) -> None:
    (mini / "worker.py").write_text(
        "from edgesite.worker import Response, route, template_filter\n"
        "@route('/search.json')\n"
        "def search(request, site):\n"
        "    q = request.query.get('q', '')\n"
        "    return Response.json([p.url for p in site.pages if q in p.title])\n"
        "@route('/boom/')\n"
        "def boom(request, site):\n"
        "    return 1 / 0\n"
    )
    manifest = compile_site(mini)
    versions = mini.parent / "versions"
    manifest.write(versions)
    renderer = Renderer(str(mini), str(versions))
    req = RenderRequest("GET", "/search.json?q=Post 2", [], json.dumps(manifest.match("/search.json")), manifest.version)
    resp = renderer.handle(req)
    assert json.loads(resp.body) == ["/posts/post-2/"] and ("content-type", "application/json") in resp.headers
    with pytest.raises(RenderError) as err:
        renderer.handle(RenderRequest("GET", "/boom/", [], json.dumps(manifest.match("/boom/")), manifest.version))
    assert err.value.kind == "worker" and err.value.file == "worker.py" and err.value.line == 8
    assert "ZeroDivisionError" in err.value.message
