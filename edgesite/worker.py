"""The API of a site's ``worker.py``: its own routes, template filters and template globals.

A site's worker.py runs only inside the site's isolate (or in-process with
``--isolation none``); the host never imports it, and finds its routes by reading the
``@route`` decorators' literal paths at compile time::

    from edgesite.worker import Response, route, template_filter

    @route("/search.json")
    def search(request, site):
        q = request.query.get("q", "").lower()
        return Response.json([p.url for p in site.pages if q in p.title.lower()])

    @template_filter("shout")
    def shout(text):
        return text.upper()

A route function takes ``(request, site)`` and returns a Response, a str (HTML) or a
dict/list (JSON). ``{name}`` segments in the path arrive in ``request.params``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    params: dict[str, str]


@dataclass(frozen=True)
class Response:
    body: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> "Response":
        return cls(json.dumps(data, ensure_ascii=False, separators=(",", ":")), status, headers or {},
                   "application/json")


@dataclass
class Registry:
    """What one load of a worker.py registered."""

    routes: dict[str, Callable[..., Any]] = field(default_factory=dict)
    filters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    globals: dict[str, Any] = field(default_factory=dict)


_active: list[Registry] = []


def _current() -> Registry:
    if not _active:
        raise RuntimeError("edgesite.worker decorators work only inside a site's worker.py")
    return _active[-1]


def route(path: str) -> Callable[[F], F]:
    """Declare a route of the site. ``path`` must be a string literal (compile reads it)."""
    def register(fn: F) -> F:
        _current().routes[fn.__name__] = fn
        return fn
    return register


def template_filter(name: str | None = None) -> Callable[[F], F]:
    def register(fn: F) -> F:
        _current().filters[name or fn.__name__] = fn
        return fn
    return register


def template_global(name: str | None = None) -> Callable[[F], F]:
    def register(fn: F) -> F:
        _current().globals[name or fn.__name__] = fn
        return fn
    return register


def load(source: str, filename: str = "worker.py") -> Registry:
    """Execute a worker.py's source and return what it registered. Raises what it raises."""
    registry = Registry()
    _active.append(registry)
    try:
        code = compile(source, filename, "exec")
        namespace: dict[str, Any] = {"__name__": "site_worker", "__file__": filename}
        exec(code, namespace)
    finally:
        _active.pop()
    return registry
