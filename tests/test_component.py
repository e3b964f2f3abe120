"""Building, caching and loading the runtime component (real builds, no mocks)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgesite.component import (
    EngineSettings, build_component, core_modules, default_cache_dir, engine_for, load_component, runtime_key,
)  # fmt: skip
from edgesite.contract import RenderRequest
from edgesite.errors import IsolateError
from edgesite.isolate import IsolatePool
from edgesite.routes import compile_site
from edgesite.site import IsolateLimits

REPO = Path(__file__).resolve().parent.parent
HOST_ONLY = {"starlette", "uvicorn", "diskcache", "wasmtime", "redis", "httpx", "watchfiles", "click", "rich", "brotli"}
WORKER_STDLIB = (
    "json re math datetime collections itertools functools html urllib.parse hashlib base64 random string "
    "textwrap unicodedata dataclasses typing bisect heapq statistics fractions decimal csv io "
    "encodings.idna encodings.unicode_escape"
).split()


def test_the_guest_core_is_the_render_module_and_what_it_imports() -> None:
    names = {path.name for path in core_modules()}
    assert {"render.py", "worker.py", "contract.py", "errors.py"} <= names
    assert not names & {"isolate.py", "component.py", "node.py", "cli.py", "cache.py", "invalidate.py"}


def test_the_guest_core_imports_nothing_host_only() -> None:
    for path in core_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            assert not {n.split(".")[0] for n in names} & HOST_ONLY, (path.name, names)


def test_the_cache_key_covers_the_engine_settings_and_is_stable() -> None:
    plain = runtime_key(EngineSettings())
    assert plain == runtime_key(EngineSettings())
    assert plain != runtime_key(EngineSettings(fuel=True))
    assert plain != runtime_key(EngineSettings(epoch_interruption=False))


def test_a_cached_component_is_loaded_without_rebuilding() -> None:
    path = build_component(EngineSettings(), progress=False)
    built = path.stat().st_mtime_ns
    assert path.parent == default_cache_dir()
    assert build_component(EngineSettings(), progress=False) == path
    assert path.stat().st_mtime_ns == built
    engine = engine_for()
    assert load_component(engine, progress=False) is load_component(engine, progress=False)


def test_an_engine_not_made_by_engine_for_is_refused() -> None:
    import wasmtime

    with pytest.raises(ValueError, match="engine_for"):
        load_component(wasmtime.Engine(), progress=False)


def make_site(root: Path, worker: str) -> tuple[Path, Path]:
    (root / "content").mkdir(parents=True)
    (root / "site.toml").write_text('title = "T"\n')
    (root / "worker.py").write_text(worker)
    manifest = compile_site(root)
    manifest.write(root.parent / "versions")
    return root, root.parent / "versions"


def render(pool: IsolatePool, root: Path, url: str) -> str:
    manifest = compile_site(root)
    req = RenderRequest("GET", url, [], json.dumps(manifest.match(url)), manifest.version)
    return pool.render(req).body


def test_the_stdlib_a_worker_may_use_is_in_the_snapshot(tmp_path: Path) -> None:
    worker = (
        "import importlib\nfrom edgesite.worker import route\n\n"
        f"@route('/mods')\ndef mods(request, site):\n"
        f"    return {{name: importlib.import_module(name).__name__ for name in {WORKER_STDLIB!r}}}\n"
    )
    root, versions = make_site(tmp_path / "s", worker)
    engine = engine_for()
    pool = IsolatePool("s", root, versions, IsolateLimits(), load_component(engine, progress=False), engine)
    assert json.loads(render(pool, root, "/mods")) == {name: name for name in WORKER_STDLIB}


BUILD = """
import sys
from pathlib import Path
from edgesite.component import EngineSettings, build_component
print(build_component(EngineSettings(fuel=True), Path(sys.argv[1]), progress=False))
"""


def test_two_processes_building_at_once_share_one_build_and_fuel_limits_work(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(cache)], cwd=REPO, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=600)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1]
    assert [p.name for p in cache.glob("*.cwasm")] == [Path(outs[0]).name]
    assert not list(cache.glob(".*.tmp"))

    root, versions = make_site(tmp_path / "s", "from edgesite.worker import route\n\n@route('/loop')\ndef loop(request, site):\n    while True:\n        pass\n\n@route('/ok')\ndef ok(request, site):\n    return 'ok'\n")
    engine = engine_for(EngineSettings(fuel=True))
    component = load_component(engine, cache, progress=False)
    pool = IsolatePool("s", root, versions, IsolateLimits(timeout_ms=60_000), component, engine, fuel=2_000_000_000)
    with pytest.raises(IsolateError) as info:
        render(pool, root, "/loop")
    assert info.value.cause == "timeout"
    assert render(pool, root, "/ok") == "ok"


def test_only_the_newest_compiled_components_are_kept(tmp_path: Path) -> None:
    import os

    from edgesite.component import prune

    for i in range(6):
        built = tmp_path / f"edgesite-runtime-{i:032x}.cwasm"
        built.write_bytes(b"x")
        (tmp_path / f"edgesite-runtime-{i:032x}.lock").write_bytes(b"")
        os.utime(built, (1000 + i, 1000 + i))
    removed = prune(tmp_path, keep=4)
    assert sorted(p.name for p in removed) == [f"edgesite-runtime-{i:032x}.cwasm" for i in (0, 1)]
    assert sorted(p.name for p in tmp_path.glob("*.cwasm")) == [f"edgesite-runtime-{i:032x}.cwasm" for i in (2, 3, 4, 5)]
    assert not (tmp_path / f"edgesite-runtime-{0:032x}.lock").exists()
