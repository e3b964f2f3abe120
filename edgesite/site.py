"""A site on disk: its folders and its ``site.toml``, documented key by key.

``site.toml`` keys (all optional but ``title``):

``title``            the site's name, shown by themes and in the feed.
``base_url``         absolute URL the site is published under; used in the feed and sitemap.
``language``         language code of the content (``en``).
``description``      one line about the site, for feeds and ``<meta>``.
``build_drafts``     serve pages with ``draft = true`` (default ``false``).
``build_future``     serve pages dated in the future (default ``false``; otherwise they appear
                     at their date, without any edit).
``[permalinks]``     section name -> URL pattern, e.g. ``posts = "/{year}/{month}/{slug}/"``.
                     Placeholders: ``{section}``, ``{slug}``, ``{year}``, ``{month}``, ``{day}``,
                     ``{filename}``. Default ``/{section}/{slug}/`` (``/{slug}/`` at the root).
``[taxonomies]``     plural -> singular, e.g. ``tags = "tag"``. Default ``{tags = "tag"}``.
``[pagination]``     ``per_page`` (default 10) for section and term lists.
``[feed]``           ``limit`` (default 20) entries in ``/atom.xml``.
``[cache]``          ``browser``: Cache-Control of pages (default ``public, max-age=0,
                     must-revalidate``); ``static``: of fingerprinted static files (default
                     ``public, max-age=31536000, immutable``).
``[isolate]``        ``memory_mb`` (128), ``timeout_ms`` per request (1000), ``max_requests``
                     before an isolate is recycled (10000), ``pool_size`` isolates (2),
                     ``queue_timeout_ms`` to wait for a free isolate (5000).
``main_sections``    sections whose pages the home page and the feed list, e.g.
                     ``["posts"]``. Default: the section with the most dated pages (as Hugo).
``[languages.CODE]`` one table per language of a multilingual site: ``title`` (the site's
                     title in it), ``name`` (shown by language switchers), ``weight``
                     (their order). ``language`` is the default; its pages keep unprefixed
                     URLs, the others live under ``/CODE/``. A page is in a language by its
                     file name (``post.fr.md``), its folder (``content/fr/...``) or ``lang``.
``[params]``         anything, visible to templates as ``site.params``.
``[[menu.NAME]]``    entries (``name``, ``url``, ``weight``) visible as ``site.menus.NAME``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SiteConfigError

SITE_FILE = "site.toml"
FOLDERS = ("content", "templates", "static", "data")
WORKER_FILE = "worker.py"


@dataclass(frozen=True)
class IsolateLimits:
    memory_mb: int = 128
    timeout_ms: int = 1000
    max_requests: int = 10000
    pool_size: int = 2
    queue_timeout_ms: int = 5000


@dataclass(frozen=True)
class SiteConfig:
    title: str
    base_url: str = "http://127.0.0.1:8000/"
    language: str = "en"
    description: str = ""
    build_drafts: bool = False
    build_future: bool = False
    permalinks: dict[str, str] = field(default_factory=dict)
    taxonomies: dict[str, str] = field(default_factory=lambda: {"tags": "tag"})
    per_page: int = 10
    feed_limit: int = 20
    browser_cache: str = "public, max-age=0, must-revalidate"
    static_cache: str = "public, max-age=31536000, immutable"
    isolate: IsolateLimits = field(default_factory=IsolateLimits)
    params: dict[str, Any] = field(default_factory=dict)
    menus: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    main_sections: list[str] | None = None
    languages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The subset templates and the render core see (the manifest carries it)."""
        return {
            "title": self.title,
            "base_url": self.base_url,
            "language": self.language,
            "description": self.description,
            "taxonomies": dict(self.taxonomies),
            "per_page": self.per_page,
            "feed_limit": self.feed_limit,
            "params": self.params,
            "menus": self.menus,
            "main_sections": self.main_sections,
            "languages": self.languages,
        }


def _expect(table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = table.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SiteConfigError(f"{key} must be {name}, got {value!r}", file=SITE_FILE)
    return value


def parse_config(text: str) -> SiteConfig:
    """Parse ``site.toml`` text. Raises SiteConfigError naming the line of a TOML error."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise SiteConfigError(f"invalid TOML: {exc}", file=SITE_FILE, line=int(found.group(1)) if found else 0) from None
    if "title" not in raw:
        raise SiteConfigError("missing required key 'title'", file=SITE_FILE)
    pagination = _expect(raw, "pagination", dict, {})
    feed = _expect(raw, "feed", dict, {})
    cache = _expect(raw, "cache", dict, {})
    iso = _expect(raw, "isolate", dict, {})
    defaults = IsolateLimits()
    limits = IsolateLimits(
        memory_mb=_expect(iso, "memory_mb", int, defaults.memory_mb),
        timeout_ms=_expect(iso, "timeout_ms", int, defaults.timeout_ms),
        max_requests=_expect(iso, "max_requests", int, defaults.max_requests),
        pool_size=_expect(iso, "pool_size", int, defaults.pool_size),
        queue_timeout_ms=_expect(iso, "queue_timeout_ms", int, defaults.queue_timeout_ms),
    )
    if limits.memory_mb < 32:
        raise SiteConfigError("isolate.memory_mb must be at least 32 (an isolate cannot start in less)", file=SITE_FILE)
    base_url = _expect(raw, "base_url", str, SiteConfig.base_url)
    if not base_url.endswith("/"):
        base_url += "/"
    taxonomies = _expect(raw, "taxonomies", dict, {"tags": "tag"})
    menus = _expect(raw, "menu", dict, {})
    per_page = _expect(pagination, "per_page", int, 10)
    if per_page < 1:
        raise SiteConfigError("pagination.per_page must be at least 1", file=SITE_FILE)
    main_sections = raw.get("main_sections")
    if main_sections is not None and (not isinstance(main_sections, list) or not all(isinstance(m, str) for m in main_sections)):
        raise SiteConfigError(f"main_sections must be a list of section names, got {main_sections!r}", file=SITE_FILE)
    language = _expect(raw, "language", str, "en")
    languages: dict[str, dict[str, Any]] = {}
    for code, table in _expect(raw, "languages", dict, {}).items():
        if not isinstance(table, dict):
            raise SiteConfigError(f"languages.{code} must be a table", file=SITE_FILE)
        _expect(table, "weight", int, 0)
        languages[str(code)] = {"code": str(code), "name": str(table.get("name", code)),
                                "title": str(table.get("title", raw.get("title", ""))),
                                "weight": int(table.get("weight", 0)), "params": table.get("params", {})}
    if languages and language not in languages:
        languages[language] = {"code": language, "name": language, "title": str(raw.get("title", "")), "weight": -1, "params": {}}
    languages = dict(sorted(languages.items(), key=lambda item: (item[1]["weight"], item[0])))
    return SiteConfig(
        main_sections=main_sections, languages=languages,
        title=_expect(raw, "title", str, ""),
        base_url=base_url,
        language=language,
        description=_expect(raw, "description", str, ""),
        build_drafts=_expect(raw, "build_drafts", bool, False),
        build_future=_expect(raw, "build_future", bool, False),
        permalinks={str(k): str(v) for k, v in _expect(raw, "permalinks", dict, {}).items()},
        taxonomies={str(k): str(v) for k, v in taxonomies.items()},
        per_page=per_page,
        feed_limit=_expect(feed, "limit", int, 20),
        browser_cache=_expect(cache, "browser", str, SiteConfig.browser_cache),
        static_cache=_expect(cache, "static", str, SiteConfig.static_cache),
        isolate=limits,
        params=_expect(raw, "params", dict, {}),
        menus={str(k): sorted(v, key=lambda e: (e.get("weight", 0), e.get("name", ""))) for k, v in menus.items()},
    )


@dataclass(frozen=True)
class Site:
    """A site folder. ``name`` is the folder's name; it names the site's cache namespace."""

    root: Path
    name: str

    @classmethod
    def open(cls, path: str | Path) -> "Site":
        root = Path(path).resolve()
        if not (root / SITE_FILE).is_file():
            raise SiteConfigError(f"no {SITE_FILE} in {root}", file=SITE_FILE)
        return cls(root=root, name=root.name)

    def config(self) -> SiteConfig:
        return parse_config((self.root / SITE_FILE).read_text(encoding="utf-8"))
