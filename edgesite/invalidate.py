"""Invalidation: from two versions of a site to the exact tags to purge, and the watcher that
turns file edits into new versions.

``changed_tags(old, new)`` is the whole policy, shared by watching, deploys and restarts:
- every input whose hash changed, appeared or vanished: ``file:<path>``;
- a content page that changed, appeared or vanished: the lists it is in, before and after
  (its section, its terms, ``list:all``); a taxonomy whose terms or their counts changed;
- every URL whose route changed, appeared (a cached 404 there) or vanished: ``path:<url>``;
- pages whose previous/next neighbours changed: ``neighbours:<page>``; whose translations
  changed: ``translations:<page>``;
- the home page and feed of a language list its main sections: ``list:main:<lang>``;
- structure: ``list:sections`` when sections come or go, ``list:routes`` when URLs do.
"""

from __future__ import annotations

from typing import Any

from .content import slugify
from .routes import Manifest, taxonomy_key


def _neighbours(manifest: Manifest) -> dict[str, tuple[str | None, str | None]]:
    """Each listed page's (previous, next) page in its section."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for section in manifest.sections.values():
        listed = section["pages"]
        for i, rel in enumerate(listed):
            found[rel] = (listed[i - 1] if i > 0 else None, listed[i + 1] if i + 1 < len(listed) else None)
    return found


def _listing(page: dict[str, Any]) -> tuple[Any, ...]:
    """What a neighbour or translation link can show of a page: everything but its body and
    the date its file last changed (which every edit of it moves)."""
    return tuple(sorted((k, repr(v)) for k, v in page.items() if k not in ("hash", "words", "modified")))


def _translation_links(manifest: Manifest) -> dict[str, tuple[str, ...]]:
    """Each translated page's other-language versions (pages with none are left out)."""
    if len(manifest.site.get("languages") or {}) < 2:
        return {}  # one language: no page has translations
    return {rel: tuple(r for r in members if r != rel)
            for members in manifest.translation_groups().values() if len(members) > 1 for rel in members}


def _relisted(old: Manifest, new: Manifest) -> set[str]:
    """Pages whose listing (what a link to them can show) differs between the versions.
    Only pages whose records differ at all are compared field by field."""
    found = set()
    for rel in set(old.pages) | set(new.pages):
        before, after = old.pages.get(rel), new.pages.get(rel)
        if before != after and (before is None or after is None or _listing(before) != _listing(after)):
            found.add(rel)
    return found


def _links_changed(old_links: dict[str, Any], new_links: dict[str, Any], relisted: set[str]) -> set[str]:
    """Pages whose linked pages are others now, or are the same pages showing something new."""
    return {rel for rel in set(old_links) | set(new_links)
            if old_links.get(rel) != new_links.get(rel) or any(r in relisted for r in new_links.get(rel) or () if r)}


def _term_counts(table: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    return [(slug, entry["name"], entry["url"], len(entry["pages"])) for slug, entry in table.items()]


def _lists_of(page: dict[str, Any], default_lang: str) -> set[str]:
    lang = page.get("lang") or default_lang
    tags = {f"list:section:{page['section']}", "list:all"}
    if page.get("main"):
        tags.add(f"list:main:{lang}")
    for tax, names in page["terms"].items():
        key = taxonomy_key(tax, lang, default_lang)
        tags.update(f"list:term:{key}:{slugify(name) or name}" for name in names)
    return tags


def changed_tags(old: Manifest, new: Manifest) -> set[str]:
    """The tags to purge when ``new`` replaces ``old`` (both compiled from the same site)."""
    tags: set[str] = set()
    for rel in set(old.inputs) | set(new.inputs):
        if old.inputs.get(rel) != new.inputs.get(rel):
            tags.add(f"file:{rel}")
    for rel in set(old.pages) | set(new.pages):
        before, after = old.pages.get(rel), new.pages.get(rel)
        if before == after:
            continue
        for page, manifest in ((before, old), (after, new)):
            if page is not None:
                tags |= _lists_of(page, manifest.site.get("default_language", manifest.site["language"]))
    for key in set(old.terms) | set(new.terms):
        if _term_counts(old.terms.get(key, {})) != _term_counts(new.terms.get(key, {})):
            tags.add(f"list:taxonomy:{key}")  # a term appeared, went, or its count changed
    for url in set(old.routes) | set(new.routes):
        if old.routes.get(url) != new.routes.get(url):
            tags.add(f"path:{url}")
    for route in new.worker_routes:
        if route not in old.worker_routes:
            tags.add("prefix:/")  # a new dynamic worker route may shadow cached 404s anywhere
    relisted = _relisted(old, new)
    tags.update(f"neighbours:{rel}" for rel in _links_changed(_neighbours(old), _neighbours(new), relisted))
    old_t, new_t = _translation_links(old), _translation_links(new)
    tags.update(f"translations:{rel}" for rel in _links_changed(old_t, new_t, relisted))
    for root in set(old.sections) | set(new.sections):
        before_main, after_main = old.sections.get(root, {}).get("main_pages"), new.sections.get(root, {}).get("main_pages")
        if before_main != after_main and (before_main is not None or after_main is not None):
            tags.add(f"list:main:{new.sections.get(root, old.sections.get(root, {})).get('lang')}")
    if set(old.sections) != set(new.sections) or any(
        (old.sections[s].get("title"), old.sections[s].get("weight"), old.sections[s].get("subsections"))
        != (new.sections[s].get("title"), new.sections[s].get("weight"), new.sections[s].get("subsections"))
        for s in old.sections if s in new.sections
    ):
        tags.add("list:sections")
        for name in set(old.sections) | set(new.sections):
            if old.sections.get(name) != new.sections.get(name):
                tags.add(f"list:section:{name}")
    if set(old.routes) != set(new.routes):
        tags.add("list:routes")
    return tags
