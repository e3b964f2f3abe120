"""The dev loop: edit-to-reloaded-page latency under ``edgesite dev`` on a large site, beside
``hugo server`` and ``mkdocs serve`` on the same pages, measured in the same run.

    python benchmarks/bench_dev.py                       # 10,000 pages, 20 edits each
    python benchmarks/bench_dev.py --pages 1000 --edits 5 --skip mkdocs
    python benchmarks/bench_dev.py --mkdocs /work/mkdocs-venv/bin/mkdocs --mkdocs-edits 3

For each server: generate the corpus (``corpus.py``; ``--format hugo`` for Hugo; the edgesite
corpus's ``content/`` as ``docs/`` with a one-entry nav for MkDocs), start the server, and wait
until it answers (the start-up time). Then, for each edit: fetch the page as a browser would,
open that server's own live-reload channel for it, append a paragraph with a fresh marker to
the page's Markdown, and time from the moment the write returns

- to the reload notification (edgesite: ``event: reload`` on ``/_edgesite/livereload``;
  Hugo: ``{"command": "reload"}`` on its ``/livereload`` websocket; MkDocs: its
  ``/livereload/<epoch>/<id>`` long poll returning a new epoch), and
- to the re-fetched page's bytes containing the marker (re-fetched right after the
  notification, then every 10 ms until they do).

``--template-edits K`` also edits the single-page template K times (edgesite and Hugo) with an
open page. Each edit touches a different page, spread over the corpus. Only 127.0.0.1 is
contacted. Prints a table and writes ``benchmarks/out/dev-<pages>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
REPO = HERE.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (from /proc)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@contextmanager
def server(cmd: list[str], url: str, cwd: Path | None = None, ready_timeout: float = 900) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start a server, wait until ``url`` answers 200; yields (process, start-up seconds)."""
    log = open(os.devnull, "wb")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > ready_timeout:
                raise RuntimeError(f"{cmd[0]} did not answer in {ready_timeout}s")
            time.sleep(0.05)
        yield proc, time.perf_counter() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def append_marker(path: Path) -> tuple[str, float]:
    marker = f"edit-{uuid.uuid4().hex[:12]}"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"\n\nThis paragraph was added by the benchmark: {marker}.\n")
    return marker, time.perf_counter()


def page_edit(path: Path) -> Callable[[], tuple[str, float]]:
    return lambda: append_marker(path)


def refetch(client: httpx.Client, url: str, marker: str, t0: float, timeout: float = 600) -> tuple[float, int]:
    """Seconds from t0 until GET url contains marker, and how many GETs it took."""
    tries = 0
    while True:
        tries += 1
        if marker in client.get(url).text:
            return time.perf_counter() - t0, tries
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{url} never showed {marker}")
        time.sleep(0.01)


def pick_pages(content: Path, n: int) -> list[Path]:
    files = sorted(p for p in content.rglob("*.md") if not p.name.startswith("_"))
    step = max(1, len(files) // n)
    return files[step // 2::step][:n]


def url_of(content: Path, md: Path) -> str:
    rel = md.relative_to(content).with_suffix("")
    return f"/{rel.as_posix()}/"


# -- one edit per server kind ------------------------------------------------------------------

def edit_edgesite(base: str, client: httpx.Client, url: str, action: Callable[[], tuple[str, float]]) -> dict[str, Any]:
    etag = client.get(url).headers.get("etag", "").strip('"')
    with httpx.Client(base_url=base, timeout=httpx.Timeout(600, read=600)) as sse:
        with sse.stream("GET", "/_edgesite/livereload", params={"url": url, "etag": etag}) as resp:
            lines = resp.iter_lines()
            assert next(lines) == "event: hello"
            next(lines)
            marker, t0 = action()
            event = ""
            for line in lines:
                if line.startswith("event: ") and line[7:] != "unchanged":
                    event = line[7:]
                    break
            t_event = time.perf_counter() - t0
    t_bytes, tries = refetch(client, url, marker, t0)
    status = client.get("/_edgesite/status").json()
    reload_ms = next(iter(status["sites"].values()))["last_reload"].get("ms")
    return {"event": event, "event_s": t_event, "bytes_s": t_bytes, "gets": tries, "reload_ms": reload_ms}


def edit_hugo(base: str, client: httpx.Client, url: str, action: Callable[[], tuple[str, float]]) -> dict[str, Any]:
    from websockets.sync.client import connect

    client.get(url)
    ws_url = base.replace("http://", "ws://") + "/livereload"
    with connect(ws_url, open_timeout=30, max_size=None) as ws:
        ws.send(json.dumps({"command": "hello", "protocols": ["http://livereload.com/protocols/official-7"]}, separators=(",", ":")))  # Hugo matches the bytes
        json.loads(ws.recv(timeout=30))
        marker, t0 = action()
        while True:
            msg = json.loads(ws.recv(timeout=600))
            if msg.get("command") == "reload":
                break
        t_event = time.perf_counter() - t0
    t_bytes, tries = refetch(client, url, marker, t0)
    return {"event": "reload", "event_s": t_event, "bytes_s": t_bytes, "gets": tries}


def edit_mkdocs(base: str, client: httpx.Client, url: str, action: Callable[[], tuple[str, float]]) -> dict[str, Any]:
    client.get(url)
    epoch = int(client.get("/livereload/0/0").text)
    marker, t0 = action()
    while True:
        new = int(client.get(f"/livereload/{epoch}/1", timeout=900).text)
        if new > epoch:
            break
    t_event = time.perf_counter() - t0
    t_bytes, tries = refetch(client, url, marker, t0)
    return {"event": "reload", "event_s": t_event, "bytes_s": t_bytes, "gets": tries}


def summarise(name: str, runs: list[dict[str, Any]], startup: float, rss: float) -> dict[str, Any]:
    ev = [r["event_s"] * 1000 for r in runs]
    by = [r["bytes_s"] * 1000 for r in runs]
    reloads = [r["reload_ms"] for r in runs if r.get("reload_ms") is not None]
    extra = {"reload_p50_ms": round(pct(reloads, 50), 1)} if reloads else {}
    return {**extra, "server": name, "edits": len(runs), "startup_s": round(startup, 2), "rss_mb": round(rss),
            "event_p50_ms": round(pct(ev, 50), 1), "event_p99_ms": round(pct(ev, 99), 1),
            "bytes_p50_ms": round(pct(by, 50), 1), "bytes_p99_ms": round(pct(by, 99), 1),
            "events": sorted({r["event"] for r in runs}), "runs": runs}


def template_marker(template: Path, anchor: str) -> Callable[[], tuple[str, float]]:
    def act() -> tuple[str, float]:
        marker = f"tpl-{uuid.uuid4().hex[:12]}"
        text = template.read_text()
        template.write_text(text.replace(anchor, f"<p class=\"bench\">{marker}</p>{anchor}", 1))
        return marker, time.perf_counter()
    return act


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=10000)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--template-edits", type=int, default=5)
    ap.add_argument("--mkdocs-edits", type=int, default=3, help="MkDocs rebuilds everything per edit: fewer edits")
    ap.add_argument("--work", default=None, help="where corpora are generated (default benchmarks/out/dev-work-<pages>)")
    ap.add_argument("--skip", default="", help="comma-separated: hugo, mkdocs")
    ap.add_argument("--mkdocs", default=shutil.which("mkdocs") or "/work/mkdocs-venv/bin/mkdocs", help="the mkdocs executable")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = Path(args.work or HERE / "out" / f"dev-work-{args.pages}").resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    es_site, hugo_site, mk_site = work / "edgesite", work / "hugo", work / "mkdocs"
    subprocess.run([sys.executable, str(HERE / "corpus.py"), "--pages", str(args.pages), "--out", str(es_site)], check=True)
    results: list[dict[str, Any]] = []

    # edgesite dev
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "edgesite", "dev", str(es_site), "--port", str(port), "--cache-dir", str(work / "state")]
    with server(cmd, base + "/_edgesite/status") as (proc, startup), httpx.Client(base_url=base, timeout=600) as client:
        pages = pick_pages(es_site / "content", args.edits)
        runs = [edit_edgesite(base, client, url_of(es_site / "content", md), page_edit(md)) for md in pages]
        results.append(summarise("edgesite dev (page edit)", runs, startup, rss_mb(proc.pid)))
        if args.template_edits:
            tpl = es_site / "templates" / "page.html"
            act = template_marker(tpl, "</article>" if "</article>" in tpl.read_text() else "{% endblock %}")
            runs = []
            for md in pick_pages(es_site / "content", args.template_edits + 7)[7:]:
                url = url_of(es_site / "content", md)
                runs.append(edit_edgesite(base, client, url, act))
            results.append(summarise("edgesite dev (template edit)", runs, startup, rss_mb(proc.pid)))

    if "hugo" not in skip and shutil.which("hugo"):
        subprocess.run([sys.executable, str(HERE / "corpus.py"), "--pages", str(args.pages), "--format", "hugo", "--out", str(hugo_site)], check=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = ["hugo", "server", "--source", str(hugo_site), "--port", str(port), "--bind", "127.0.0.1",
               "--baseURL", f"http://127.0.0.1:{port}/", "--quiet"]
        with server(cmd, base + "/") as (proc, startup), httpx.Client(base_url=base, timeout=600) as client:
            pages = pick_pages(hugo_site / "content", args.edits)
            runs = [edit_hugo(base, client, url_of(hugo_site / "content", md), page_edit(md)) for md in pages]
            results.append(summarise("hugo server (page edit)", runs, startup, rss_mb(proc.pid)))
            if args.template_edits:
                tpl = hugo_site / "layouts" / "_default" / "single.html"
                anchor = "</article>" if "</article>" in tpl.read_text() else "{{ end }}"
                act = template_marker(tpl, anchor)
                runs = []
                for md in pick_pages(hugo_site / "content", args.template_edits + 7)[7:]:
                    runs.append(edit_hugo(base, client, url_of(hugo_site / "content", md), act))
                results.append(summarise("hugo server (template edit)", runs, startup, rss_mb(proc.pid)))

    mkdocs = Path(args.mkdocs)
    if "mkdocs" not in skip and mkdocs.exists() and args.mkdocs_edits:
        docs = mk_site / "docs"
        shutil.copytree(es_site / "content", docs)
        for index in docs.rglob("_index.md"):
            index.rename(index.with_name("index.md"))
        (mk_site / "mkdocs.yml").write_text("site_name: Corpus\nnav:\n  - Home: index.md\nvalidation:\n  links:\n    absolute_links: ignore\n    unrecognized_links: ignore\n")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [str(mkdocs), "serve", "--dev-addr", f"127.0.0.1:{port}", "--no-strict"]
        with server(cmd, base + "/", cwd=mk_site, ready_timeout=1800) as (proc, startup), httpx.Client(base_url=base, timeout=900) as client:
            pages = pick_pages(docs, args.mkdocs_edits)
            runs = [edit_mkdocs(base, client, url_of(docs, md), page_edit(md)) for md in pages]
            results.append(summarise("mkdocs serve (page edit)", runs, startup, rss_mb(proc.pid)))

    print(f"\n{args.pages} pages; times from the write of the edited file")
    print(f"{'server':32} {'edits':>5} {'start s':>8} {'RSS MB':>7} {'event p50':>10} {'p99':>8} {'page p50':>10} {'p99':>8}")
    for r in results:
        print(f"{r['server']:32} {r['edits']:>5} {r['startup_s']:>8} {r['rss_mb']:>7} {r['event_p50_ms']:>10} "
              f"{r['event_p99_ms']:>8} {r['bytes_p50_ms']:>10} {r['bytes_p99_ms']:>8}")
        if "reload_p50_ms" in r:
            print(f"{'':32} (of which recompile + diff + purge, p50: {r['reload_p50_ms']} ms)")
    out = HERE / "out" / f"dev-{args.pages}.json"
    out.write_text(json.dumps({"pages": args.pages, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
