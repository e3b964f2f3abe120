"""Edit-to-fresh under one `edgesite serve` node: from saving a page's Markdown to the node
serving the new text, with isolates (`--isolation wasm`, the default) and in-process
(`--isolation none`, the baseline in the same run).

    python benchmarks/bench_edit.py [--pages 10000] [--edits 8]

The node runs as a real process on 127.0.0.1 with watching on; each edit appends a marker to a
page that is cached (HIT) on the node, and the clock stops when a GET returns the marker.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
EDGESITE = str(Path(sys.executable).parent / "edgesite")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(corpus: Path, mode: str, edits: int, work: Path) -> list[float]:
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(corpus, work / "site")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([EDGESITE, "serve", str(work / "site"), "--port", str(port), "--isolation", mode,
                             "--cache-dir", str(work / "state")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            try:
                httpx.get(base + "/_edgesite/status", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        table = json.loads(subprocess.run([EDGESITE, "routes", str(work / "site"), "--json"], capture_output=True,
                                          text=True, check=True).stdout)
        url_of = {row["page"]: row["url"] for row in table["routes"] if row.get("kind") == "page"}
        pages = sorted(url_of)
        times = []
        for i in range(edits):
            rel = pages[(100 + i * 37) % len(pages)]
            url = url_of[rel]
            httpx.get(base + url)
            assert httpx.get(base + url).headers["x-cache"] == "HIT"
            time.sleep(0.5)
            marker = f"edit-marker-{i}-{time.time_ns()}"
            started = time.perf_counter()
            with open(work / "site" / rel, "a") as fh:
                fh.write(f"\n\n{marker}\n")
            deadline = started + 60
            while marker not in httpx.get(base + url, timeout=30).text:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{mode}: edit of {rel} not served within 60 s")
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
        return times
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=10000)
    parser.add_argument("--edits", type=int, default=8)
    args = parser.parse_args()
    corpus = HERE / "corpus" / f"c{args.pages}"
    if not (corpus / "site.toml").exists():
        subprocess.run([sys.executable, str(HERE / "corpus.py"), "--pages", str(args.pages), "--out", str(corpus)], check=True)
    results = {}
    for mode in ("none", "wasm"):
        results[mode] = measure(corpus, mode, args.edits, HERE / "out" / f"edit-{mode}")
    print(f"edit -> fresh on one node, {args.pages} pages, {args.edits} edits each")
    for mode, times in results.items():
        ms = sorted(t * 1000 for t in times)
        print(f"  --isolation {mode:4}: p50 {statistics.median(ms):6.0f} ms   max {ms[-1]:6.0f} ms")
    ratio = statistics.median(results["wasm"]) / statistics.median(results["none"])
    print(f"  isolates / in-process: {ratio:.2f}x")


if __name__ == "__main__":
    main()
