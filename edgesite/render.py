"""The render core: one request in, one response out, with the tags of every input it read.

``Renderer.handle`` is the worker function of every route kind (page, section, taxonomy,
term, feed, sitemap, alias, 404, error, worker). The same code runs inside the isolate (with
the site preopened at ``/site`` and compiled versions at ``/versions``) and in-process with
``--isolation none``, so both give identical bytes. Pure: imports nothing host-only.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
import re
import traceback
import urllib.parse
from collections.abc import Iterator
from typing import Any

from markupsafe import Markup

from . import deps
from . import worker as worker_api
from .content import split_body
from .contract import RenderRequest, RenderResponse
from .errors import RenderError
from .markdown import render_markdown, toc_html
from .routes import MANIFEST_FILE, Manifest, taxonomy_key
from .templates import as_render_error, format_date, make_environment

HTML = "text/html; charset=utf-8"
WORDS_PER_MINUTE = 220
RELATED_LIMIT = 5


def _date(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


class Term:
    """One term of a taxonomy as templates see it."""

    def __init__(self, ctx: "Context", taxonomy: str, slug: str) -> None:
        entry = ctx.manifest.terms[taxonomy][slug]
        self._ctx, self.taxonomy, self.slug = ctx, taxonomy, slug
        self.name: str = entry["name"]
        self.url: str = entry["url"]
        self._pages: list[str] = entry["pages"]

    @property
    def count(self) -> int:
        deps.record(f"list:taxonomy:{self.taxonomy}")  # counts change only when some page's terms do
        return len(self._pages)

    @property
    def pages(self) -> list["Page"]:
        return [self._ctx.page(rel) for rel in self._pages_rels()]

    def _pages_rels(self) -> list[str]:
        deps.record(f"list:term:{self.taxonomy}:{self.slug}")
        return self._pages

    def __str__(self) -> str:
        return self.name


class Page:
    """A content page. Listing fields come from the manifest; ``content`` reads the file."""

    def __init__(self, ctx: "Context", rel: str) -> None:
        self._ctx, self.rel = ctx, rel
        info = ctx.manifest.pages[rel]
        self._info = info
        self.title: str = info["title"]
        self.url: str = info["url"]
        self.kind: str = info["kind"]
        self.draft: bool = info["draft"]
        self.weight: int = info["weight"]
        self.description: str = info["description"]
        self.params: dict[str, Any] = info["params"]
        self.aliases: list[str] = info["aliases"]
        self.word_count: int = info["words"]
        self.reading_time: int = max(1, math.ceil(info["words"] / WORDS_PER_MINUTE))
        self.date = _date(info["date"])
        # front matter, else the last commit (git), else the file's mtime: computed at compile
        self.lastmod = _date(info["lastmod"]) or _date(info.get("modified")) or self.date
        self.lang: str = info.get("lang") or ctx.manifest.site["language"]
        self._rendered: tuple[str, str] | None = None

    @property
    def permalink(self) -> str:
        return self._ctx.absolute(self.url)

    def _render(self) -> tuple[str, str]:
        if self._rendered is None:
            deps.record(f"file:{self.rel}")
            body, _ = split_body(self._ctx.read(self.rel))
            out = render_markdown(body, lambda name, args: self._ctx.shortcode(name, args, self))
            self._rendered = (out.html, toc_html(out.toc))
        return self._rendered

    @property
    def content(self) -> Markup:
        return Markup(self._render()[0])

    @property
    def toc(self) -> Markup:
        return Markup(self._render()[1])

    @property
    def summary(self) -> Markup:
        source = self._info["summary"] or ""
        return Markup(render_markdown(source).html) if source else Markup("")

    @property
    def terms(self) -> dict[str, list[Term]]:
        from .content import slugify

        default = self._ctx.manifest.site.get("default_language", self.lang)
        return {tax: [self._ctx.term(taxonomy_key(tax, self.lang, default), slugify(t) or t) for t in names]
                for tax, names in self._info["terms"].items()}

    @property
    def tags(self) -> list[Term]:
        return self.terms.get("tags", [])

    @property
    def section(self) -> "Section | None":
        return self._ctx.section(self._info["section"])

    def _neighbour(self, step: int) -> "Page | None":
        deps.record(f"neighbours:{self.rel}")
        listed = self._ctx.manifest.sections[self._info["section"]]["pages"]
        if self.rel not in listed:
            return None
        i = listed.index(self.rel) + step
        return self._ctx.page(listed[i]) if 0 <= i < len(listed) else None

    @property
    def related(self) -> list["Page"]:
        """Up to five other pages sharing the most terms with this one (then newest, title);
        depends on the term lists involved."""
        shared: dict[str, int] = {}
        for terms in self.terms.values():
            for term in terms:
                for rel in term._pages_rels():
                    if rel != self.rel:
                        shared[rel] = shared.get(rel, 0) + 1
        pages = self._ctx.manifest.pages
        ranked = sorted(shared, key=lambda r: (-shared[r], _Rev(pages[r]["date"] or ""), pages[r]["title"], r))
        return [self._ctx.page(rel) for rel in ranked[:RELATED_LIMIT]]

    @property
    def translations(self) -> list["Page"]:
        """This page in the site's other languages, in the order of ``[languages]``."""
        deps.record(f"translations:{self.rel}")
        return [self._ctx.page(rel) for rel in self._ctx.manifest.translations(self.rel)]

    @property
    def prev(self) -> "Page | None":
        return self._neighbour(-1)

    @property
    def next(self) -> "Page | None":
        return self._neighbour(1)

    def __repr__(self) -> str:
        return f"<Page {self.rel}>"


class Section:
    """A folder of content; reading anything of it depends on ``list:section:<name>``."""

    def __init__(self, ctx: "Context", name: str) -> None:
        self._ctx, self.name = ctx, name
        self._info = ctx.manifest.sections[name]

    def _read(self) -> dict[str, Any]:
        deps.record(f"list:section:{self.name}")
        return self._info

    @property
    def title(self) -> str:
        return str(self._read()["title"])

    @property
    def url(self) -> str:
        return str(self._read()["url"])

    @property
    def pages(self) -> list[Page]:
        return [self._ctx.page(rel) for rel in self._read()["pages"]]

    @property
    def subsections(self) -> list["Section"]:
        return [Section(self._ctx, name) for name in self._read()["subsections"]]

    @property
    def page(self) -> Page | None:
        index = self._read()["index"]
        return self._ctx.page(index) if index else None


class _Rev:
    """Sorts strings in reverse inside a tuple key."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: "_Rev") -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.value == other.value


class Paginator:
    def __init__(self, items: list[str], number: int, per_page: int, base_url: str, ctx: "Context") -> None:
        self.total_pages = max(1, math.ceil(len(items) / per_page))
        self.number = number
        self.pages = [ctx.page(rel) for rel in items[(number - 1) * per_page: number * per_page]]
        def url(n: int) -> str:
            return base_url if n == 1 else f"{base_url}page/{n}/"

        self.first_url, self.last_url = url(1), url(self.total_pages)
        self.prev_url = url(number - 1) if number > 1 else None
        self.next_url = url(number + 1) if number < self.total_pages else None


class Taxonomy:
    """A taxonomy's terms; reading them depends on ``list:taxonomy:<name>`` (which changes
    when a term appears, goes, or its count changes)."""

    def __init__(self, ctx: "Context", name: str) -> None:
        self._ctx = ctx
        self.name = name
        self.singular = ctx.manifest.site["taxonomies"].get(name.rsplit("/", 1)[-1], name)

    @property
    def terms(self) -> list[Term]:
        deps.record(f"list:taxonomy:{self.name}")
        return [self._ctx.term(self.name, slug) for slug in self._ctx.manifest.terms.get(self.name, {})]


class Data:
    """``data.<stem>``: a data file's parsed value; reading one depends on that file only."""

    def __init__(self, manifest: Manifest) -> None:
        self._data = manifest.data

    def __getattr__(self, name: str) -> Any:
        entry = self.__dict__["_data"].get(name)
        if entry is None:
            raise AttributeError(name)
        deps.record(f"file:{entry['file']}")
        return entry["value"]

    __getitem__ = __getattr__

    def __contains__(self, name: str) -> bool:
        return name in self._data


class SiteView:
    def __init__(self, ctx: "Context") -> None:
        self._ctx = ctx
        info = ctx.manifest.site
        self.title: str = info["title"]
        self.base_url: str = info["base_url"]
        self.language: str = ctx.lang
        self.default_language: str = info.get("default_language", info["language"])
        self.languages: list[dict[str, Any]] = list((info.get("languages") or {}).values())
        self.main_sections: list[str] = info.get("main_sections") or []
        self.description: str = info["description"]
        self.params: dict[str, Any] = info["params"]
        self.menus: dict[str, list[dict[str, Any]]] = info["menus"]
        self.data = ctx.data

    @property
    def pages(self) -> list[Page]:
        deps.record("list:all")
        return [self._ctx.page(rel) for rel in self._ctx.all_pages()]

    @property
    def sections(self) -> list[Section]:
        """Top-level sections of this language, by their ``_index.md`` weight, then title."""
        deps.record("list:sections")
        return [Section(self._ctx, name) for name in self._ctx.manifest.sections[self._ctx.root]["subsections"]]

    @property
    def taxonomies(self) -> dict[str, list[Term]]:
        return {name: Taxonomy(self._ctx, taxonomy_key(name, self._ctx.lang, self.default_language)).terms
                for name in self._ctx.manifest.site["taxonomies"]
                if taxonomy_key(name, self._ctx.lang, self.default_language) in self._ctx.manifest.terms}


class Context:
    """Per-request view of one manifest: builds the objects templates see."""

    def __init__(self, renderer: "Renderer", manifest: Manifest) -> None:
        self.renderer, self.manifest = renderer, manifest
        self.data = Data(manifest)
        self._pages: dict[str, Page] = {}
        self.lang: str = manifest.site.get("default_language", manifest.site["language"])

    @property
    def root(self) -> str:
        """The section that is the home of the language being rendered."""
        return "" if self.lang == self.manifest.site.get("default_language", self.lang) else self.lang

    def page(self, rel: str) -> Page:
        found = self._pages.get(rel)
        if found is None:
            found = self._pages[rel] = Page(self, rel)
        return found

    def section(self, name: str) -> Section | None:
        return Section(self, name) if name in self.manifest.sections else None

    def term(self, taxonomy: str, slug: str) -> Term:
        return Term(self, taxonomy, slug)

    def all_pages(self) -> list[str]:
        pages = self.manifest.pages
        return sorted((r for r, p in pages.items() if p["kind"] == "page"),
                      key=lambda r: (pages[r]["date"] or "", r), reverse=True)

    def read(self, rel: str) -> str:
        with open(os.path.join(self.renderer.site_root, rel), encoding="utf-8") as fh:
            return fh.read()

    @property
    def prefix(self) -> str:
        return f"/{self.root}" if self.root else ""

    def absolute(self, url: str) -> str:
        return str(self.manifest.site["base_url"]).rstrip("/") + url

    def static(self, path: str) -> str:
        url = self.manifest.static.get(path.lstrip("/"))
        if url is None:
            raise RenderError(f"static file not found: static/{path.lstrip('/')}", kind="static-missing")
        deps.record(f"file:static/{path.lstrip('/')}")
        return url

    def sri(self, path: str) -> str:
        """``sha384-...`` of a static file (computed at compile from its bytes), for ``integrity=``."""
        found = self.manifest.sri.get(path.lstrip("/"))
        if found is None:
            raise RenderError(f"static file not found: static/{path.lstrip('/')}", kind="static-missing")
        deps.record(f"file:static/{path.lstrip('/')}")
        return found

    def shortcode(self, name: str, args: dict[str, str], page: Page) -> str:
        env = self.renderer.environment(self.manifest)
        template = env.get_template(f"shortcodes/{name}.html")
        return str(template.render(self.globals(), page=page, **args))

    def globals(self) -> dict[str, Any]:
        return {"site": SiteView(self), "data": self.data, "static": self.static, "sri": self.sri, "url": self.absolute}


class Renderer:
    """Renders routes of one site. Keeps the parsed manifest and the Jinja environment
    between requests; both are replaced when the version or the worker changes."""

    def __init__(self, site_root: str, versions_root: str) -> None:
        self.site_root = site_root
        self.versions_root = versions_root
        self._manifest: Manifest | None = None
        self._env: Any = None
        self._worker: worker_api.Registry | None = None
        self._worker_hash: str | None = None

    def load(self, version: str) -> Manifest:
        """The manifest of ``version``, read from ``versions_root`` once per version."""
        current = self._manifest
        if current is not None and current.version == version:
            return current
        manifest = Manifest.read(os.path.join(self.versions_root, version, MANIFEST_FILE))
        self._manifest = manifest
        return manifest

    def use(self, manifest: Manifest) -> None:
        """Give the renderer a manifest directly (in-process mode already holds it)."""
        self._manifest = manifest

    def environment(self, manifest: Manifest) -> Any:
        worker_hash = manifest.inputs.get("worker.py")
        if self._env is None or worker_hash != self._worker_hash:
            env = make_environment(self.site_root, lambda: (self._manifest or manifest).inputs)
            registry = self.worker(manifest)
            if registry is not None:
                env.filters.update(registry.filters)
                env.globals.update(registry.globals)
            self._env = env
        return self._env

    def worker(self, manifest: Manifest) -> worker_api.Registry | None:
        worker_hash = manifest.inputs.get("worker.py")
        if worker_hash is None:
            self._worker, self._worker_hash = None, None
            return None
        if worker_hash != self._worker_hash:
            source = Context(self, manifest).read("worker.py")
            try:
                self._worker = worker_api.load(source, "worker.py")
            except Exception as exc:
                raise _worker_error(exc, "loading worker.py") from None
            self._worker_hash = worker_hash
        return self._worker

    def handle(self, request: RenderRequest, manifest: Manifest | None = None) -> RenderResponse:
        """Render one request. Raises RenderError (with file and line where there is one)."""
        manifest = manifest or self.load(request.version)
        route = request.route_dict()
        with deps.collecting() as found:
            deps.record("file:site.toml")
            if "worker.py" in manifest.inputs:
                deps.record("file:worker.py")
            status, headers, body = self._dispatch(request, route, manifest)
        return RenderResponse(status=status, headers=headers, body=body, inputs=sorted(found))

    def _dispatch(self, request: RenderRequest, route: dict[str, Any], manifest: Manifest) -> tuple[int, list[tuple[str, str]], str]:
        kind = route["kind"]
        ctx = Context(self, manifest)
        if kind == "alias":
            target = html.escape(route["target"])
            body = f'<!doctype html><meta charset="utf-8"><title>Moved</title><link rel="canonical" href="{target}"><meta http-equiv="refresh" content="0; url={target}"><p>Moved to <a href="{target}">{target}</a>.</p>\n'
            return 301, [("content-type", HTML), ("location", route["target"])], body
        if kind == "error":
            raise RenderError(route["message"], kind=route["error_kind"], file=route["file"], line=route["line"])
        ctx.lang = route.get("lang") or ctx.lang
        if kind == "feed":
            return 200, [("content-type", "application/atom+xml; charset=utf-8")], _feed(ctx)
        if kind == "sitemap":
            return 200, [("content-type", "application/xml; charset=utf-8")], _sitemap(ctx)
        if kind == "search":
            return 200, [("content-type", "application/json")], _search_index(ctx)
        if kind == "worker":
            return self._worker_route(request, route, ctx)
        env = self.environment(manifest)
        extra: dict[str, Any] = {}
        status = 200
        template = route.get("template", "")
        if kind == "page":
            extra["page"] = ctx.page(route["page"])
            ctx.lang = extra["page"].lang
        elif kind == "section":
            info = manifest.sections[route["section"]]
            ctx.lang = info.get("lang") or ctx.lang
            section = Section(ctx, route["section"])
            if "main_pages" in info:
                items = info["main_pages"]
                deps.record(f"list:main:{ctx.lang}")
            else:
                items = info["pages"]
                deps.record(f"list:section:{route['section']}")
            extra.update(section=section, page=section.page,
                         paginator=Paginator(items, route["number"], manifest.site["per_page"], section.url, ctx))
        elif kind == "taxonomy":
            ctx.lang = route["taxonomy"].split("/")[0] if "/" in route["taxonomy"] else ctx.lang
            extra.update(taxonomy=Taxonomy(ctx, route["taxonomy"]), page=None)
        elif kind == "term":
            ctx.lang = route["taxonomy"].split("/")[0] if "/" in route["taxonomy"] else ctx.lang
            term = ctx.term(route["taxonomy"], route["term"])
            deps.record(f"list:term:{term.taxonomy}:{term.slug}")
            extra.update(taxonomy=Taxonomy(ctx, route["taxonomy"]), term=term, page=None,
                         paginator=Paginator(term._pages, route["number"], manifest.site["per_page"], term.url, ctx))
        elif kind == "not_found":
            status, template = 404, "404.html"
            extra.update(page=None, request_path=urllib.parse.unquote(request.url.split("?", 1)[0]))
            if "templates/404.html" not in manifest.inputs:
                deps.record("file:templates/404.html")
                return 404, [("content-type", HTML)], "<!doctype html><title>404 Not Found</title><h1>404 Not Found</h1>\n"
        else:
            raise RenderError(f"unknown route kind {kind!r}", kind="route")
        fallback = route.get("page", "")
        try:
            tpl = env.get_template(template)
            body = tpl.render(ctx.globals(), **extra)
        except RenderError:
            raise
        except Exception as exc:
            raise as_render_error(exc, fallback_file=f"templates/{template}" if not fallback else fallback) from None
        return status, [("content-type", HTML)], body

    def _worker_route(self, request: RenderRequest, route: dict[str, Any], ctx: Context) -> tuple[int, list[tuple[str, str]], str]:
        registry = self.worker(ctx.manifest)
        fn = registry.routes.get(route["function"]) if registry else None
        if fn is None:
            raise RenderError(f"worker route {route['path']} has no function {route['function']}()", kind="worker", file="worker.py", line=route.get("line", 0))
        path, _, query = request.url.partition("?")
        req = worker_api.Request(
            method=request.method, url=request.url, path=path,
            query=dict(urllib.parse.parse_qsl(query)), headers={k.lower(): v for k, v in request.headers},
            params=route.get("params", {}),
        )
        try:
            result = fn(req, SiteView(ctx))
        except RenderError:
            raise
        except Exception as exc:
            raise _worker_error(exc, f"{route['function']}()") from None
        if isinstance(result, str):
            result = worker_api.Response(result)
        elif isinstance(result, dict | list):
            result = worker_api.Response.json(result)
        if not isinstance(result, worker_api.Response):
            raise RenderError(f"{route['function']}() returned {type(result).__name__}, not a Response", kind="worker", file="worker.py", line=route.get("line", 0))
        headers = [("content-type", result.content_type)] + [(k.lower(), v) for k, v in result.headers.items()]
        return result.status, headers, result.body


def _worker_error(exc: Exception, where: str) -> RenderError:
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "worker.py":
            line = frame.lineno or 0
    if isinstance(exc, SyntaxError) and exc.filename == "worker.py":
        line = exc.lineno or 0
    return RenderError(f"{type(exc).__name__} in {where}: {exc}", kind="worker", file="worker.py", line=line)


def _xml(text: str) -> str:
    return html.escape(text, quote=True)


def _feed(ctx: Context) -> str:
    """Atom feed of the newest pages of the main sections in one language; deterministic (no
    clock), so both render paths agree."""
    deps.record(f"list:main:{ctx.lang}")
    site = ctx.manifest.site
    pages = [ctx.page(rel) for rel in ctx.manifest.sections[ctx.root]["main_pages"][: site["feed_limit"]]]
    title = site["title"]
    if site.get("languages") and ctx.lang in site["languages"]:
        title = site["languages"][ctx.lang]["title"]
    updated = max((p.lastmod for p in pages if p.lastmod), default=None)
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n',
           f"  <title>{_xml(title)}</title>\n", f'  <link href="{_xml(ctx.absolute(ctx.prefix + "/atom.xml"))}" rel="self"/>\n',
           f'  <link href="{_xml(ctx.absolute(ctx.prefix + "/"))}"/>\n', f"  <id>{_xml(ctx.absolute(ctx.prefix + '/'))}</id>\n",
           f"  <updated>{(updated or dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).isoformat()}</updated>\n"]
    for page in pages:
        stamp = (page.lastmod or page.date or dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).isoformat()
        out.append(f"  <entry>\n    <title>{_xml(page.title)}</title>\n    <link href=\"{_xml(page.permalink)}\"/>\n"
                   f"    <id>{_xml(page.permalink)}</id>\n    <updated>{stamp}</updated>\n")
        if page.date:
            out.append(f"    <published>{page.date.isoformat()}</published>\n")
        out.append(f'    <summary type="html">{_xml(str(page.summary))}</summary>\n  </entry>\n')
    out.append("</feed>\n")
    return "".join(out)


def _route_lang(ctx: Context, route: dict[str, Any]) -> str:
    if route.get("page"):
        return ctx.page(route["page"]).lang
    if route["kind"] == "section":
        return str(ctx.manifest.sections[route["section"]].get("lang") or ctx.lang)
    taxonomy = route.get("taxonomy", "")
    return taxonomy.split("/")[0] if "/" in taxonomy else str(ctx.manifest.site.get("default_language", ctx.lang))


def _sitemap(ctx: Context) -> str:
    """The URLs of one language; on a multilingual site each page names its translations
    (``hreflang`` alternates, itself included)."""
    deps.record("list:all")
    deps.record("list:routes")
    multilingual = bool(ctx.manifest.site.get("languages"))
    xmlns = ' xmlns:xhtml="http://www.w3.org/1999/xhtml"' if multilingual else ""
    out = [f'<?xml version="1.0" encoding="utf-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"{xmlns}>\n']
    for url, route in sorted(ctx.manifest.routes.items()):
        if route["kind"] not in ("page", "section", "taxonomy", "term") or route.get("number", 1) != 1:
            continue
        if multilingual and _route_lang(ctx, route) != ctx.lang:
            continue
        out.append(f"  <url><loc>{_xml(ctx.absolute(url))}</loc>")
        rel = route.get("page")
        if rel:
            page = ctx.page(rel)
            moment = page.lastmod
            if moment:
                out.append(f"<lastmod>{format_date(moment, '%Y-%m-%d')}</lastmod>")
            others = ctx.manifest.translations(rel)
            if multilingual and others:
                deps.record(f"translations:{rel}")
                for alt in sorted([page] + [ctx.page(r) for r in others], key=lambda p: (p.lang, p.url)):
                    out.append(f'<xhtml:link rel="alternate" hreflang="{_xml(alt.lang)}" href="{_xml(alt.permalink)}"/>')
        out.append("</url>\n")
    out.append("</urlset>\n")
    return "".join(out)


def _search_index(ctx: Context) -> str:
    """``/search.json``: title, URL, plain-text summary and tags of every page (and its
    language on a multilingual site), newest first, for client-side search."""
    deps.record("list:all")
    multilingual = bool(ctx.manifest.site.get("languages"))
    entries = []
    for rel in ctx.all_pages():
        page = ctx.page(rel)
        entry: dict[str, Any] = {"title": page.title, "url": page.url, "summary": _plain(str(page.summary)),
                                 "tags": [t.name for t in page.tags]}
        if multilingual:
            entry["lang"] = page.lang
        entries.append(entry)
    return json.dumps(entries, ensure_ascii=False, separators=(",", ":")) + "\n"


def _plain(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def iter_urls(manifest: Manifest) -> Iterator[str]:
    """Every concrete URL a site serves (for checks, exports and contract tests)."""
    yield from sorted(manifest.routes)
