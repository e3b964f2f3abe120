"""The host side of isolates: a bounded pool of WebAssembly instances per site, with limits.

Each isolate is one wasmtime Store + instance of the runtime component (``edgesite.component``)
that sees only its site's folder at ``/site`` and the site's deployed versions at
``/versions``, both read-only; it has no network, no environment and no host stdio (its output
goes to the ``edgesite.isolate`` logger). Limits, like a Workers isolate: linear memory
(``Store.set_limits``) and wall time per request (epoch interruption, one ticker thread per
engine), optionally fuel. A trap kills a Store for good, so a trapped isolate is discarded and
the next request gets a fresh one (about 2 ms). ``InlinePool`` is the same interface running the
render core in-process: ``--isolation none`` and the reference both paths must match byte for byte.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import wasmtime
from wasmtime.component import Component, Func, Linker

from .contract import WIT_PACKAGE, RenderRequest, RenderResponse
from .errors import IsolateError, RenderError
from .render import Renderer
from .site import IsolateLimits

log = logging.getLogger("edgesite.isolate")

#: How often the engine's epoch advances; a request's time limit is counted in these ticks.
TICK_MS = 10
SITE_GUEST_PATH = "/site"
VERSIONS_GUEST_PATH = "/versions"
_PACKAGE, _, _VERSION = WIT_PACKAGE.partition("@")
#: The exported interface, e.g. ``edgesite:runtime/render@0.1.0``.
EXPORT_INTERFACE = f"{_PACKAGE}/render@{_VERSION}"
EXPORT_FUNC = "handle"


class Pool(Protocol):
    """What the node needs from a site's renderer, isolated or not."""

    def render(self, req: RenderRequest) -> RenderResponse: ...
    def recycle_all(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class _Ticker:
    """One daemon thread per engine that advances its epoch every TICK_MS."""

    _tickers: "weakref.WeakValueDictionary[int, _Ticker]" = weakref.WeakValueDictionary()
    _lock = threading.Lock()

    def __init__(self, engine: wasmtime.Engine) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(engine, self._stop), name="edgesite-epoch", daemon=True)
        self._thread.start()

    @staticmethod
    def _run(engine: wasmtime.Engine, stop: threading.Event) -> None:
        while not stop.wait(TICK_MS / 1000):
            engine.increment_epoch()

    def __del__(self) -> None:
        self._stop.set()

    @classmethod
    def for_engine(cls, engine: wasmtime.Engine) -> "_Ticker":
        with cls._lock:
            ticker = cls._tickers.get(id(engine))
            if ticker is None:
                ticker = cls(engine)
                cls._tickers[id(engine)] = ticker
            return ticker


@dataclass
class _Isolate:
    store: wasmtime.Store
    handle: Func
    generation: int
    renders: int = 0


def _trap_cause(error: Exception) -> str:
    """Which limit a trap hit, read from wasmtime's message (wasmtime-py raises a bare
    WasmtimeError whose text ends with the reason)."""
    text = str(error)
    if "interrupt" in text or "all fuel consumed" in text:
        return "timeout"
    if "memory" in text and ("limit" in text or "grow" in text or "out of" in text):
        return "memory"
    return "trap"


class IsolatePool:
    """A site's isolates on this node: at most ``limits.pool_size`` live at once.

    ``render`` is blocking and thread-safe: call it from worker threads (``asyncio.to_thread``),
    never on the event loop. Isolates are created on demand, reused, recycled after
    ``limits.max_requests`` renders and by ``recycle_all`` (a new site version), and discarded
    after a trap. ``fuel``, if given, also bounds each request to that many fuel units (the
    engine must be made with ``EngineSettings(fuel=True)``).
    """

    def __init__(
        self,
        site_name: str,
        site_root: Path,
        versions_root: Path,
        limits: IsolateLimits,
        component: Component,
        engine: wasmtime.Engine,
        *,
        fuel: int | None = None,
    ) -> None:
        self.site_name = site_name
        self.site_root = Path(site_root).resolve()
        self.versions_root = Path(versions_root).resolve()
        self.limits = limits
        self.fuel = fuel
        self._component = component
        self._engine = engine
        self._ticker = _Ticker.for_engine(engine) if limits.timeout_ms > 0 else None
        self._deadline_ticks = max(1, -(-limits.timeout_ms // TICK_MS)) + 1
        self._linker = Linker(engine)
        self._linker.add_wasip2()
        iface = component.get_export_index(EXPORT_INTERFACE)
        func = component.get_export_index(EXPORT_FUNC, iface) if iface is not None else None
        if func is None:
            raise IsolateError(f"the runtime component does not export {EXPORT_INTERFACE}#{EXPORT_FUNC}", cause="trap", site=site_name)
        self._func_index = func
        self._cond = threading.Condition()
        self._idle: list[_Isolate] = []
        self._live = 0
        self._generation = 0
        self._closed = False
        self._counts = {"renders": 0, "errors": 0, "traps": 0, "timeouts": 0, "memory": 0, "recycles": 0,
                        "busy_waits": 0, "busy": 0, "started": 0}  # fmt: skip

    # -- isolates --------------------------------------------------------------------------

    def _output(self, stream: str) -> Any:
        def write(data: bytes) -> None:
            log.info("%s isolate %s: %s", self.site_name, stream, data.decode("utf-8", "replace").rstrip())

        return write

    def _start(self, generation: int) -> _Isolate:
        """A fresh isolate: new Store, WASI with only the two read-only preopens, limits, instance."""
        store = wasmtime.Store(self._engine)
        wasi = wasmtime.WasiConfig()
        wasi.preopen_dir(str(self.site_root), SITE_GUEST_PATH, fs_mutable=False)
        wasi.preopen_dir(str(self.versions_root), VERSIONS_GUEST_PATH, fs_mutable=False)
        wasi.stdout_custom = self._output("stdout")
        wasi.stderr_custom = self._output("stderr")
        store.set_wasi(wasi)
        store.set_limits(memory_size=self.limits.memory_mb << 20)
        self._arm(store)
        try:
            instance = self._linker.instantiate(store, self._component)
        except wasmtime.WasmtimeError as exc:
            raise IsolateError(f"isolate failed to start: {exc}", cause=_trap_cause(exc), site=self.site_name) from None
        handle = instance.get_func(store, self._func_index)
        assert handle is not None
        with self._cond:
            self._counts["started"] += 1
        return _Isolate(store=store, handle=handle, generation=generation)

    def _arm(self, store: wasmtime.Store) -> None:
        if self._ticker is not None:
            store.set_epoch_deadline(self._deadline_ticks)
        if self.fuel is not None:
            store.set_fuel(self.fuel)

    def _acquire(self) -> _Isolate | None:
        """An idle isolate, or None with a slot reserved for a new one. Raises IsolateError
        ("busy") after waiting ``queue_timeout_ms`` for a free slot."""
        with self._cond:
            if self._closed:
                raise IsolateError("the isolate pool is closed", cause="busy", site=self.site_name)
            deadline = time.monotonic() + self.limits.queue_timeout_ms / 1000
            waited = False
            while True:
                while self._idle:
                    iso = self._idle.pop()
                    if iso.generation == self._generation:
                        return iso
                    self._live -= 1
                    self._counts["recycles"] += 1
                if self._live < self.limits.pool_size:
                    self._live += 1
                    return None
                if not waited:
                    waited = True
                    self._counts["busy_waits"] += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    self._counts["busy"] += 1
                    raise IsolateError(
                        f"all {self.limits.pool_size} isolates of {self.site_name} stayed busy for "
                        f"{self.limits.queue_timeout_ms} ms", cause="busy", site=self.site_name,
                    )  # fmt: skip
                self._cond.wait(remaining)

    def _release(self, iso: _Isolate | None, *, keep: bool) -> None:
        with self._cond:
            if iso is not None and keep and not self._closed:
                if iso.generation == self._generation and iso.renders < self.limits.max_requests:
                    self._idle.append(iso)
                    self._cond.notify()
                    return
                self._counts["recycles"] += 1
            self._live -= 1
            self._cond.notify()

    # -- the public interface --------------------------------------------------------------

    def render(self, req: RenderRequest) -> RenderResponse:
        """Render ``req`` in one of the site's isolates.

        Raises RenderError for a failure inside the render core (template, worker exception),
        with its file and line; IsolateError with cause "timeout", "memory" or "trap" when the
        isolate failed (it is discarded); IsolateError "busy" when no isolate freed up in time.
        """
        iso = self._acquire()
        keep = False
        try:
            if iso is None:
                iso = self._start(self._generation)
            self._arm(iso.store)
            try:
                result = iso.handle(iso.store, req)
            except wasmtime.WasmtimeError as exc:
                raise self._trapped(exc) from None
            iso.renders += 1
            keep = True
            with self._cond:
                self._counts["renders"] += 1
            if result.tag == "ok":
                out = result.payload
                return RenderResponse(status=out.status, headers=[tuple(h) for h in out.headers], body=out.body, inputs=list(out.inputs))
            err = result.payload
            if err.kind == "memory":
                keep = False  # its heap stays at the limit: start the next request afresh
                with self._cond:
                    self._counts["memory"] += 1
                raise IsolateError(f"{self.site_name}: the render hit the isolate's memory limit ({self.limits.memory_mb} MiB)",
                                   cause="memory", site=self.site_name)  # fmt: skip
            with self._cond:
                self._counts["errors"] += 1
            raise RenderError(err.message, kind=err.kind, file=err.file, line=err.line)
        finally:
            self._release(iso, keep=keep)

    def _trapped(self, exc: wasmtime.WasmtimeError) -> IsolateError:
        cause = _trap_cause(exc)
        with self._cond:
            self._counts["traps"] += 1
            if cause == "timeout":
                self._counts["timeouts"] += 1
            elif cause == "memory":
                self._counts["memory"] += 1
        reason = {
            "timeout": f"the render ran past its time limit ({self.limits.timeout_ms} ms)",
            "memory": f"the render hit the isolate's memory limit ({self.limits.memory_mb} MiB)",
            "trap": "the isolate trapped",
        }[cause]
        if "all fuel consumed" in str(exc):
            reason = f"the render used up its fuel ({self.fuel})"
        detail = str(exc).strip().splitlines()
        log.warning("%s: %s; isolate discarded (%s)", self.site_name, reason, detail[-1] if detail else "")
        return IsolateError(f"{self.site_name}: {reason}", cause=cause, site=self.site_name)

    def recycle_all(self) -> None:
        """Retire every isolate (a new site version): idle ones now, busy ones when their
        render finishes; later requests get fresh isolates."""
        with self._cond:
            self._generation += 1
            self._counts["recycles"] += len(self._idle)
            self._live -= len(self._idle)
            self._idle.clear()
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        """Counters for ``/_edgesite/status``: live isolates and what happened to them."""
        with self._cond:
            return {"mode": "wasm", "live": self._live, "idle": len(self._idle), "pool_size": self.limits.pool_size,
                    **self._counts}  # fmt: skip

    def close(self) -> None:
        """Drop idle isolates and refuse new renders."""
        with self._cond:
            self._closed = True
            self._live -= len(self._idle)
            self._idle.clear()
            self._cond.notify_all()


class InlinePool:
    """The render core in-process (``--isolation none``): same interface and errors, no limits.

    The reference path: the isolate must produce the same bytes. Renders are serialised by a
    lock (the render core keeps per-site state); ``recycle_all`` starts a fresh Renderer.
    """

    def __init__(self, site_name: str, site_root: Path, versions_root: Path, limits: IsolateLimits | None = None) -> None:
        self.site_name = site_name
        self.site_root = Path(site_root).resolve()
        self.versions_root = Path(versions_root).resolve()
        self.limits = limits or IsolateLimits()
        self._lock = threading.Lock()
        self._renderer = self._new()
        self._counts = {"renders": 0, "errors": 0, "recycles": 0}

    def _new(self) -> Renderer:
        return Renderer(site_root=str(self.site_root), versions_root=str(self.versions_root))

    def render(self, req: RenderRequest) -> RenderResponse:
        """Render ``req`` in-process. Raises RenderError, as the isolate does."""
        with self._lock:
            try:
                resp = self._renderer.handle(req)
            except RenderError:
                self._counts["errors"] += 1
                raise
            except Exception as exc:
                self._counts["errors"] += 1
                file, line = _site_frame(exc, str(self.site_root))
                raise RenderError(f"{type(exc).__name__}: {exc}", kind="exception", file=file, line=line) from None
            self._counts["renders"] += 1
            return resp

    def recycle_all(self) -> None:
        with self._lock:
            self._renderer = self._new()
            self._counts["recycles"] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"mode": "none", "live": 1, **self._counts}

    def close(self) -> None:
        pass


def _site_frame(exc: BaseException, site_root: str) -> tuple[str, int]:
    """The innermost traceback frame in the site's own files (as the guest reports it)."""
    file, line = "", 0
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if name.startswith(site_root + "/"):
            file, line = name[len(site_root) + 1 :], frame.lineno or 0
        elif name == "worker.py":
            file, line = name, frame.lineno or 0
    return file, line
