"""Records that cross the host/isolate boundary.

These mirror the WIT world in ``runtime/wit/edgesite.wit`` (package ``edgesite:runtime@0.1.0``);
``tests/test_contract.py`` checks that the two agree. Keep them small and flat: wasmtime-py
converts every field in Python, so each one costs time on every call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

WIT_PACKAGE = "edgesite:runtime@0.1.0"


@dataclass(frozen=True)
class RenderRequest:
    """WIT ``request``: what the host asks an isolate to render.

    ``route`` is the matched route as JSON (kind, template, parameters); ``version`` names the
    deployed version whose manifest the render must use.
    """

    method: str
    url: str
    headers: list[tuple[str, str]]
    route: str
    version: str

    def route_dict(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.route)
        return value


@dataclass(frozen=True)
class RenderResponse:
    """WIT ``response``: status, headers, body (a string: bytes cost ~3 µs each to cross) and
    the dependency tags of every input the render read."""

    status: int
    headers: list[tuple[str, str]]
    body: str
    inputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GuestError:
    """WIT ``guest-error``: a render that failed inside the render core, never a trap."""

    kind: str
    message: str
    file: str
    line: int
