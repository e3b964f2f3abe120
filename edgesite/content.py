"""Content files: front matter (YAML between ``---`` or TOML between ``+++``) and body.

Compile calls ``parse_front_matter`` for every content file; the render core calls
``split_body`` to get the Markdown without parsing the front matter again.
Front matter keys follow Hugo, Pelican and Jekyll: ``title``, ``date``, ``draft``, ``tags``
(and any configured taxonomy), ``slug``, ``aliases``, ``weight``, ``summary``, ``template``
(``layout`` too), ``type`` (a template folder, as in Hugo), ``lastmod`` (``updated``,
``last_modified_at``, ``modified``), ``url`` (an explicit URL; Jekyll's ``permalink`` too),
``description``, ``publishDate`` (hidden until then), ``expiryDate`` (hidden from then on),
``published: false`` (Jekyll's draft), ``categories``/``category`` (a taxonomy when
configured), ``lang``. Anything else is kept in ``params``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from .errors import FrontMatterError

KNOWN_KEYS = {
    "title", "date", "draft", "slug", "aliases", "weight", "summary", "template", "layout",
    "lastmod", "updated", "last_modified_at", "modified", "url", "permalink", "description",
    "publishdate", "publishDate", "expirydate", "expiryDate", "published", "type", "lang", "category",
}
JEKYLL_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(.+)$")

_SLUG_STRIP = re.compile(r"[^\w\s-]", re.UNICODE)
_SLUG_DASH = re.compile(r"[\s_-]+")


@functools.lru_cache(maxsize=65536)
def slugify(text: str) -> str:
    """Lowercase, ASCII-friendly URL segment: 'Hello, World!' -> 'hello-world'."""
    text = _SLUG_STRIP.sub("", text.lower()).strip()
    return _SLUG_DASH.sub("-", text).strip("-")


def split_body(text: str) -> tuple[str, int]:
    """Return (markdown body, number of lines the front matter took)."""
    for fence in ("---", "+++"):
        if text.startswith(fence + "\n") or text.startswith(fence + "\r\n"):
            end = re.search(r"^" + re.escape(fence) + r"[ \t]*\r?$", text[len(fence) + 1:], re.M)
            if end is None:
                return text, 0
            cut = len(fence) + 1 + end.end()
            head = text[:cut]
            body = text[cut:]
            if body.startswith("\r\n"):
                body = body[2:]
            elif body.startswith("\n"):
                body = body[1:]
            return body, head.count("\n") + 1
    return text, 0


def _raw_front_matter(text: str, file: str) -> tuple[str, str]:
    for fence, fmt in (("---", "yaml"), ("+++", "toml")):
        if text.startswith(fence + "\n") or text.startswith(fence + "\r\n"):
            rest = text[len(fence) + 1:]
            end = re.search(r"^" + re.escape(fence) + r"[ \t]*\r?$", rest, re.M)
            if end is None:
                raise FrontMatterError(f"front matter opened with '{fence}' is never closed", file=file, line=1)
            return fmt, rest[: end.start()]
    return "", ""


def to_datetime(value: Any, file: str, key: str) -> dt.datetime | None:
    """Dates as authors write them: YAML/TOML dates, ISO strings, with or without time/zone."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise FrontMatterError(f"{key} {value!r} is not a date (use YYYY-MM-DD or ISO 8601)", file=file) from None
    else:
        raise FrontMatterError(f"{key} must be a date, got {value!r}", file=file)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def parse_front_matter(text: str, file: str) -> dict[str, Any]:
    """Parse a content file's front matter into a plain dict. Raises FrontMatterError with
    the file and the line (counted from the top of the file) of a syntax error."""
    fmt, raw = _raw_front_matter(text, file)
    if not fmt:
        return {}
    if fmt == "yaml":
        import yaml

        try:
            # libyaml's parser where present: compile runs on the host only, and this is ~80% of it
            data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc)
            raise FrontMatterError(f"invalid YAML front matter: {problem}", file=file, line=line) from None
    else:
        import tomllib

        try:
            data = tomllib.loads(raw)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"line (\d+)", str(exc))
            line = int(match.group(1)) + 1 if match else 1
            raise FrontMatterError(f"invalid TOML front matter: {exc}", file=file, line=line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be a mapping of keys to values", file=file, line=2)
    return data


def _str_list(value: Any, file: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if "," in value else [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    raise FrontMatterError(f"{key} must be a list of strings, got {value!r}", file=file)


def normalise(meta: dict[str, Any], file: str, taxonomies: dict[str, str]) -> dict[str, Any]:
    """Check types and fold Hugo/Jekyll spellings into one set of keys (JSON-ready)."""
    title = meta.get("title", "")
    if not isinstance(title, (str, int, float)):
        raise FrontMatterError(f"title must be a string, got {title!r}", file=file)
    draft = meta.get("draft", False)
    if not isinstance(draft, bool):
        raise FrontMatterError(f"draft must be true or false, got {draft!r}", file=file)
    if meta.get("published") is False:
        draft = True
    weight = meta.get("weight", 0)
    if not isinstance(weight, int) or isinstance(weight, bool):
        raise FrontMatterError(f"weight must be an integer, got {weight!r}", file=file)
    publish = to_datetime(meta.get("publishDate", meta.get("publishdate")), file, "publishDate")
    date = to_datetime(meta.get("date"), file, "date") or publish
    expiry = to_datetime(meta.get("expiryDate", meta.get("expirydate")), file, "expiryDate")
    lastmod = to_datetime(meta.get("lastmod", meta.get("updated", meta.get("last_modified_at", meta.get("modified")))),
                          file, "lastmod")
    slug = meta.get("slug")
    if slug is not None and not isinstance(slug, str):
        raise FrontMatterError(f"slug must be a string, got {slug!r}", file=file)
    url = meta.get("url")
    if url is None and isinstance(meta.get("permalink"), str) and ":" not in meta["permalink"]:
        url = meta["permalink"]  # Jekyll's literal permalink (its ``:placeholders`` are not ours)
    if url is not None and (not isinstance(url, str) or not url.startswith("/")):
        raise FrontMatterError(f"url must be a path starting with '/', got {url!r}", file=file)
    template = meta.get("template", meta.get("layout"))
    if template is not None and not isinstance(template, str):
        raise FrontMatterError(f"template must be a string, got {template!r}", file=file)
    if template and "." not in template:
        template += ".html"
    kind = meta.get("type")
    if kind is not None and not isinstance(kind, str):
        raise FrontMatterError(f"type must be a string, got {kind!r}", file=file)
    lang = meta.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise FrontMatterError(f"lang must be a string, got {lang!r}", file=file)
    summary = meta.get("summary", meta.get("description"))
    terms = {tax: _str_list(meta.get(tax), file, tax) for tax in taxonomies}
    if "categories" in terms and not terms["categories"] and meta.get("category"):
        terms["categories"] = _str_list(meta.get("category"), file, "category")
    params = {k: jsonable(v) for k, v in meta.items() if k not in KNOWN_KEYS and k not in taxonomies}
    return {
        "title": str(title),
        "date": date.isoformat() if date else None,
        "publish": publish.isoformat() if publish else None,
        "expiry": expiry.isoformat() if expiry else None,
        "type": kind,
        "lang": lang,
        "lastmod": lastmod.isoformat() if lastmod else None,
        "draft": draft,
        "weight": weight,
        "slug": slug,
        "url": url,
        "aliases": _str_list(meta.get("aliases"), file, "aliases"),
        "template": template,
        "summary": str(summary) if summary is not None else None,
        "description": str(meta.get("description", "")) if meta.get("description") is not None else "",
        "terms": terms,
        "params": params,
    }


def jsonable(value: Any) -> Any:
    """The value as JSON gives it back: dates as ISO strings, keys as strings, tuples as lists."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
