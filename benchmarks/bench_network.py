"""The edge network: edit-to-fresh latency and purge-API latency for 1, 3 and 8 node processes,
with a full Hugo build of the same corpus in the same run as the anchor.

    python benchmarks/bench_network.py                       # 10,000 pages, 1/3/8 nodes, embedded bus
    python benchmarks/bench_network.py --pages 1000 --edits 10 --nodes 1,3
    python benchmarks/bench_network.py --bus redis           # starts its own redis-server

edit-to-fresh: a page is warmed (cached) on every node, then its Markdown file is saved with a
new marker; the clock runs from just before the save to the moment the *last* node serves the
marker (each node polled directly, every 5 ms x the number of nodes, so that
the poller takes little of the 2 cores). The path measured is the real one: the control
plane's watcher recompiles, packages the one changed blob, appends a version to the log; each
node fetches the blob, materialises the new bundle, switches and purges.
purge-API: ``POST /_edgesite/purge`` of one URL on the control plane, timed at the client; it
returns once every node has applied it. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

from network_support import Network, RedisServer, wait_until  # noqa: E402


def corpus(pages: int, fmt: str) -> Path:
    folder = HERE / "corpus" / (f"c{pages}" + ("-hugo" if fmt == "hugo" else ""))
    if not folder.is_dir():
        subprocess.run([sys.executable, str(HERE / "corpus.py"), "--pages", str(pages), "--format", fmt, "--out", str(folder)], check=True)
    return folder


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def edit_to_fresh(net: Network, site: Path, rel: str, url: str, marker: str) -> float:
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(client.get(n + url) for n in net.node_urls))  # warm: cached everywhere
        path = site / rel
        text = path.read_text()
        started = time.perf_counter()
        path.write_text(text + f"\n\n{marker}\n")

        interval = 0.005 * len(net.node_urls)  # ~200 polls/s in all: the poller must not starve 2 cores

        async def fresh(node: str) -> float:
            for _ in range(int(60 / interval)):  # bounded: 60 s
                if marker in (await client.get(node + url)).text:
                    return time.perf_counter() - started
                await asyncio.sleep(interval)
            raise AssertionError(f"{node}{url} never showed {marker}")

        return max(await asyncio.gather(*(fresh(n) for n in net.node_urls))) * 1000


def run_nodes(site: Path, work: Path, nodes: int, edits: int, purges: int, bus: str | None, pages: list[tuple[str, str]]) -> dict[str, Any]:
    started = time.perf_counter()
    net = Network(site, work / f"state-{nodes}", nodes, bus=bus, watch=True)
    ready_s = time.perf_counter() - started
    try:
        samples = []
        for i in range(edits):
            rel, url = pages[i % len(pages)]
            samples.append(asyncio.run(edit_to_fresh(net, site, rel, url, f"edit-{nodes}-{i}-{time.time_ns()}")))
            wait_until(lambda: len({n["seq"] for n in net.status()["nodes"]}) == 1, 30, "every node at one seq")
        purge_ms = []
        for i in range(purges):
            rel, url = pages[i % len(pages)]
            t0 = time.perf_counter()
            answer = net.purge(urls=[url])
            purge_ms.append((time.perf_counter() - t0) * 1000)
            assert len(answer["nodes"]) == nodes, answer
        return {"nodes": nodes, "ready_s": round(ready_s, 1), "edits": len(samples),
                "edit_p50_ms": round(pct(samples, 50), 1), "edit_p99_ms": round(pct(samples, 99), 1),
                "edit_max_ms": round(max(samples), 1), "purge_p50_ms": round(pct(purge_ms, 50), 2),
                "purge_p99_ms": round(pct(purge_ms, 99), 2)}
    finally:
        net.close()


def hugo_build(pages: int, work: Path) -> float | None:
    hugo = shutil.which("hugo")
    if hugo is None:
        return None
    src = work / "hugo"
    shutil.copytree(corpus(pages, "hugo"), src)
    t0 = time.perf_counter()
    subprocess.run([hugo, "--quiet", "-s", str(src), "-d", str(work / "hugo-out")], check=True, capture_output=True)
    return round(time.perf_counter() - t0, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10000)
    parser.add_argument("--nodes", default="1,3,8")
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--purges", type=int, default=100)
    parser.add_argument("--bus", choices=("embedded", "redis"), default="embedded")
    parser.add_argument("--skip-hugo", action="store_true")
    args = parser.parse_args()
    from edgesite.routes import compile_site

    with tempfile.TemporaryDirectory(prefix="bench-network-") as tmp:
        work = Path(tmp)
        site = work / "site"
        shutil.copytree(corpus(args.pages, "edgesite"), site)
        manifest = compile_site(site)
        pages = sorted((rel, page["url"]) for rel, page in manifest.pages.items() if rel.count("/") >= 2 and not rel.endswith("_index.md"))[:: max(1, args.pages // 50)]
        redis = RedisServer(work / "redis") if args.bus == "redis" else None
        rows = []
        try:
            for n in [int(x) for x in args.nodes.split(",")]:
                row = run_nodes(site, work, n, args.edits, args.purges, redis.url if redis else None, pages)
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            if redis:
                redis.stop()
        hugo_s = None if args.skip_hugo else hugo_build(args.pages, work)
    print(f"\n{args.pages} pages, {args.bus} bus, isolation none, {args.edits} edits and {args.purges} purges per row")
    print(f"{'nodes':>5} {'ready s':>8} {'edit p50 ms':>12} {'edit p99 ms':>12} {'purge p50 ms':>13} {'purge p99 ms':>13}")
    for r in rows:
        print(f"{r['nodes']:>5} {r['ready_s']:>8} {r['edit_p50_ms']:>12} {r['edit_p99_ms']:>12} {r['purge_p50_ms']:>13} {r['purge_p99_ms']:>13}")
    print(f"Hugo full build of the same corpus: {hugo_s} s" if hugo_s is not None else "Hugo: skipped or not installed")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"network-{args.pages}-{args.bus}.json").write_text(json.dumps({"rows": rows, "hugo_s": hugo_s}, indent=2))


if __name__ == "__main__":
    main()
