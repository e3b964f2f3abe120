"""The authoring features give the same bytes in the isolate as in-process: every route of the
blog (related posts, SRI, search, its worker) and of a multilingual site."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import wasmtime

from edgesite.component import engine_for, load_component
from edgesite.contract import RenderRequest
from edgesite.errors import RenderError
from edgesite.isolate import InlinePool, IsolatePool
from edgesite.routes import compile_site
from edgesite.site import IsolateLimits

REPO = Path(__file__).parent.parent


def multilingual_mini(root: Path) -> Path:
    site = root / "mini"
    shutil.copytree(REPO / "tests/sites/mini", site)
    toml = (site / "site.toml").read_text().replace('base_url = "http://example.test/"',
                                                    'base_url = "http://example.test/"\nlanguage = "en"')
    (site / "site.toml").write_text(toml + '[languages.en]\nname = "English"\n[languages.fr]\nname = "Français"\ntitle = "Mini FR"\n')
    (site / "content/posts/post-1.fr.md").write_text("---\ntitle: Article 1\ndate: 2024-01-01\ntags: [commun]\n---\nCorps $x^2$.\n")
    (site / "templates/page.html").write_text(
        "{% extends 'base.html' %}{% block main %}{{ page.title }}{{ page.content }}{% for t in page.translations %}"
        "<a hreflang='{{ t.lang }}' href='{{ t.url }}'>{{ t.title }}</a>{% endfor %}{% for r in page.related %}{{ r.url }}{% endfor %}"
        "{{ page.lastmod | date('%Y-%m-%d') }}<link integrity='{{ sri('css/site.css') }}'>{% endblock %}")
    return site


def outcome(pool: IsolatePool | InlinePool, req: RenderRequest) -> object:
    try:
        return pool.render(req)
    except RenderError as exc:
        return (exc.kind, exc.message, exc.file, exc.line)


def test_every_route_renders_the_same_bytes_in_the_isolate_and_in_process(tmp_path: Path) -> None:
    engine: wasmtime.Engine = engine_for()
    component = load_component(engine, progress=False)
    blog = tmp_path / "blog"
    shutil.copytree(REPO / "sites/blog", blog)
    for root in (blog, multilingual_mini(tmp_path)):
        manifest = compile_site(root)
        versions = tmp_path / f"versions-{root.name}"
        manifest.write(versions)
        pool = IsolatePool(root.name, root, versions, IsolateLimits(timeout_ms=10000), component, engine)
        inline = InlinePool(root.name, root, versions)
        try:
            urls = sorted(manifest.routes) + ["/api/search?q=cache", "/nope/"]
            for url in urls:
                route = manifest.match(url.split("?")[0]) or {"kind": "not_found", "template": "404.html"}
                req = RenderRequest("GET", url, [], json.dumps(route), manifest.version)
                assert outcome(pool, req) == outcome(inline, req), url
            assert pool.stats()["renders"] + pool.stats().get("errors", 0) >= len(urls) - 1
        finally:
            pool.close()
