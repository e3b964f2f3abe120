"""The isolate runtime component: built once per set of inputs, compiled once, cached on disk.

Building (componentize-py: CPython + jinja2 + markdown-it-py + mdit-py-plugins + pygments +
the render core + ``runtime/guest/app.py``) takes about 10 s and compiling it with Cranelift
about 6 s, so both happen once: the compiled form (``Component.serialize``) is stored under the
cache dir and later starts load it in milliseconds (``Component.deserialize_file``).

Builds are not byte-reproducible, so the cache is keyed on a hash of the *inputs*: the WIT
files, the guest program, the render-core modules the guest imports, the versions of every tool
and library baked in, and the engine settings (a compiled component only loads into an engine
configured like the one that compiled it). Two processes building at once are safe: the build
runs under an exclusive file lock and the result is published with an atomic rename.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import wasmtime
from wasmtime.component import Component

from .errors import EdgesiteError

#: Bump when the layout of the cache or the way a key is computed changes.
CACHE_FORMAT = "1"
CACHE_ENV = "EDGESITE_RUNTIME_CACHE"
WIT_WORLD = "edgesite"
GUEST_MODULE = "app"
#: The distributions baked into the component (or building it); their versions key the cache.
PINNED = ("jinja2", "markupsafe", "markdown-it-py", "mdurl", "mdit-py-plugins", "pygments", "componentize-py", "wasmtime")

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
RUNTIME_DIR = REPO_DIR / "runtime"
WIT_DIR = RUNTIME_DIR / "wit"
GUEST_DIR = RUNTIME_DIR / "guest"
#: Modules of the guest's render core: these and every edgesite module they import.
CORE_ROOTS = ("render", "worker", "contract", "errors")


class RuntimeBuildError(EdgesiteError):
    """The runtime component could not be built (componentize-py failed, or a pure render-core
    module imports something that does not exist in the isolate)."""

    kind = "runtime-build"


@dataclass(frozen=True)
class EngineSettings:
    """How the wasmtime engine is configured; part of the cache key.

    ``epoch_interruption`` bounds each request's wall time (the isolate pool ticks the epoch);
    ``fuel`` counts instructions instead, for deterministic limits, at ~20% of speed.
    """

    epoch_interruption: bool = True
    fuel: bool = False


_engines: dict[EngineSettings, wasmtime.Engine] = {}
_settings_of: dict[int, EngineSettings] = {}
_loaded: dict[tuple[int, str], Component] = {}
_lock = threading.Lock()


def engine_for(settings: EngineSettings = EngineSettings()) -> wasmtime.Engine:
    """The process's one Engine for these settings (shared by every site's pool, so the compiled
    component and the epoch ticker are shared too)."""
    with _lock:
        engine = _engines.get(settings)
        if engine is None:
            engine = wasmtime.Engine(_config(settings))
            _engines[settings] = engine
            _settings_of[id(engine)] = settings
        return engine


def settings_of(engine: wasmtime.Engine) -> EngineSettings:
    """The settings ``engine`` was made with. Raises ValueError if it did not come from engine_for."""
    try:
        return _settings_of[id(engine)]
    except KeyError:
        raise ValueError("the engine must come from edgesite.component.engine_for()") from None


def default_cache_dir() -> Path:
    """``$EDGESITE_RUNTIME_CACHE``, else ``~/.cache/edgesite/runtime``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "edgesite" / "runtime"


def core_modules(core_dir: Path = REPO_DIR) -> list[Path]:
    """The edgesite modules the guest imports: CORE_ROOTS and what they import, transitively
    (read from the source, so host-only modules never enter the component or its key)."""
    package = core_dir / "edgesite"
    seen: dict[str, Path] = {}
    todo = [name for name in CORE_ROOTS]
    if (package / "__init__.py").is_file():
        todo.append("__init__")
    while todo:
        name = todo.pop()
        path = package / (name.replace(".", "/") + ".py")
        if not path.is_file():
            path = package / name.replace(".", "/") / "__init__.py"
        if name in seen or not path.is_file():
            continue
        seen[name] = path
        todo.extend(_imported_edgesite_modules(path, name))
    return sorted(seen.values())


def _imported_edgesite_modules(path: Path, module: str) -> list[str]:
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name.removeprefix("edgesite.") for a in node.names if a.name.startswith("edgesite.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                prefix = ".".join(parent + ([node.module] if node.module else []))
            elif node.module and (node.module == "edgesite" or node.module.startswith("edgesite.")):
                prefix = node.module.removeprefix("edgesite").lstrip(".")
            else:
                continue
            if prefix:
                found.append(prefix)
            found += [f"{prefix}.{a.name}" if prefix else a.name for a in node.names]
    return found


def runtime_key(settings: EngineSettings, core_dir: Path = REPO_DIR) -> str:
    """Hash of every input of the compiled component. Cheap (a few ms): read on every start."""
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    add("format", CACHE_FORMAT.encode())
    add("settings", repr(sorted(asdict(settings).items())).encode())
    for dist in PINNED:
        add(f"dist:{dist}", importlib.metadata.version(dist).encode())
    for path in sorted(WIT_DIR.rglob("*.wit")):
        add(f"wit:{path.relative_to(WIT_DIR)}", path.read_bytes())
    for path in sorted(GUEST_DIR.rglob("*.py")):
        add(f"guest:{path.relative_to(GUEST_DIR)}", path.read_bytes())
    for path in core_modules(core_dir):
        add(f"core:{path.relative_to(core_dir)}", path.read_bytes())
    return digest.hexdigest()[:32]


def load_component(
    engine: wasmtime.Engine,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    *,
    core_dir: Path = REPO_DIR,
) -> Component:
    """The compiled runtime component for ``engine``, building it first if it is not cached.

    Loading a cached component takes milliseconds; the first build takes 15–40 s and shows a
    spinner with elapsed seconds on stderr unless ``progress`` is false. Raises
    RuntimeBuildError if the build fails. ``core_dir`` is the folder holding the ``edgesite``
    package whose render core goes into the guest.
    """
    path = build_component(settings_of(engine), cache_dir, progress, core_dir=core_dir)
    with _lock:
        key = (id(engine), str(path))
        component = _loaded.get(key)
        if component is None:
            component = Component.deserialize_file(engine, str(path))
            _loaded[key] = component
        return component


def build_component(
    settings: EngineSettings = EngineSettings(),
    cache_dir: Path | str | None = None,
    progress: bool = True,
    *,
    core_dir: Path = REPO_DIR,
    force: bool = False,
) -> Path:
    """Build and compile the component unless the cache has it; return the compiled file's path.

    What ``edgesite runtime build`` runs. ``force`` rebuilds even when cached. Safe to call from
    several processes at once: one builds, the others wait for its lock and reuse the result.
    Raises RuntimeBuildError.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = runtime_key(settings, core_dir)
    target = cache / f"edgesite-runtime-{key}.cwasm"
    if target.is_file() and not force:
        return target
    with _file_lock(cache / f"edgesite-runtime-{key}.lock"):
        if target.is_file() and not force:
            return target  # another process built it while we waited
        with _Progress(progress) as status, tempfile.TemporaryDirectory(prefix="edgesite-build-") as tmp:
            work = Path(tmp)
            status.step("building the guest with componentize-py")
            wasm = _componentize(work, core_dir)
            status.step("compiling the component with Cranelift")
            engine = wasmtime.Engine(_config(settings))
            compiled = Component.from_file(engine, str(wasm)).serialize()
            partial = cache / f".{target.name}.{os.getpid()}.tmp"
            partial.write_bytes(compiled)
            os.replace(partial, target)
            status.done(f"isolate runtime built: {target} ({len(compiled) >> 20} MiB)")
        prune(cache)
    return target


def prune(cache: Path, keep: int = 4) -> list[Path]:
    """Delete all but the ``keep`` newest compiled components (~45 MB each; one is built per
    change of the render core). A process still using a deleted one keeps its mapping."""
    built = sorted(cache.glob("edgesite-runtime-*.cwasm"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in built[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()
            (cache / f"{old.stem}.lock").unlink(missing_ok=True)
            removed.append(old)
    return removed


def _config(settings: EngineSettings) -> wasmtime.Config:
    config = wasmtime.Config()
    config.epoch_interruption = settings.epoch_interruption
    config.consume_fuel = settings.fuel
    return config


def _componentize(work: Path, core_dir: Path) -> Path:
    """Stage the render core alone (so nothing host-only is importable) and run componentize-py."""
    staged = work / "core" / "edgesite"
    staged.mkdir(parents=True)
    for path in core_modules(core_dir):
        dest = staged / path.relative_to(core_dir / "edgesite")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    out = work / "edgesite-runtime.wasm"
    site_packages = sysconfig.get_paths()["purelib"]
    env = dict(os.environ, VIRTUAL_ENV=sys.prefix)
    env.pop("PYTHONPATH", None)
    cmd = [
        sys.executable, "-c",
        "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
        "-d", str(WIT_DIR), "-w", WIT_WORLD, "componentize", GUEST_MODULE,
        "-p", str(GUEST_DIR), "-p", str(work / "core"), "-p", site_packages,
        "-o", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise RuntimeBuildError(f"componentize-py failed (exit {proc.returncode}):\n{tail}", file=str(GUEST_DIR / "app.py"))
    return out


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Progress:
    """A rich spinner with elapsed seconds on stderr while the first build runs (or nothing)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: object = None
        self._task: object = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            progress = Progress(
                SpinnerColumn(), TextColumn("[bold]edgesite runtime[/] {task.description}"), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )  # fmt: skip
            progress.start()
            self._progress = progress
            self._task = progress.add_task("starting", total=None)
        return self

    def step(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"{description} (first start only)")  # type: ignore[attr-defined]

    def done(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"[green]✓[/] {message}")  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()  # type: ignore[attr-defined]
