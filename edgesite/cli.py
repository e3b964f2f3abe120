"""The ``edgesite`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import urllib.parse
from pathlib import Path
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from .errors import EdgesiteError

DEFAULT_PORT = 8000
T = TypeVar("T")


def state_root() -> Path:
    """Where nodes keep their caches, versions and tokens (``$EDGESITE_HOME`` or ~/.cache/edgesite)."""
    return Path(os.environ.get("EDGESITE_HOME") or Path.home() / ".cache" / "edgesite")


def node_state_dir(port: int, cache_dir: str | None) -> Path:
    return Path(cache_dir).resolve() if cache_dir else state_root() / "nodes" / str(port)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """edgesite: Markdown + Jinja2 sites rendered on demand at edge nodes."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _fail(exc: EdgesiteError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@main.command()
@click.argument("site", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the route table as JSON.")
@click.option("--drafts", is_flag=True, help="Include drafts.")
def routes(site: str, as_json: bool, drafts: bool) -> None:
    """Print the route table compiled from SITE (nothing is rendered)."""
    from .routes import compile_site

    try:
        manifest = compile_site(site, include_drafts=drafts or None)
    except EdgesiteError as exc:
        _fail(exc)
        return
    rows = []
    for url, route in sorted(manifest.routes.items()):
        inputs = [route["page"]] if route.get("page") else []
        rows.append({"url": url, **{k: v for k, v in route.items() if k != "regex"}, "inputs": inputs})
    for route in manifest.worker_routes:
        rows.append({"url": route["path"], **{k: v for k, v in route.items() if k != "regex"}, "inputs": ["worker.py"]})
    if as_json:
        click.echo(json.dumps({"version": manifest.version, "routes": rows, "errors": manifest.errors}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{Path(site).resolve().name} — version {manifest.version} — {len(rows)} routes")
    for column in ("URL", "kind", "template", "inputs"):
        table.add_column(column)
    for row in rows:
        detail = row.get("template") or row.get("target") or row.get("function") or row.get("message", "")
        table.add_row(row["url"], row["kind"], str(detail), ", ".join(row["inputs"]))
    Console().print(table)
    for rel, err in manifest.errors.items():
        click.echo(f"error: {rel}, line {err['line']}: {err['message']}", err=True)


def make_pool_factory(isolation: str, quiet: bool = False) -> Any:
    """How a node gets each site's pool: isolates (``wasm``) or the render core in-process."""
    from .isolate import InlinePool

    if isolation == "none":
        return lambda site, versions, manifest: InlinePool(site.name, site.root, versions, manifest.config.isolate)
    from .component import engine_for, load_component
    from .isolate import IsolatePool

    engine = engine_for()
    component = load_component(engine, progress=not quiet)
    return lambda site, versions, manifest: IsolatePool(site.name, site.root, versions, manifest.config.isolate, component, engine)


def build_node(sites: tuple[str, ...], state_dir: Path, isolation: str, token: str | None = None,
               node_id: str | None = None, quiet: bool = False, drafts: bool | None = None) -> Any:
    from .node import EdgeNode, load_or_create_token, open_site

    factory = make_pool_factory(isolation, quiet)
    runtimes = [open_site(path, state_dir, factory, include_drafts=drafts) for path in sites]
    return EdgeNode(runtimes, node_id=node_id, token=load_or_create_token(state_dir, token), isolation=isolation)


async def run_node(node: Any, host: str, port: int, state_dir: Path, watch: bool) -> None:
    import uvicorn

    from .watch import site_tasks

    config = uvicorn.Config(node, host=host, port=port, access_log=False, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = list(site_tasks(node.sites, stop, watch))
    tasks += [asyncio.create_task(asyncio.to_thread(site.warm)) for site in node.sites]
    info = {"host": host, "port": port, "pid": os.getpid(), "node": node.node_id, "token": node.token,
            "sites": [s.name for s in node.sites]}
    (state_dir / "node.json").write_text(json.dumps(info))
    try:
        await server.serve()
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for site in node.sites:
            site.pool.close()


@main.command()
@click.argument("sites", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--cache-dir", default=None, help="The node's state dir (cache, versions, token). Default ~/.cache/edgesite/nodes/PORT.")
@click.option("--isolation", type=click.Choice(["wasm", "none"]), default="wasm", show_default=True,
              help="Render in WebAssembly isolates, or in-process (development, reference).")
@click.option("--no-watch", is_flag=True, help="Do not watch the sites for changes.")
@click.option("--token", default=None, envvar="EDGESITE_TOKEN", help="Bearer token of the purge API (default: generated and kept in the state dir).")
@click.option("--node-id", default=None, help="Name of this node in X-Served-By.")
@click.option("--drafts", is_flag=True, help="Serve draft pages too.")
@click.option("--nodes", default=0, type=int, help="Run a control plane and N node processes (ports after --port) behind a front door on --port.")
@click.option("--bus", default=None, help="Share purges and versions over redis://HOST:PORT (default: embedded); without --nodes, only the control plane runs here.")
def serve(sites: tuple[str, ...], host: str, port: int, cache_dir: str | None, isolation: str, no_watch: bool,
          token: str | None, node_id: str | None, drafts: bool, nodes: int, bus: str | None) -> None:
    """Serve SITES from an edge node (several sites: chosen by Host header, e.g. blog.localhost)."""
    state_dir = node_state_dir(port, cache_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    if nodes > 0 or bus:  # with --bus and no --nodes: a control plane for nodes started elsewhere
        from .network import serve_network
        from .node import load_or_create_token

        click.echo(f"edgesite: control plane and front door on http://{host}:{port}/, {nodes} nodes on ports "
                   f"{port + 1}-{port + nodes} ({isolation} isolation, {bus or 'embedded'} bus, state in {state_dir})")
        try:
            asyncio.run(serve_network(sites, host, port, nodes, bus, isolation=isolation, watch=not no_watch,
                                      token=load_or_create_token(state_dir, token), state_dir=state_dir, drafts=drafts or None))
        except EdgesiteError as exc:
            _fail(exc)
        return
    try:
        node = build_node(sites, state_dir, isolation, token, node_id, drafts=drafts or None)
    except EdgesiteError as exc:
        _fail(exc)
        return
    names = ", ".join(s.name for s in node.sites)
    click.echo(f"edgesite node {node.node_id}: serving {names} on http://{host}:{port}/ ({isolation} isolation, state in {state_dir})")
    if len(node.sites) > 1:
        for site in node.sites:
            click.echo(f"  {site.name}: http://{site.name}.localhost:{port}/")
    asyncio.run(run_node(node, host, port, state_dir, watch=not no_watch))


@main.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--title", default=None, help="The site's title (default: the folder's name).")
def new(path: str, title: str | None) -> None:
    """Scaffold a working site at PATH (a new or empty folder) with the default theme."""
    from .scaffold import create

    try:
        files = create(path, title=title)
    except EdgesiteError as exc:
        _fail(exc)
        return
    click.echo(f"created {path} ({len(files)} files). Next:\n  edgesite dev {path}")


@main.command()
@click.argument("site", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--cache-dir", default=None, help="The dev node's state dir. Default ~/.cache/edgesite/dev/PORT.")
def dev(site: str, host: str, port: int, cache_dir: str | None) -> None:
    """Develop SITE: one node, in-process rendering, drafts shown, watching, live reload, error overlay."""
    from .dev import build_dev_server, run_dev

    state_dir = Path(cache_dir).resolve() if cache_dir else state_root() / "dev" / str(port)
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = build_dev_server(site, state_dir)
    except EdgesiteError as exc:
        _fail(exc)
        return
    click.echo(f"edgesite dev: {server.site.name} on http://{host}:{port}/ (live reload; drafts shown; Ctrl-C to stop)")
    try:
        asyncio.run(run_dev(server, host, port))
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--url", "urls", multiple=True, help="Purge this URL path (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Purge entries carrying this tag, e.g. file:templates/base.html.")
@click.option("--prefix", "prefixes", multiple=True, help="Purge every URL under this path prefix.")
@click.option("--all", "everything", is_flag=True, help="Purge everything.")
@click.option("--soft", is_flag=True, help="Mark stale (served while one re-render runs) instead of removing.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="The local node's port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--cache-dir", default=None, help="The node's state dir, if it was given to serve.")
@click.option("--token", default=None, envvar="EDGESITE_TOKEN")
def purge(urls: tuple[str, ...], tags: tuple[str, ...], prefixes: tuple[str, ...], everything: bool, soft: bool,
          port: int, host: str, cache_dir: str | None, token: str | None) -> None:
    """Purge a local node's cache (finds the node's token in its state dir)."""
    import httpx

    if not (urls or tags or prefixes or everything):
        raise click.UsageError("give --url, --tag, --prefix or --all")
    state_dir = node_state_dir(port, cache_dir)
    if token is None:
        token_file = state_dir / "token"
        if not token_file.is_file():
            raise click.ClickException(f"no token in {token_file}: is a node running on port {port}? (or pass --token)")
        token = token_file.read_text().strip()
    body = {"urls": list(urls), "tags": list(tags), "prefixes": list(prefixes), "everything": everything, "soft": soft}
    try:
        resp = httpx.post(f"http://{host}:{port}/_edgesite/purge", json=body, headers={"authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the node at {host}:{port}: {exc}") from None
    if resp.status_code != 200:
        raise click.ClickException(f"purge failed ({resp.status_code}): {resp.text}")
    click.echo(resp.text)


@main.command()
@click.option("--control", default=None, help="The control plane's URL (embedded bus).")
@click.option("--bus", default=None, help="redis://HOST:PORT (instead of --control).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT + 1, show_default=True, type=int)
@click.option("--advertise", default=None, help="The URL the control plane and load balancer reach this node at.")
@click.option("--state-dir", default=None, help="Default ~/.cache/edgesite/nodes/PORT.")
@click.option("--node-id", default=None)
@click.option("--isolation", type=click.Choice(["wasm", "none"]), default="wasm", show_default=True)
@click.option("--token", required=True, envvar="EDGESITE_TOKEN", help="The control plane's bearer token.")
def node(control: str | None, bus: str | None, host: str, port: int, advertise: str | None, state_dir: str | None,
         node_id: str | None, isolation: str, token: str) -> None:
    """Run one edge node that follows a control plane's log (sites, versions and purges come from it)."""
    from .bus import HttpNodeBus, RedisBus
    from .network import run_edge_node

    if bool(control) == bool(bus):
        raise click.UsageError("give --control URL or --bus redis://HOST:PORT")
    folder = node_state_dir(port, state_dir)
    ident = node_id or f"{os.uname().nodename}-{port}"

    async def run() -> None:
        node_bus = RedisBus(bus) if bus else HttpNodeBus(str(control), token)
        await run_edge_node(node_bus, folder, host, port, make_pool_factory(isolation, quiet=True), node_id=ident,
                            token=token, isolation=isolation, advertise=advertise)

    asyncio.run(run())


def _control_token(url: str, token: str | None) -> str:
    if token:
        return token
    port = urllib.parse.urlsplit(url).port or 80
    found = node_state_dir(port, None) / "token"
    if not found.is_file():
        raise click.ClickException(f"no token in {found} (pass --token)")
    return found.read_text().strip()


@main.command()
@click.argument("site", type=click.Path(exists=True, file_okay=False))
@click.option("--to", "url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True, help="The control plane.")
@click.option("--token", default=None, envvar="EDGESITE_TOKEN")
def deploy(site: str, url: str, token: str | None) -> None:
    """Deploy SITE as a new immutable version: upload the files the control plane lacks, switch every node."""
    from .network import deploy_to

    try:
        click.echo(json.dumps(deploy_to(url, _control_token(url, token), site)))
    except EdgesiteError as exc:
        _fail(exc)


@main.command()
@click.argument("version", required=False)
@click.option("--site", default=None, help="Which site (needed when the control plane has several).")
@click.option("--to", "url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True, help="The control plane.")
@click.option("--token", default=None, envvar="EDGESITE_TOKEN")
def rollback(version: str | None, site: str | None, url: str, token: str | None) -> None:
    """Switch every node back to VERSION (default: the version before the current one)."""
    from .network import rollback_at

    try:
        click.echo(json.dumps(rollback_at(url, _control_token(url, token), site, version)))
    except EdgesiteError as exc:
        _fail(exc)


@main.command()
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def status(port: int, host: str, as_json: bool) -> None:
    """Show a node's sites, versions, cache sizes and hit ratios."""
    import httpx

    try:
        data = httpx.get(f"http://{host}:{port}/_edgesite/status", timeout=10).json()
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the node at {host}:{port}: {exc}") from None
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    if data.get("control"):
        Console(width=None if sys.stdout.isatty() else 160).print(_nodes_table(data))
        return
    table = Table(title=f"node {data['node']} ({data['isolation']} isolation)")
    for column in ("site", "version", "entries", "hits", "misses", "hit ratio", "isolates"):
        table.add_column(column)
    for name, site in data["sites"].items():
        cache = site["cache"]
        total = cache["hits"] + cache["misses"]
        ratio = f"{cache['hits'] / total:.0%}" if total else "-"
        table.add_row(name, site["version"], str(cache["entries"]), str(cache["hits"]), str(cache["misses"]), ratio,
                      str(site["isolates"].get("live", "-")))
    Console().print(table)


def _progress_bar(label: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                    transient=True, console=Console(stderr=True))


@main.command()
@click.argument("site", type=click.Path(exists=True, file_okay=False))
def check(site: str) -> None:
    """Render every route of SITE; report broken links and anchors, missing templates and static
    files, pages that fail, and orphans. Exits 1 when something is broken."""
    from .check import check_site

    report = _with_progress("checking", lambda progress: check_site(site, progress=progress))
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{report.pages} routes rendered, {report.links} internal links checked: "
               f"{len(report.problems)} problems, {len(report.warnings)} warnings")
    sys.exit(0 if report.ok else 1)


@main.command()
@click.argument("site", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--drafts", is_flag=True, help="Include drafts.")
def export(site: str, out: str, drafts: bool) -> None:
    """Write SITE as static files under OUT, byte-identical to what a node serves."""
    from .export import export_site

    report = _with_progress("exporting", lambda progress: export_site(site, out, include_drafts=drafts or None, progress=progress))
    for failed in report.failed:
        click.echo(f"error: {failed.url}: {failed.error}", err=True)
    for path in report.skipped:
        click.echo(f"skipped: {path} (a dynamic worker route cannot be a file)", err=True)
    click.echo(f"wrote {report.written} pages and {report.static} static files to {out}")
    sys.exit(1 if report.failed else 0)


def _with_progress(label: str, work: Callable[[Callable[[int, int, str], None]], T]) -> T:
    """Run ``work(progress)`` under a progress bar that ``progress(done, total, url)`` moves;
    an EdgesiteError ends the command with its message and exit status 1."""
    with _progress_bar(label) as bar:
        task = bar.add_task("", total=None)
        try:
            return work(lambda i, n, url: bar.update(task, completed=i, total=n, description=url))
        except EdgesiteError as exc:
            _fail(exc)


def _nodes_table(data: dict[str, Any]) -> Any:
    from rich.table import Table

    sites = ", ".join(f"{name} {site['version']}" for name, site in data["sites"].items())
    table = Table(title=f"control plane: log seq {data['seq']}; deployed {sites}")
    for column in ("node", "url", "seq", "site", "version", "entries", "hits", "misses", "hit ratio", "isolates"):
        table.add_column(column)
    for row in data["nodes"]:
        status = row.get("status") or {}
        for name, site in (status.get("sites") or {"-": None}).items():
            if site is None:
                table.add_row(row["node"], row["url"], str(row["seq"]), "-", "unreachable", "", "", "", "", "")
                continue
            cache = site["cache"]
            total = cache["hits"] + cache["misses"]
            table.add_row(row["node"], row["url"], str(row["seq"]), name, site["version"], str(cache["entries"]),
                          str(cache["hits"]), str(cache["misses"]), f"{cache['hits'] / total:.0%}" if total else "-",
                          str(site["isolates"].get("live", "-")))
    return table


@main.group()
def runtime() -> None:
    """The isolate runtime component."""


@runtime.command("build")
@click.option("--cache-dir", default=None, help="Where compiled components are cached.")
def runtime_build(cache_dir: str | None) -> None:
    """Build (or find cached) the runtime component, and print where it is."""
    from .component import build_component

    try:
        path = build_component(cache_dir=cache_dir, progress=True)
    except EdgesiteError as exc:
        _fail(exc)
        return
    click.echo(str(path))


if __name__ == "__main__":
    main()
