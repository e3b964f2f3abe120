"""``edgesite check SITE``: render every route and report what is broken.

It compiles the site, renders every URL in-process with the same Renderer a node runs
(``export.render_site``), and reports:

- pages that failed to render (template syntax, undefined names, worker errors), with file and
  line, and missing templates;
- broken internal links: a link to a URL the route table does not have, to a static file that
  does not exist, or to a ``#anchor`` that no element of the target page has;
- front matter and data file errors found at compile;
- orphans: pages no other page links to (a warning: they are served, nobody finds them).

Problems make ``Report.ok`` false (and the command exit with status 1); warnings do not.
"""

from __future__ import annotations

import html.parser
import posixpath
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .export import NOT_FOUND_URL, render_site
from .routes import Compiler, Manifest
from .site import Site

STATIC_PREFIX = "/static/"  # as the node serves static files (not imported: check stays off the node layer)


@dataclass(frozen=True)
class Problem:
    kind: str  # render-error | template-missing | broken-link | broken-anchor | missing-static | compile-error | orphan
    url: str  # the page it was found on ('' for compile errors)
    message: str
    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        where = f" ({self.file}, line {self.line})" if self.file and self.line else f" ({self.file})" if self.file else ""
        on = f"{self.url}: " if self.url else ""
        return f"{self.kind}: {on}{self.message}{where}"


@dataclass
class Report:
    pages: int = 0
    links: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Links(html.parser.HTMLParser):
    """The link targets and the element ids of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("name"):
            self.ids.add(str(found["name"]))
        for name in ("href", "src"):
            value = found.get(name)
            if value and not (tag == "link" and found.get("rel") in ("canonical", "alternate") and name == "href"
                              and value.startswith("http")):
                self.links.append(value)


def _internal(link: str, page_url: str, base_url: str) -> tuple[str, str] | None:
    """(path, fragment) of a link to this site, or None for an external or non-HTTP link."""
    if link.startswith(("mailto:", "tel:", "javascript:", "data:")):
        return None
    if link.startswith(base_url):
        link = "/" + link[len(base_url):]
    parts = urllib.parse.urlsplit(link)
    if parts.scheme or parts.netloc:
        return None
    path = urllib.parse.unquote(parts.path)
    if not path:
        path = page_url
    elif not path.startswith("/"):
        path = posixpath.normpath(posixpath.join(page_url if page_url.endswith("/") else posixpath.dirname(page_url) + "/", path))
        path += "/" if parts.path.endswith("/") and not path.endswith("/") else ""
    return path, urllib.parse.unquote(parts.fragment)


def _resolve(manifest: Manifest, path: str) -> str | None:
    """The URL that serves ``path`` (following the node's trailing-slash redirect), or None."""
    if path.startswith(STATIC_PREFIX):
        rel = manifest.static_paths.get(path) or (path[len(STATIC_PREFIX):] if path[len(STATIC_PREFIX):] in manifest.static else None)
        return path if rel else None
    for candidate in (path, path + "/"):
        if manifest.match(candidate) is not None:
            return candidate
    return None


def check_site(site_path: str | Path, *, progress: Callable[[int, int, str], None] | None = None) -> Report:
    """Render and check every route of a site. Raises SiteConfigError/CompileError when the
    site does not compile at all."""
    site = Site.open(site_path)
    manifest = Compiler(site).compile()
    report = Report()
    for rel, err in sorted(manifest.errors.items()):
        report.problems.append(Problem("compile-error", "", err["message"], rel, err.get("line", 0)))
    bodies: dict[str, str] = {}
    ids: dict[str, set[str]] = {}
    total = len(manifest.routes) + (NOT_FOUND_URL not in manifest.routes)
    for i, rendered in enumerate(render_site(manifest, site.root), 1):
        if progress is not None:
            progress(i, total, rendered.url)
        report.pages += 1
        if rendered.error is not None:
            if rendered.route.get("kind") == "error":
                continue  # already reported from the manifest
            failure = rendered.error
            kind = "template-missing" if failure.kind == "template-missing" else (
                "missing-static" if failure.kind == "static-missing" else "render-error")
            report.problems.append(Problem(kind, rendered.url, failure.message, failure.file, failure.line))
            continue
        response = rendered.response
        assert response is not None
        if dict(response.headers).get("content-type", "").startswith("text/html") and rendered.route.get("kind") != "alias":
            parser = _Links()
            parser.feed(response.body)
            bodies[rendered.url] = response.body
            ids[rendered.url] = parser.ids
            ids[rendered.url + "\0links"] = set(parser.links)
    linked: set[str] = set()
    base_url = manifest.site["base_url"]
    for url in bodies:
        seen: set[tuple[str, str]] = set()
        for link in sorted(ids[url + "\0links"]):
            found = _internal(link, url, base_url)
            if found is None:
                continue
            path, fragment = found
            report.links += 1
            target = url if path == url else _resolve(manifest, path)
            if target is None:
                kind = "missing-static" if path.startswith(STATIC_PREFIX) else "broken-link"
                if (kind, path) not in seen:
                    report.problems.append(Problem(kind, url, f"links to {link}, which this site does not serve"))
                seen.add((kind, path))
                continue
            route = manifest.match(target) or {}
            if route.get("kind") == "alias":
                target = str(route["target"])
            if target != url:
                linked.add(target)
            if fragment and target in ids and fragment not in ids[target]:
                report.problems.append(Problem("broken-anchor", url, f"links to {link}, but {target} has no id '{fragment}'"))
    for rel, page in sorted(manifest.pages.items()):
        if page["kind"] == "page" and page["url"] not in linked:
            report.warnings.append(Problem("orphan", page["url"], "no other page links to it", rel))
    return report
