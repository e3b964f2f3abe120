"""edgesite's core benchmarks, each beside a baseline measured in the same run (issue 2).

    python benchmarks/run.py                 # 10,000 pages, HTTP runs of 10 s
    python benchmarks/run.py --quick         # 1,000 pages, shorter loops and HTTP runs

Measures, on a seeded corpus written by corpus.py:
  compile     Compiler(Site.open(root)).compile() of the whole site, vs a loop that only reads
              the content files and parses their YAML front matter (yaml.safe_load).
  recompile   compile() again after editing one page, vs the full compile.
  render      Renderer.handle() of one page, warm, in-process (median over a sample), vs a plain
              markdown-it-py (commonmark + tables, pygments for code) + Jinja2 loop on the
              same pages.
  cache hit   wrk (2 threads, 50 connections) against `edgesite serve --isolation none`, with
              every URL warmed to a HIT first, vs baseline_app.py (a bare Starlette route
              returning the same bytes from memory, same uvicorn settings); one URL, then many
              distinct URLs through a wrk Lua script.
  hugo        if `hugo` is installed: a full Hugo build of the same pages (the anchor).
Prints ratios, never pass/fail on wall-clock time. Only 127.0.0.1 is contacted. Results also go
to benchmarks/out/results-<pages>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

BIN = Path(sys.executable).parent


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# -- compile ------------------------------------------------------------------------------------
def front_matter_loop(root: Path) -> int:
    """The compile baseline: read every content file, parse its YAML front matter. Nothing else."""
    import yaml

    count = 0
    for dirpath, _, filenames in os.walk(root / "content"):
        for name in filenames:
            if not name.endswith(".md"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                text = fh.read()
            if text.startswith("---\n"):
                end = text.find("\n---", 4)
                meta = yaml.safe_load(text[4:end])
                count += bool(meta)
    return count


def bench_compile(root: Path, rounds: int) -> dict[str, Any]:
    from edgesite.routes import Compiler
    from edgesite.site import Site

    ours, base = [], []
    for _ in range(rounds):  # interleaved, so drift on a noisy machine hits both
        t, _n = timed(lambda: front_matter_loop(root))
        base.append(t)
        t, manifest = timed(lambda: Compiler(Site.open(root)).compile())
        ours.append(t)
    return {"compile_s": statistics.median(ours), "baseline_s": statistics.median(base),
            "routes": len(manifest.routes), "pages": len(manifest.pages), "all_compile_s": ours, "all_baseline_s": base}


def bench_recompile(root: Path, edits: int) -> dict[str, Any]:
    from edgesite.routes import Compiler
    from edgesite.site import Site

    compiler = Compiler(Site.open(root))
    full, _ = timed(compiler.compile)
    files = sorted((root / "content").glob("*/*-*.md"))
    rng = random.Random(7)
    times, reads = [], []
    for i in range(edits):
        target = rng.choice(files)
        original = target.read_bytes()
        try:
            target.write_bytes(original + f"\nEdited {i}.\n".encode())
            t, _ = timed(compiler.compile)
            times.append(t)
            reads.append(compiler.files_read)
        finally:
            target.write_bytes(original)
        compiler.compile()  # take the restore in, untimed, so each timed compile sees one edit
    return {"recompile_s": statistics.median(times), "full_s": full, "files_read": reads, "all_s": times}


# -- render -------------------------------------------------------------------------------------
BASE_TPL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{{ site.title }}{% endblock %}</title>
<link rel="stylesheet" href="/static/css/site.css"></head>
<body><header><a href="/">{{ site.title }}</a><nav>{% for item in site.menus.main %}<a href="{{ item.url }}">{{ item.name }}</a> {% endfor %}</nav></header>
<main>{% block main %}{% endblock %}</main>
<footer>{{ site.params.footer }}</footer></body></html>
"""
PAGE_TPL = """{% extends "base.html" %}{% block title %}{{ page.title }} · {{ site.title }}{% endblock %}
{% block main %}<article><h1>{{ page.title }}</h1>
<p class="meta">{{ page.date }} · {% for t in page.tags %}<a href="/tags/{{ t }}/">{{ t }}</a> {% endfor %}</p>
{{ page.content }}</article>{% endblock %}
"""


def make_plain_loop() -> Any:
    """The render baseline: markdown-it-py + Jinja2 with no framework around them."""
    import jinja2
    import yaml
    from markdown_it import MarkdownIt
    from markupsafe import Markup
    from pygments import highlight
    from pygments.formatters.html import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    formatter = HtmlFormatter(nowrap=True)

    def hl(code: str, lang: str, attrs: str) -> str:
        try:
            lexer = get_lexer_by_name(lang)
        except Exception:
            return ""
        return f"<pre><code>{highlight(code, lexer, formatter)}</code></pre>"

    md = MarkdownIt("commonmark", {"html": True, "highlight": hl}).enable("table")
    env = jinja2.Environment(loader=jinja2.DictLoader({"base.html": BASE_TPL, "page.html": PAGE_TPL}), autoescape=True)
    site = {"title": "Corpus", "menus": {"main": [{"name": n, "url": u} for n, u in corpus.MENU]}, "params": {"footer": "x"}}

    def render(path: str) -> str:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        end = text.find("\n---", 4)
        meta = yaml.safe_load(text[4:end])
        body = text[end + 4:]
        page = {"title": meta["title"], "date": meta["date"], "tags": meta.get("tags", []), "content": Markup(md.render(body))}
        return env.get_template("page.html").render(site=site, page=page)

    return render


def bench_render(root: Path, sample: int) -> dict[str, Any]:
    from edgesite.contract import RenderRequest
    from edgesite.content import split_body
    from edgesite.markdown import render_markdown
    from edgesite.render import Renderer
    from edgesite.routes import Compiler
    from edgesite.site import Site

    manifest = Compiler(Site.open(root)).compile()
    versions = Path(tempfile.mkdtemp(prefix="edgesite-bench-versions-"))
    try:
        manifest.write(versions)
        renderer = Renderer(site_root=str(root), versions_root=str(versions))
        urls = sorted(u for u, r in manifest.routes.items() if r["kind"] == "page")
        urls = random.Random(3).sample(urls, min(sample, len(urls)))
        requests = [RenderRequest(method="GET", url=u, headers=[], route=json.dumps(manifest.match(u)), version=manifest.version)
                    for u in urls]
        files = [str(root / manifest.match(u)["page"]) for u in urls]
        plain = make_plain_loop()
        bodies = 0
        for req, path in zip(requests, files):  # warm both: templates compiled, lexers loaded
            bodies += len(renderer.handle(req, manifest).body)
            plain(path)
        ours, base, md_only = [], [], []
        for req, path in zip(requests, files):
            t, _ = timed(lambda: plain(path))
            base.append(t)
            t, resp = timed(lambda: renderer.handle(req, manifest))
            assert resp.status == 200, (req.url, resp.status)
            ours.append(t)
            text = split_body(Path(path).read_text(encoding="utf-8"))[0]
            t, _ = timed(lambda: render_markdown(text))
            md_only.append(t)
    finally:
        shutil.rmtree(versions, ignore_errors=True)
    return {"render_ms": statistics.median(ours) * 1000, "baseline_ms": statistics.median(base) * 1000,
            "markdown_ms": statistics.median(md_only) * 1000, "pages": len(urls), "mean_body_bytes": bodies // len(urls)}


# -- HTTP ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_up(port: int, proc: subprocess.Popen[bytes], path: str, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            get(port, path)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer within {limit} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(port: int, paths: list[str], seconds: int, workdir: Path) -> dict[str, Any]:
    cmd = ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency"]
    if len(paths) > 1:
        script = workdir / f"paths-{len(paths)}.lua"
        listed = ",".join(json.dumps(p) for p in paths)
        script.write_text(
            f"local paths = {{{listed}}}\nlocal n = #paths\nlocal i = 0\n"
            "function setup(thread) i = 0 end\n"
            "request = function()\n  i = i % n + 1\n  return wrk.format(\"GET\", paths[i])\nend\n")
        cmd += ["-s", str(script)]
    cmd.append(f"http://127.0.0.1:{port}{paths[0]}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": float(p50.group(1)) * scale[p50.group(2)] if p50 else None,
            "non2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else "", "raw": out}


def bench_http(root: Path, many: int, seconds: int, rounds: int) -> dict[str, Any]:
    from edgesite.routes import Compiler
    from edgesite.site import Site

    manifest = Compiler(Site.open(root)).compile()
    pages = sorted(u for u, r in manifest.routes.items() if r["kind"] == "page")
    many_paths = random.Random(5).sample(pages, min(many, len(pages)))
    one = [many_paths[0]]
    work = Path(tempfile.mkdtemp(prefix="edgesite-bench-http-"))
    results: dict[str, Any] = {"many": len(many_paths)}
    node_port, base_port = free_port(), free_port()
    node = subprocess.Popen([str(BIN / "edgesite"), "serve", str(root), "--isolation", "none", "--no-watch",
                             "--port", str(node_port), "--cache-dir", str(work / "node")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = None
    try:
        wait_up(node_port, node, "/_edgesite/status")
        bodies: dict[str, tuple[str, bytes]] = {}
        for path in many_paths:
            get(node_port, path)
            status, headers, body = get(node_port, path)
            if status != 200 or headers.get("x-cache") != "HIT":
                raise RuntimeError(f"{path}: {status} {headers.get('x-cache')} after warming")
            bodies[path] = (headers["content-type"], body)
        results["body_bytes"] = statistics.median(len(b) for _, b in bodies.values())
        with open(work / "bodies.pickle", "wb") as fh:
            pickle.dump(bodies, fh)
        base = subprocess.Popen([sys.executable, str(HERE / "baseline_app.py"), "--bodies", str(work / "bodies.pickle"),
                                 "--port", str(base_port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_up(base_port, base, one[0])
        for path in many_paths:
            if get(base_port, path)[2] != bodies[path][1]:
                raise RuntimeError(f"baseline body differs for {path}")
        before = json.loads(get(node_port, "/_edgesite/status")[2])
        for name, paths in (("one", one), ("many", many_paths)):
            runs: dict[str, list[dict[str, Any]]] = {"edgesite": [], "baseline": []}
            for _ in range(rounds):
                runs["baseline"].append(wrk(base_port, paths, seconds, work))
                runs["edgesite"].append(wrk(node_port, paths, seconds, work))
            for who, found in runs.items():
                best = max(found, key=lambda r: r["rps"])
                if best["non2xx"] or best["socket_errors"]:
                    print(f"warning: {who}/{name}: non-2xx {best['non2xx']}, socket errors {best['socket_errors']}", file=sys.stderr)
                results[f"{name}_{who}"] = {k: v for k, v in best.items() if k != "raw"} | {"all_rps": [r["rps"] for r in found]}
        after = json.loads(get(node_port, "/_edgesite/status")[2])
        results["node_misses_during_load"] = after["misses"] - before["misses"]
        results["node_hits_during_load"] = after["hits"] - before["hits"]
    finally:
        stop(node)
        if base is not None:
            stop(base)
        shutil.rmtree(work, ignore_errors=True)
    return results


# -- Hugo ---------------------------------------------------------------------------------------
def bench_hugo(pages: int, seed: int) -> dict[str, Any] | None:
    if shutil.which("hugo") is None:
        return None
    site = HERE / "corpus" / f"c{pages}-hugo"
    corpus.write_corpus(site, pages, seed, "hugo")
    out = Path(tempfile.mkdtemp(prefix="edgesite-bench-hugo-"))
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(["hugo", "--quiet", "-d", str(out)], cwd=site, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            return {"error": proc.stderr.read().decode()[-500:] if proc.stderr else "failed"}
        version = subprocess.run(["hugo", "version"], capture_output=True, text=True).stdout.split()[1]
        return {"build_s": elapsed, "pages_per_s": pages / elapsed, "peak_rss_mb": usage.ru_maxrss / 1024, "version": version}
    finally:
        shutil.rmtree(out, ignore_errors=True)


# -- report -------------------------------------------------------------------------------------
def report(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []
    c = r["compile"]
    rows.append((f"compile, {r['pages']} pages ({c['routes']} routes)", f"{c['compile_s']:.2f} s",
                 f"read + YAML front matter loop {c['baseline_s']:.2f} s", f"{c['compile_s'] / c['baseline_s']:.2f}x", "<= 2x"))
    rc = r["recompile"]
    rows.append(("recompile after editing one page", f"{rc['recompile_s'] * 1000:.0f} ms (files read {max(rc['files_read'])})",
                 f"full compile {rc['full_s']:.2f} s", f"{rc['recompile_s'] / rc['full_s']:.3f}x", ""))
    rd = r["render"]
    rows.append((f"render one page, warm (median of {rd['pages']})", f"{rd['render_ms']:.2f} ms",
                 f"markdown-it-py + Jinja2 loop {rd['baseline_ms']:.2f} ms", f"{rd['render_ms'] / rd['baseline_ms']:.2f}x", ""))
    rows.append(("  of which render_markdown()", f"{rd['markdown_ms']:.2f} ms", "", "", ""))
    h = r.get("http")
    if h:
        for name, label in (("one", "cache hit, 1 URL"), ("many", f"cache hit, {h['many']} URLs")):
            e, b = h[f"{name}_edgesite"], h[f"{name}_baseline"]
            rows.append((f"{label} (wrk 2t/50c {r['seconds']} s, {h['body_bytes'] / 1024:.1f} KB)",
                         f"{e['rps']:,.0f} req/s (p50 {e['p50_ms']:.2f} ms)",
                         f"bare Starlette {b['rps']:,.0f} req/s (p50 {b['p50_ms']:.2f} ms)", f"{e['rps'] / b['rps']:.0%}", ">= 80%"))
    hg = r.get("hugo")
    if hg and "build_s" in hg:
        rows.append((f"Hugo {hg['version']} full build, same {r['pages']} pages", f"{hg['build_s']:.2f} s",
                     f"{hg['pages_per_s']:.0f} pages/s, peak RSS {hg['peak_rss_mb']:.0f} MB", "", "anchor"))
    widths = [max(len(row[i]) for row in rows + [("measurement", "edgesite", "baseline (same run)", "ratio", "aim")]) for i in range(5)]
    head = ("measurement", "edgesite", "baseline (same run)", "ratio", "aim")
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=None, help="corpus size (default 10000, or 1000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="1,000 pages, fewer rounds, 5 s HTTP runs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=None, help="duration of each wrk run")
    parser.add_argument("--many", type=int, default=200, help="distinct URLs in the many-URL HTTP run")
    parser.add_argument("--skip", action="append", default=[], choices=("http", "hugo", "render"), help="skip a part")
    args = parser.parse_args()
    pages = args.pages or (1000 if args.quick else 10000)
    seconds = args.seconds or (5 if args.quick else 10)
    rounds = 1 if args.quick else 3
    root = HERE / "corpus" / f"c{pages}"
    print(f"writing corpus: {pages} pages, seed {args.seed} -> {root}", flush=True)
    corpus.write_corpus(root, pages, args.seed, "edgesite")
    r: dict[str, Any] = {"pages": pages, "seed": args.seed, "seconds": seconds, "nproc": os.cpu_count(),
                         "python": platform.python_version(), "argv": sys.argv[1:]}
    print("compile ...", flush=True)
    r["compile"] = bench_compile(root, rounds)
    print("recompile ...", flush=True)
    r["recompile"] = bench_recompile(root, 3 if args.quick else 5)
    if "render" not in args.skip:
        print("render ...", flush=True)
        r["render"] = bench_render(root, 100 if args.quick else 300)
    if "http" not in args.skip:
        if shutil.which("wrk") is None:
            print("wrk not found (apt-get install -y wrk): skipping HTTP", file=sys.stderr)
        else:
            print("cache hits over HTTP ...", flush=True)
            r["http"] = bench_http(root, args.many, seconds, 1 if args.quick else 2)
    if "hugo" not in args.skip:
        print("hugo ...", flush=True)
        r["hugo"] = bench_hugo(pages, args.seed)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"results-{pages}.json").write_text(json.dumps(r, indent=2, default=str))
    print(f"\nedgesite core benchmarks: {pages} pages, nproc {r['nproc']}, Python {r['python']}\n")
    print(report(r))


if __name__ == "__main__":
    main()
