"""Render every route of a site in-process, and ``edgesite export``: the site as static files.

``render_site`` is what ``export`` and ``check`` share: it compiles the site once and runs
``render.Renderer.handle`` (the worker function a node runs) for every URL of the route
table, plus the 404 page, so what they see is byte for byte what a node serves.

``export_site(SITE, OUT)`` writes ``OUT/<url>/index.html`` for each URL ending in ``/``,
``OUT/<url>`` for the others (``atom.xml``, ``sitemap.xml``, ``search.json``), alias URLs as the
redirect pages a node answers with (they carry a ``<meta http-equiv="refresh">``), ``404.html``,
and every static file both at its fingerprinted URL and at ``static/<path>``. Dynamic
``worker.py`` routes (with ``{param}`` segments) cannot be exported and are listed as skipped.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .contract import RenderRequest, RenderResponse
from .errors import RenderError
from .render import Renderer, iter_urls
from .routes import Compiler, Manifest
from .site import Site

NOT_FOUND_URL = "/404.html"


@dataclass(frozen=True)
class Rendered:
    """One URL rendered: its route and either the response or the error."""

    url: str
    route: dict[str, object]
    response: RenderResponse | None
    error: RenderError | None


def render_site(manifest: Manifest, site_root: Path) -> Iterator[Rendered]:
    """Render every URL of ``manifest`` (and ``/404.html``) in-process, in URL order."""
    with tempfile.TemporaryDirectory(prefix="edgesite-render-") as versions:
        renderer = Renderer(str(site_root), versions)
        renderer.use(manifest)
        urls = list(iter_urls(manifest))
        if NOT_FOUND_URL not in manifest.routes:
            urls.append(NOT_FOUND_URL)
        for url in urls:
            route = manifest.match(url) or {"kind": "not_found", "template": "404.html"}
            request = RenderRequest("GET", url, [], json.dumps(route), manifest.version)
            try:
                yield Rendered(url, route, renderer.handle(request, manifest), None)
            except RenderError as exc:
                yield Rendered(url, route, None, exc)
            except Exception as exc:  # the same errors the node turns into a 500 page
                yield Rendered(url, route, None, RenderError(f"{type(exc).__name__}: {exc}", kind="exception"))


def output_path(out: Path, url: str) -> Path:
    """Where a URL's body goes in an export: ``/a/b/`` -> ``a/b/index.html``."""
    rel = url.lstrip("/")
    return out / (rel + "index.html" if url.endswith("/") else rel)


@dataclass
class ExportReport:
    written: int = 0
    static: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[Rendered] = field(default_factory=list)


def export_site(site_path: str | Path, out: str | Path, *, progress: Callable[[int, int, str], None] | None = None,
                include_drafts: bool | None = None) -> ExportReport:
    """Write the site under ``out`` (created if needed; files already there are overwritten,
    others left alone). Raises SiteConfigError/CompileError; render errors are reported."""
    site = Site.open(site_path)
    manifest = Compiler(site, include_drafts=include_drafts).compile()
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    report = ExportReport(skipped=[r["path"] for r in manifest.worker_routes])
    total = len(manifest.routes) + (NOT_FOUND_URL not in manifest.routes)
    for i, rendered in enumerate(render_site(manifest, site.root), 1):
        if progress is not None:
            progress(i, total, rendered.url)
        if rendered.response is None:
            report.failed.append(rendered)
            continue
        path = output_path(target, rendered.url)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered.response.body.encode("utf-8"))
        report.written += 1
    for rel, url in sorted(manifest.static.items()):
        source = site.root / "static" / rel
        for dest in {target / "static" / rel, target / url.lstrip("/")}:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        report.static += 1
    return report

