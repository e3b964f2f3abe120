"""The Python records of edgesite/contract.py agree with the WIT world they mirror."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from edgesite.contract import WIT_PACKAGE, GuestError, RenderRequest, RenderResponse

WIT = (Path(__file__).resolve().parent.parent / "runtime" / "wit" / "edgesite.wit").read_text(encoding="utf-8")
PY_TYPES = {"string": "str", "u16": "int", "u32": "int", "list<tuple<string, string>>": "list[tuple[str, str]]",
            "list<string>": "list[str]"}  # fmt: skip


def wit_records(text: str) -> dict[str, list[tuple[str, str]]]:
    """record name -> [(field, WIT type)], read from the .wit text (comments dropped)."""
    text = re.sub(r"//[^\n]*", "", text)
    records = {}
    for name, body in re.findall(r"record\s+([\w-]+)\s*\{(.*?)\}", text, re.S):
        records[name] = [(field.strip(), kind.strip()) for field, _, kind in (p.partition(":") for p in split_top(body))]
    return records


def split_top(body: str) -> list[str]:
    """Split on the commas that are not inside <...>."""
    parts, depth, current = [], 0, ""
    for char in body:
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in (*parts, current) if p.strip()]


def test_the_wit_package_is_the_one_contract_py_names() -> None:
    assert re.search(r"^package\s+([\w:.@-]+);", WIT, re.M).group(1) == WIT_PACKAGE  # type: ignore[union-attr]


def test_each_record_has_the_fields_of_its_wit_record_in_order() -> None:
    records = wit_records(WIT)
    for wit_name, cls in (("request", RenderRequest), ("response", RenderResponse), ("guest-error", GuestError)):
        wit_fields = [(name.replace("-", "_"), PY_TYPES[kind]) for name, kind in records[wit_name]]
        py_fields = [(f.name, str(f.type)) for f in dataclasses.fields(cls)]
        assert py_fields == wit_fields, wit_name


def test_the_export_takes_a_request_and_returns_a_response_or_a_guest_error() -> None:
    assert re.search(r"handle:\s*func\(req:\s*request\)\s*->\s*result<response,\s*guest-error>;", WIT)
