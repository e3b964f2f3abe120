"""The Jinja2 environment of a site: autoescaped, strict about undefined names, and recording
every template a render loads (extended, included, imported, shortcodes) as a dependency.

Templates are loaded from ``templates/`` under the site root; a template is reloaded when its
hash in the current manifest changes. Template errors become RenderError with the template's
file and line. Pure: runs in the isolate.
"""

from __future__ import annotations

import datetime as dt
import os
import traceback
from collections.abc import Callable, MutableMapping
from typing import Any

import jinja2
import jinja2.debug  # noqa: F401  (loaded lazily by jinja on errors; the isolate must hold it)
import jinja2.ext  # noqa: F401
from jinja2 import Environment, StrictUndefined, TemplateNotFound, TemplateSyntaxError, UndefinedError

from markupsafe import Markup

from . import deps
from .markdown import render_markdown
from .errors import RenderError

TEMPLATE_DIR = "templates"
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def format_date(value: dt.datetime | dt.date | str | None, fmt: str = "%Y-%m-%d") -> str:
    """strftime with ``%-d``/``%-m`` and English names, the same on every platform (the
    isolate's libc has no locale and no ``%-d``), so both render paths give identical bytes."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    codes = {
        "Y": f"{value.year:04d}", "y": f"{value.year % 100:02d}", "m": f"{value.month:02d}",
        "-m": str(value.month), "d": f"{value.day:02d}", "-d": str(value.day), "e": f"{value.day:2d}",
        "B": _MONTHS[value.month - 1], "b": _MONTHS[value.month - 1][:3], "A": _DAYS[value.weekday()],
        "a": _DAYS[value.weekday()][:3], "H": f"{value.hour:02d}", "M": f"{value.minute:02d}",
        "S": f"{value.second:02d}", "j": f"{value.timetuple().tm_yday:03d}", "%": "%",
        "Z": "UTC" if value.utcoffset() == dt.timedelta(0) else (value.tzname() or ""),
        "z": value.strftime("%z"), "F": value.strftime("%Y-%m-%d"),
    }
    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            key = fmt[i + 1: i + 3] if fmt[i + 1] == "-" else fmt[i + 1]
            if key in codes:
                out.append(codes[key])
                i += 1 + len(key)
                continue
        out.append(ch)
        i += 1
    return "".join(out)


class SiteLoader(jinja2.BaseLoader):
    """Loads ``templates/<name>``; up to date while its hash in the manifest is unchanged."""

    def __init__(self, site_root: str, hashes: Callable[[], dict[str, str]]) -> None:
        self.site_root = site_root
        self.hashes = hashes

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        rel = f"{TEMPLATE_DIR}/{template}"
        if ".." in template.split("/") or template.startswith("/") or "\\" in template:
            raise TemplateNotFound(template)
        known = self.hashes().get(rel)
        if known is None:
            raise TemplateNotFound(template)
        try:
            with open(os.path.join(self.site_root, rel), encoding="utf-8") as fh:
                source = fh.read()
        except OSError:
            raise TemplateNotFound(template) from None
        return source, rel, lambda: self.hashes().get(rel) == known


class TrackingEnvironment(Environment):
    """Records ``file:templates/<name>`` for every template a render asks for, cached or not:
    jinja calls ``_load_template`` for each extends, include, import and get_template."""

    def _load_template(self, name: str, globals: MutableMapping[str, Any] | None) -> jinja2.Template:
        deps.record(f"file:{TEMPLATE_DIR}/{name}")
        return super()._load_template(name, globals)


def make_environment(site_root: str, hashes: Callable[[], dict[str, str]]) -> Environment:
    env = TrackingEnvironment(
        loader=SiteLoader(site_root, hashes),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        auto_reload=True,
        cache_size=1000,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
    )
    env.filters["date"] = format_date
    env.filters["markdown"] = lambda text: Markup(render_markdown(str(text)).html)
    return env


def template_frame(exc: BaseException) -> tuple[str, int]:
    """The innermost template file and line in an exception's traceback ('' , 0 if none)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(f"{TEMPLATE_DIR}/"):
            return frame.filename, frame.lineno or 0
    return "", 0


def as_render_error(exc: Exception, fallback_file: str = "") -> RenderError:
    """Turn an exception raised while rendering a template into a RenderError with file/line."""
    if isinstance(exc, RenderError):
        return exc
    if isinstance(exc, TemplateSyntaxError):
        return RenderError(f"template syntax error: {exc.message}", kind="template-syntax",
                           file=exc.filename or exc.name or fallback_file, line=exc.lineno)
    file, line = template_frame(exc)
    if isinstance(exc, TemplateNotFound):
        return RenderError(f"template '{exc.name}' not found in {TEMPLATE_DIR}/", kind="template-missing",
                           file=file or fallback_file, line=line)
    if isinstance(exc, UndefinedError):
        return RenderError(f"undefined variable: {exc.message}", kind="undefined", file=file or fallback_file, line=line)
    return RenderError(f"{type(exc).__name__}: {exc}", kind="exception", file=file or fallback_file, line=line)
