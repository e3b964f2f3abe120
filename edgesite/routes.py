"""Compile a site into its manifest: the route table, the collections and a hash of every input.

Compiling reads each content file's front matter (and hashes its bytes) and lists the other
folders; it renders nothing. A ``Compiler`` remembers what it read, so a recompile after one
edit reads only the files whose size or mtime changed. Matching a request is a dict lookup
in the compiled table (worker routes with ``{param}`` segments are tried after it).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .content import JEKYLL_NAME, jsonable, normalise, parse_front_matter, slugify, split_body
from .errors import CompileError, FrontMatterError
from .site import SITE_FILE, WORKER_FILE, Site, SiteConfig, parse_config

MANIFEST_FILE = "manifest.json"
SEARCH_INDEX = "/search.json"
PLACEHOLDERS = {"section", "slug", "year", "month", "day", "filename"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SLASHES = re.compile(r"/{2,}")
DATA_SUFFIXES = (".yaml", ".yml", ".toml", ".json", ".csv")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass
class FileRecord:
    """What compile kept of one file: enough to skip it next time it is unchanged."""

    mtime_ns: int
    size: int
    hash: str
    meta: dict[str, Any] | None = None  # normalised front matter (content files)
    error: dict[str, Any] | None = None  # front matter error (content files)
    words: int = 0
    summary_md: str = ""
    data: Any = None  # parsed data file
    sri: str = ""  # static files: the integrity hash of their bytes
    modified: str | None = None  # content files: last commit (git) or mtime, when front matter has no lastmod


@dataclass
class Manifest:
    """One immutable, content-addressed version of a site, as JSON the render core reads."""

    version: str
    site: dict[str, Any]
    pages: dict[str, dict[str, Any]]
    sections: dict[str, dict[str, Any]]
    terms: dict[str, dict[str, dict[str, Any]]]
    routes: dict[str, dict[str, Any]]
    worker_routes: list[dict[str, Any]]
    inputs: dict[str, str]
    templates: list[str]
    data: dict[str, Any]
    static: dict[str, str]
    errors: dict[str, dict[str, Any]]
    next_publish: str | None = None
    sri: dict[str, str] = field(default_factory=dict)
    config: SiteConfig | None = field(default=None, compare=False, repr=False)
    static_paths: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version, "site": self.site, "pages": self.pages, "sections": self.sections,
            "terms": self.terms, "routes": self.routes, "worker_routes": self.worker_routes,
            "inputs": self.inputs, "templates": self.templates, "data": self.data,
            "static": self.static, "errors": self.errors, "next_publish": self.next_publish, "sri": self.sri,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Manifest":
        manifest = cls(**raw)
        manifest.static_paths = {url: path for path, url in manifest.static.items()}
        return manifest

    def write(self, versions_root: Path) -> Path:
        """Write ``versions_root/<version>/manifest.json`` atomically (once per version), and
        keep this object as what reading that file gives, so a render core in this process
        need not parse it again (the JSON keeps insertion order, so both are the same)."""
        folder = versions_root / self.version
        target = folder / MANIFEST_FILE
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{MANIFEST_FILE}.{os.getpid()}"
            tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, target)
        _WRITTEN[str(target)] = self
        while len(_WRITTEN) > 8:
            _WRITTEN.pop(next(iter(_WRITTEN)))
        return target

    @classmethod
    def read(cls, path: str) -> "Manifest":
        """The manifest in ``path``: the object this process wrote there, else parsed from disk
        (always so in an isolate, which shares no memory with the host)."""
        found = _WRITTEN.get(path)
        if found is not None:
            return found
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(json.load(fh))

    def translation_groups(self) -> dict[str, list[str]]:
        """Pages that are one page in several languages, by translation key (built once)."""
        index: dict[str, list[str]] | None = self.__dict__.get("_translations")
        if index is None:
            order = {code: i for i, code in enumerate(self.site.get("languages") or {})}
            groups: dict[str, list[str]] = {}
            for other, page in sorted(self.pages.items()):
                groups.setdefault(page.get("key", other), []).append(other)
            for members in groups.values():
                members.sort(key=lambda r: (order.get(self.pages[r].get("lang", ""), -1), r))
            index = self.__dict__["_translations"] = groups
        return index

    def translations(self, rel: str) -> list[str]:
        """The other languages' versions of a page, in the order of ``[languages]``."""
        found = self.pages.get(rel)
        if found is None:
            return []
        return [r for r in self.translation_groups().get(found.get("key", rel), []) if r != rel]

    def match(self, path: str) -> dict[str, Any] | None:
        """The route for a normalised path, or None. A worker route's params are filled in."""
        route = self.routes.get(path)
        if route is not None:
            return route
        for pattern in self.worker_routes:
            found = re.fullmatch(pattern["regex"], path)
            if found:
                return {**pattern, "params": found.groupdict()}
        return None


_WRITTEN: dict[str, Manifest] = {}


def check_permalink(section: str, pattern: str) -> None:
    if not pattern.startswith("/"):
        raise CompileError(f"permalink for '{section}' must start with '/': {pattern!r}", file=SITE_FILE)
    for name in _PLACEHOLDER.findall(pattern):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise CompileError(f"permalink for '{section}' has unknown placeholder {{{name}}} (known: {known})", file=SITE_FILE)
    if "{" in _PLACEHOLDER.sub("", pattern) or "}" in _PLACEHOLDER.sub("", pattern):
        raise CompileError(f"permalink for '{section}' has an unbalanced brace: {pattern!r}", file=SITE_FILE)


def _page_url(rel: str, section: str, meta: dict[str, Any], permalinks: dict[str, str]) -> str:
    if meta.get("url"):
        url = str(meta["url"])
        return url if url.endswith("/") or "." in url.rsplit("/", 1)[-1] else url + "/"
    stem = _stem(rel)
    slug = meta.get("slug") or slugify(stem) or stem
    top = section.split("/")[0] if section else ""
    pattern = permalinks.get(section) or permalinks.get(top) or ("/{section}/{slug}/" if section else "/{slug}/")
    date = meta.get("date") or ""  # ISO 8601, UTC: YYYY-MM-DD...
    values = {"section": section, "slug": slug, "filename": stem, "year": date[:4], "month": date[5:7], "day": date[8:10]}
    url = _PLACEHOLDER.sub(lambda m: values[m.group(1)], pattern)
    return _SLASHES.sub("/", url) if "//" in url else url


def _stem(rel: str) -> str:
    """``content/posts/a.fr.md`` -> ``a.fr`` (Path(rel).stem without building a Path)."""
    name = rel.rpartition("/")[2]
    return name.rpartition(".")[0] or name


def _summary_source(body: str) -> str:
    """Markdown of a page's summary when front matter has none: text before ``<!--more-->``,
    else the first paragraph."""
    if "<!--more-->" in body:
        return body.split("<!--more-->", 1)[0].strip()
    for block in re.split(r"\n\s*\n", body.strip()):
        block = block.strip()
        if block and not block.startswith(("#", "```", "~~~", "{{<", "!!!", "|", "<")):
            return block
    return ""


def _parse_data(path: Path, raw: bytes) -> Any:
    text = raw.decode("utf-8")
    suffix = path.suffix
    if suffix in (".yaml", ".yml"):
        import yaml

        return jsonable(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    if suffix == ".toml":
        import tomllib

        return jsonable(tomllib.loads(text))
    if suffix == ".json":
        return json.loads(text)
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))


def _find_worker_routes(source: str) -> list[dict[str, Any]]:
    """Read ``@route("/path")`` declarations of worker.py without running it (the host never
    executes a site's code; only the isolate does)."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise CompileError(f"syntax error: {exc.msg}", file=WORKER_FILE, line=exc.lineno or 0) from None
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for deco in node.decorator_list:
            if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name | ast.Attribute)
                    and (getattr(deco.func, "id", None) or getattr(deco.func, "attr", None)) == "route"
                    and deco.args and isinstance(deco.args[0], ast.Constant) and isinstance(deco.args[0].value, str)):
                path = deco.args[0].value
                if not path.startswith("/"):
                    raise CompileError(f"route {path!r} must start with '/'", file=WORKER_FILE, line=deco.lineno)
                regex = "".join(
                    f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
                    for part in re.split(r"(\{\w+\})", path)
                )
                found.append({"kind": "worker", "path": path, "function": node.name, "regex": regex,
                              "dynamic": "{" in path, "line": deco.lineno})
    return found


class Compiler:
    """Compiles one site, remembering each file so a recompile reads only what changed.

    ``files_read`` counts the files read by the last ``compile()`` (tests check that one edit
    reads one file).
    """

    def __init__(self, site: Site, *, include_drafts: bool | None = None) -> None:
        self.site = site
        self.include_drafts = include_drafts
        self._records: dict[str, FileRecord] = {}
        self._config: tuple[str, SiteConfig] | None = None
        self.files_read = 0
        self._git: dict[str, str] | None = None
        self._git_first = True
        self._git_cache: dict[tuple[str, str], str] = {}

    def _scan(self) -> dict[str, os.stat_result]:
        """Stat every input file (one scandir per folder; paths sliced, not resolved)."""
        found: dict[str, os.stat_result] = {}
        root = str(self.site.root)
        pending = [f"{root}/{folder}" for folder in ("content", "templates", "static", "data")]
        cut = len(root) + 1
        while pending:
            folder = pending.pop()
            try:
                entries = os.scandir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(".") or name.endswith("~"):
                        continue
                    if entry.is_dir():
                        pending.append(entry.path)
                    elif entry.is_file():
                        found[entry.path[cut:]] = entry.stat()
        for name in (SITE_FILE, WORKER_FILE):
            full = os.path.join(root, name)
            if os.path.isfile(full):
                found[name] = os.stat(full)
        return found

    def _record(self, rel: str, st: os.stat_result, config: SiteConfig | None) -> FileRecord:
        old = self._records.get(rel)
        if old is not None and old.mtime_ns == st.st_mtime_ns and old.size == st.st_size:
            return old
        self.files_read += 1
        raw = (self.site.root / rel).read_bytes()
        record = FileRecord(mtime_ns=st.st_mtime_ns, size=st.st_size, hash=digest(raw))
        if rel.startswith("content/") and rel.endswith(".md") and config is not None:
            text = raw.decode("utf-8", errors="replace")
            try:
                record.meta = normalise(parse_front_matter(text, rel), rel, config.taxonomies)
                jekyll = JEKYLL_NAME.match(_stem(rel))
                if jekyll:
                    record.meta["date"] = record.meta["date"] or dt.datetime(
                        int(jekyll[1]), int(jekyll[2]), int(jekyll[3]), tzinfo=dt.timezone.utc).isoformat()
                    record.meta["slug"] = record.meta["slug"] or slugify(jekyll[4]) or jekyll[4]
                body, _ = split_body(text)
                record.words = len(body.split())
                record.summary_md = _summary_source(body)
            except FrontMatterError as exc:
                record.error = {"kind": exc.kind, "message": exc.message, "file": rel, "line": exc.line}
        elif rel.startswith("static/"):
            record.sri = "sha384-" + base64.b64encode(hashlib.sha384(raw).digest()).decode("ascii")
        elif rel == WORKER_FILE:
            record.data = raw.decode("utf-8", errors="replace")
        elif rel.startswith("data/") and rel.endswith(DATA_SUFFIXES):
            try:
                record.data = _parse_data(self.site.root / rel, raw)
            except Exception as exc:  # a broken data file is reported, never fatal
                line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
                record.error = {"kind": "data", "message": f"invalid data file: {exc}", "file": rel, "line": max(line, 0)}
        if record.meta is not None and record.meta["lastmod"] is None:
            record.modified = self._modified(rel, record.hash, st)
        self._records[rel] = record
        return record

    def _modified(self, rel: str, file_hash: str, st: os.stat_result) -> str:
        """When a content file last changed: its last commit if the site is in a git
        repository (one ``git log`` for the whole site, then one per edited file, cached per
        file hash), else its mtime. Host only; the manifest carries the result."""
        if self._git is None:
            self._git = _git_dates(self.site.root)
        cached = self._git_cache.get((rel, file_hash))
        if cached is None and not self._git:
            cached = ""  # not in a git repository (or nothing committed): mtimes
        if cached is None:
            cached = self._git.get(rel, "") if self._git_first else _git_date(self.site.root, rel)
            self._git_cache[(rel, file_hash)] = cached
        if cached:
            return cached
        return dt.datetime.fromtimestamp(st.st_mtime_ns // 1_000_000_000, dt.timezone.utc).isoformat()

    def compile(self, now: dt.datetime | None = None) -> Manifest:
        """Compile the site as it is on disk now. Raises SiteConfigError or CompileError;
        front matter errors do not raise: they become error routes naming file and line."""
        self.files_read = 0
        now = now or dt.datetime.now(dt.timezone.utc)
        stats = self._scan()
        if SITE_FILE not in stats:
            raise CompileError(f"{SITE_FILE} is missing", file=SITE_FILE)
        site_record = self._record(SITE_FILE, stats[SITE_FILE], None)
        if self._config is None or self._config[0] != site_record.hash:
            config = parse_config((self.site.root / SITE_FILE).read_text(encoding="utf-8"))
            # a config change may change how every content file normalises (taxonomies)
            self._records = {k: v for k, v in self._records.items() if not k.startswith("content/")}
            self._config = (site_record.hash, config)
        config = self._config[1]
        for key, pattern in config.permalinks.items():
            check_permalink(key, pattern)
        records = {rel: self._record(rel, st, config) for rel, st in sorted(stats.items())}
        for gone in set(self._records) - set(records):
            del self._records[gone]
        self._git_first = False
        return build_manifest(config, records, now, self.include_drafts)


def _git_dates(root: Path) -> dict[str, str]:
    """Last commit date of every content file under ``root``, from one ``git log`` (empty
    when ``root`` is not in a git repository or git is missing)."""
    import subprocess

    try:
        out = subprocess.run(["git", "log", "--format=%x00%cI", "--name-only", "--relative", "--", "content"],
                             cwd=root, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, str] = {}
    date = ""
    for line in out.splitlines():
        if line.startswith("\x00"):
            date = line[1:]
        elif line and date and line not in found:
            found[line] = _utc(date)
    return found


def _git_date(root: Path, rel: str) -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "log", "-1", "--format=%cI", "--", rel], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return _utc(out) if out else ""


def _utc(stamp: str) -> str:
    return dt.datetime.fromisoformat(stamp).astimezone(dt.timezone.utc).isoformat()


def _section_of(rel: str) -> str:
    parent = rel[len("content/"):].rpartition("/")[0]
    return parent


def taxonomy_key(tax: str, lang: str, default_lang: str) -> str:
    """Terms of a taxonomy are per language: ``tags`` for the default one, ``fr/tags`` else."""
    return tax if lang == default_lang else f"{lang}/{tax}"


def _join(lang: str, local: str, default_lang: str) -> str:
    if lang == default_lang:
        return local
    return f"{lang}/{local}" if local else lang


def _unlang(rel: str, languages: list[str]) -> str:
    """``content/posts/x.fr.md`` -> ``content/posts/x.md`` (for slugs and file names)."""
    head, _, name = rel.rpartition("/")
    parts = name.split(".")
    if len(parts) == 3 and parts[1] in languages:
        return f"{head}/{parts[0]}.md"
    return rel


def _place(rel: str, meta: dict[str, Any] | None, languages: list[str], default_lang: str) -> tuple[str, str, str]:
    """(language, section inside that language, translation key) of a content file: by its
    name (``x.fr.md``), else its top folder (``content/fr/...``), else ``lang``, else the default."""
    section = _section_of(rel)
    name = rel.rsplit("/", 1)[-1]
    parts = name.split(".")
    top, _, rest = section.partition("/")
    lang = None
    if len(parts) == 3 and parts[1] in languages:
        lang = parts[1]
        name = f"{parts[0]}.md"
    if len(languages) > 1 and top in languages:
        lang, section = lang or top, rest
    lang = lang or (meta or {}).get("lang") or default_lang
    return lang, section, f"{section}/{name}" if section else name


def _sort_key(page: dict[str, Any]) -> tuple[Any, ...]:
    date = page["date"] or ""
    return (page["weight"], _Desc(date), page["title"], page["rel"])


class _Desc:
    """Sorts strings in reverse inside a tuple key."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: "_Desc") -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value


def build_manifest(config: SiteConfig, records: dict[str, FileRecord], now: dt.datetime,
                   include_drafts: bool | None = None) -> Manifest:
    """Turn the per-file records into the manifest. Pure: no file is read here."""
    drafts = config.build_drafts if include_drafts is None else include_drafts
    pages: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, Any]] = {}
    sections: dict[str, dict[str, Any]] = {"": {"name": "", "index": None, "pages": [], "subsections": []}}
    next_publish: str | None = None
    routes: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}

    def add_route(url: str, route: dict[str, Any], source: str) -> None:
        if url in routes:
            raise CompileError(f"URL {url} is produced twice: by {owner[url]} and by {source}", file=source)
        routes[url] = route
        owner[url] = source

    content = {rel: r for rel, r in records.items() if rel.startswith("content/") and rel.endswith(".md")}
    languages = list(config.languages) or [config.language]
    default_lang = config.language
    placed = {rel: _place(rel, record.meta, languages, default_lang) for rel, record in content.items()}
    for lang in languages:
        if lang != default_lang:
            sections[lang] = {"name": lang, "index": None, "pages": [], "subsections": [], "lang": lang}
    for rel, (lang, local, _key) in placed.items():
        section = _join(lang, local, default_lang)
        parts = local.split("/") if local else []
        for i in range(len(parts)):
            name = _join(lang, "/".join(parts[: i + 1]), default_lang)
            parent = _join(lang, "/".join(parts[:i]), default_lang)
            if name not in sections:
                sections[name] = {"name": name, "index": None, "pages": [], "subsections": []}
                sections[parent]["subsections"].append(name)
    for rel, record in content.items():
        lang, local, key = placed[rel]
        section = _join(lang, local, default_lang)
        prefix = "" if lang == default_lang else f"/{lang}"
        if record.error is not None:
            stem = _stem(rel)
            url = (f"/{section}/" if stem == "_index" else f"/{section}/{slugify(stem)}/") if section else (
                "/" if stem == "_index" else f"/{slugify(stem)}/")
            url = re.sub(r"/{2,}", "/", url)
            errors[rel] = record.error
            add_route(url, {"kind": "error", "error_kind": record.error["kind"], "message": record.error["message"],
                            "file": rel, "line": record.error["line"]}, rel)
            continue
        meta = record.meta or {}
        if meta["draft"] and not drafts:
            continue
        visible_from = meta.get("publish") or meta["date"]
        if visible_from and not config.build_future and visible_from > now.isoformat():
            next_publish = min(next_publish or visible_from, visible_from)
            continue
        if meta.get("expiry"):
            if meta["expiry"] <= now.isoformat():
                continue
            next_publish = min(next_publish or meta["expiry"], meta["expiry"])
        is_index = rel.rpartition("/")[2].split(".")[0] == "_index"
        if is_index:
            url = meta["url"] or (f"{prefix}/{local}/" if local else f"{prefix}/")
            kind = "section" if local else "home"
        else:
            url = meta["url"] or prefix + _page_url(_unlang(rel, languages), local, meta, config.permalinks)
            kind = "page"
        page = {
            "rel": rel, "url": url, "kind": kind, "section": section, "title": meta["title"] or _stem(rel),
            "date": meta["date"], "lastmod": meta["lastmod"], "modified": record.modified, "weight": meta["weight"],
            "draft": meta["draft"], "summary": meta["summary"] if meta["summary"] is not None else record.summary_md,
            "description": meta["description"], "terms": meta["terms"], "params": meta["params"],
            "template": meta["template"], "type": meta.get("type"), "aliases": meta["aliases"], "words": record.words,
            "hash": record.hash, "lang": lang, "key": key, "main": False,
        }
        pages[rel] = page
        if is_index:
            sections[section]["index"] = rel
        else:
            sections[section]["pages"].append(rel)

    templates = sorted(rel[len("templates/"):] for rel in records if rel.startswith("templates/"))
    template_set = set(templates)
    per_page = config.per_page

    def pick(candidates: list[str]) -> str:
        for name in candidates:
            if name in template_set:
                return name
        return candidates[-1]

    roots = {lang: ("" if lang == default_lang else lang) for lang in languages}
    for name, info in sections.items():
        info["pages"].sort(key=lambda r: _sort_key(pages[r]))
        index = pages.get(info["index"]) if info["index"] else None
        lang = info.get("lang") or next((l for l, root in roots.items() if root and name.startswith(root + "/")), default_lang)
        local = name if lang == default_lang else name[len(lang) + 1:]
        prefix = "" if lang == default_lang else f"/{lang}"
        home_title = config.languages.get(lang, {}).get("title", config.title) if config.languages else config.title
        info["title"] = index["title"] if index else (local.rsplit("/", 1)[-1].replace("-", " ").title() if local else home_title)
        info["url"] = index["url"] if index else (f"{prefix}/{local}/" if local else f"{prefix}/")
        info["weight"] = index["weight"] if index else 0
        info["lang"], info["local"] = lang, local
    for info in sections.values():
        info["subsections"].sort(key=lambda n: (sections[n]["weight"], sections[n]["title"], n))
    regular = sorted((p for p in pages.values() if p["kind"] == "page"), key=lambda p: (_Desc(p["date"] or ""), p["title"], p["rel"]))
    main_sections = config.main_sections
    if main_sections is None:
        dated: dict[str, int] = {}
        for p in regular:
            top = sections[p["section"]]["local"].split("/")[0]
            if p["date"] and top:
                dated[top] = dated.get(top, 0) + 1
        main_sections = [min(dated, key=lambda n: (-dated[n], n))] if dated else []
    for p in regular:
        p["main"] = not main_sections or sections[p["section"]]["local"].split("/")[0] in main_sections
    site = config.to_json()
    site["main_sections"] = main_sections
    site["default_language"] = default_lang

    for rel, page in pages.items():
        if page["kind"] == "page":
            local = sections[page["section"]]["local"]
            top = local.split("/")[0]
            typed = [f"{page['type']}/page.html"] if page["type"] else []
            template = page["template"] or pick(typed + [f"{local}/page.html", f"{top}/page.html", "page.html"])
            add_route(page["url"], {"kind": "page", "page": rel, "template": template}, rel)
    for name, info in sections.items():
        is_root = name == roots.get(info["lang"])
        if is_root:
            listed = [p["rel"] for p in regular if p["main"] and p["lang"] == info["lang"]]
            info["main_pages"] = listed
        else:
            listed = info["pages"]
        total = max(1, math.ceil(len(listed) / per_page))
        index = pages.get(info["index"]) if info["index"] else None
        local = info["local"]
        if index and index["template"]:
            template = index["template"]
        elif is_root:
            template = pick(["index.html", "section.html"])
        else:
            top = local.split("/")[0]
            typed = [f"{index['type']}/section.html"] if index and index["type"] else []
            template = pick(typed + [f"{local}/section.html", f"{top}/section.html", "section.html"])
        base = info["url"]
        info["total_pages"] = total
        for number in range(1, total + 1):
            url = base if number == 1 else f"{base}page/{number}/"
            add_route(url, {"kind": "section", "section": name, "number": number, "template": template},
                      info["index"] or f"content/{name}")

    terms: dict[str, dict[str, dict[str, Any]]] = {}
    for tax, lang in ((t, l) for l in languages for t in config.taxonomies):
        key = taxonomy_key(tax, lang, default_lang)
        prefix = "" if lang == default_lang else f"/{lang}"
        table: dict[str, dict[str, Any]] = {}
        for page in regular:
            if page["lang"] != lang:
                continue
            for term in page["terms"].get(tax, []):
                slug = slugify(term) or term
                entry = table.setdefault(slug, {"name": term, "slug": slug, "url": f"{prefix}/{tax}/{slug}/", "pages": []})
                entry["pages"].append(page["rel"])
        terms[key] = dict(sorted(table.items()))
        tax = key
        add_route(f"{prefix}/{key.rsplit('/', 1)[-1]}/", {"kind": "taxonomy", "taxonomy": key,
                                                          "template": pick(["taxonomy.html", "section.html"])}, SITE_FILE)
        for slug, entry in table.items():
            total = max(1, math.ceil(len(entry["pages"]) / per_page))
            entry["total_pages"] = total
            for number in range(1, total + 1):
                url = entry["url"] if number == 1 else f"{entry['url']}page/{number}/"
                add_route(url, {"kind": "term", "taxonomy": tax, "term": slug, "number": number,
                                "template": pick(["term.html", "section.html"])}, SITE_FILE)
    for lang in languages:
        prefix = "" if lang == default_lang else f"/{lang}"
        add_route(f"{prefix}/atom.xml", {"kind": "feed", "lang": lang} if config.languages else {"kind": "feed"}, SITE_FILE)
        add_route(f"{prefix}/sitemap.xml", {"kind": "sitemap", "lang": lang} if config.languages else {"kind": "sitemap"}, SITE_FILE)
    for rel, page in pages.items():
        for alias in page["aliases"]:
            target = alias if alias.endswith("/") or "." in alias.rsplit("/", 1)[-1] else alias + "/"
            if not target.startswith("/"):
                raise CompileError(f"alias {alias!r} must start with '/'", file=rel)
            add_route(target, {"kind": "alias", "target": page["url"]}, rel)

    worker_routes: list[dict[str, Any]] = []
    declared = _find_worker_routes(str(records[WORKER_FILE].data)) if WORKER_FILE in records else []
    if not any(found["path"] == SEARCH_INDEX for found in declared):
        add_route(SEARCH_INDEX, {"kind": "search"}, SITE_FILE)
    for found in declared:
        if found["dynamic"]:
            worker_routes.append(found)
        else:
            add_route(found["path"], found, WORKER_FILE)

    static = {}
    for rel, record in records.items():
        if rel.startswith("static/"):
            path = rel[len("static/"):]
            stem, dot, suffix = path.rpartition(".")
            static[path] = f"/static/{stem}.{record.hash[:8]}.{suffix}" if dot and "/" not in suffix else f"/static/{path}"
    data: dict[str, Any] = {}
    for rel, record in records.items():
        if rel.startswith("data/") and rel.endswith(DATA_SUFFIXES):
            if record.error is not None:
                errors[rel] = record.error
            else:
                data[Path(rel).stem] = {"file": rel, "value": record.data}
    inputs = {rel: r.hash for rel, r in records.items()}
    sri = {rel[len("static/"):]: r.sri for rel, r in records.items() if rel.startswith("static/")}
    # what compile derived from outside the inputs (dates from git or mtimes, the clock) is part of the version
    derived = [(rel, p["modified"]) for rel, p in sorted(pages.items())]
    version = digest(json.dumps([sorted(inputs.items()), drafts, next_publish, derived], separators=(",", ":")).encode())
    manifest = Manifest(
        version=version, site=site, sri=sri, pages=pages, sections=sections, terms=terms, routes=routes,
        worker_routes=worker_routes, inputs=inputs, templates=templates, data=data, static=static,
        errors=errors, next_publish=next_publish, config=config,
    )
    manifest.static_paths = {url: path for path, url in static.items()}
    return manifest


def compile_site(path: str | Path, *, include_drafts: bool | None = None) -> Manifest:
    """Compile a site folder once (for ``edgesite routes`` and tests)."""
    return Compiler(Site.open(path), include_drafts=include_drafts).compile()


