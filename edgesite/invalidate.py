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


def _neighbours(manifest: Manifest) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    pages = manifest.pages
    for section in manifest.sections.values():
        listed = section["pages"]
        for i, rel in enumerate(listed):
            prev = listed[i - 1] if i > 0 else None
            nxt = listed[i + 1] if i + 1 < len(listed) else None
            found[rel] = tuple(_listing(pages[r]) if r else None for r in (prev, nxt))
    return found


def _listing(page: dict[str, Any]) -> tuple[Any, ...]:
    """What a neighbour or translation link can show of a page: everything but its body and
    the date its file last changed (which every edit of it moves)."""
    return tuple(sorted((k, repr(v)) for k, v in page.items() if k not in ("hash", "words", "modified")))


def _translations(manifest: Manifest) -> dict[str, tuple[Any, ...]]:
    return {rel: tuple(_listing(manifest.pages[r]) for r in manifest.translations(rel)) for rel in manifest.pages}


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
    old_n, new_n = _neighbours(old), _neighbours(new)
    for rel in set(old_n) | set(new_n):
        if old_n.get(rel) != new_n.get(rel):
            tags.add(f"neighbours:{rel}")
    old_t, new_t = _translations(old), _translations(new)
    for rel in set(old_t) | set(new_t):
        if old_t.get(rel) != new_t.get(rel):
            tags.add(f"translations:{rel}")
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
