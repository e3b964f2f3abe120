"""Isolate benchmarks: cold start, warm render vs in-process, memory per isolate, miss throughput.

Run: ``python benchmarks/bench_isolate.py [SITE]`` (default ``sites/docs``). Every figure is
measured in this one run, on the same pages, so the ratios compare like with like. The first
run builds the runtime component (15–40 s); later runs load it from the cache.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from edgesite.component import engine_for, load_component
from edgesite.contract import RenderRequest
from edgesite.errors import EdgesiteError
from edgesite.isolate import InlinePool, IsolatePool
from edgesite.routes import Manifest, compile_site
from edgesite.site import IsolateLimits

ROOT = Path(__file__).resolve().parent.parent


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def requests_for(manifest: Manifest) -> list[RenderRequest]:
    return [RenderRequest("GET", url, [], json.dumps(route), manifest.version)
            for url, route in sorted(manifest.routes.items()) if route["kind"] != "worker"]  # fmt: skip


def renderable(pool: InlinePool, reqs: list[RenderRequest]) -> list[RenderRequest]:
    ok = []
    for req in reqs:
        try:
            pool.render(req)
            ok.append(req)
        except EdgesiteError:
            pass
    return ok


def throughput(pool: IsolatePool | InlinePool, reqs: list[RenderRequest], threads: int, seconds: float = 3.0) -> float:
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            pool.render(reqs[(i + n * threads) % len(reqs)])
            n += 1
        done[i] = n

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


def main() -> None:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "sites" / "docs").resolve()
    manifest = compile_site(site)
    versions = Path(tempfile.mkdtemp(prefix="edgesite-bench-"))
    manifest.write(versions)
    engine = engine_for()
    t0 = time.perf_counter()
    component = load_component(engine)
    load_ms = (time.perf_counter() - t0) * 1000
    inline = InlinePool(site.name, site, versions)
    reqs = renderable(inline, requests_for(manifest))
    page = next((r for r in reqs if json.loads(r.route)["kind"] == "page"), reqs[0])
    rows: list[tuple[str, str]] = [("site", f"{site.name}: {len(reqs)} pages"), ("load cached component", f"{load_ms:.1f} ms")]

    # cold start: a new instance (Store + instantiate) and its first response
    pool = IsolatePool(site.name, site, versions, IsolateLimits(pool_size=1), component, engine)
    starts, firsts = [], []
    for _ in range(50):
        pool.recycle_all()
        t0 = time.perf_counter()
        iso = pool._start(pool._generation)  # instantiation alone
        starts.append((time.perf_counter() - t0) * 1000)
        del iso
        pool.recycle_all()
        t0 = time.perf_counter()
        pool.render(page)
        firsts.append((time.perf_counter() - t0) * 1000)
    rows += [("new instance (Store + instantiate)", f"median {statistics.median(starts):.2f} ms, p99 {pct(starts, .99):.2f} ms"),
             ("cold start: new instance to first response", f"median {statistics.median(firsts):.1f} ms, p99 {pct(firsts, .99):.1f} ms")]

    # warm renders: same pages, isolate vs in-process
    for req in reqs:
        pool.render(req)
    iso_ms, inl_ms = [], []
    for _ in range(5):
        for req in reqs:
            t0 = time.perf_counter()
            pool.render(req)
            iso_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            inline.render(req)
            inl_ms.append((time.perf_counter() - t0) * 1000)
    iso_med, inl_med = statistics.median(iso_ms), statistics.median(inl_ms)
    rows.append(("warm render, median per page", f"isolate {iso_med:.2f} ms, in-process {inl_med:.2f} ms: {iso_med / inl_med:.2f}x"))
    pool.close()

    # resident memory per live isolate (each has rendered every page once)
    count = 8
    before = rss_bytes()
    pools = [IsolatePool(site.name, site, versions, IsolateLimits(pool_size=1), component, engine) for _ in range(count)]
    for p in pools:
        for req in reqs:
            p.render(req)
    per = (rss_bytes() - before) / count / (1 << 20)
    rows.append(("resident memory per live isolate", f"{per:.1f} MiB ({count} isolates; limit 128 MiB each)"))
    for p in pools:
        p.close()
    del pools

    # miss throughput: every request renders (no cache)
    iso2 = IsolatePool(site.name, site, versions, IsolateLimits(pool_size=2), component, engine)
    for req in reqs[:4]:
        iso2.render(req)
    one = throughput(iso2, reqs, 1)
    two = throughput(iso2, reqs, 2)
    ref = throughput(inline, reqs, 1)
    rows.append(("miss throughput, isolates", f"1 thread {one:.0f}/s, 2 threads {two:.0f}/s: {two / one:.2f}x"))
    rows.append(("miss throughput, in-process", f"1 thread {ref:.0f}/s (isolate 1 thread = {one / ref:.2f}x)"))

    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure'.ljust(width)}  result\n{'-' * width}  {'-' * 50}")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
