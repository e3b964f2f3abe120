"""The command line, run as a real process against real nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).parent.parent


def edgesite(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgesite", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, **(env or {})})


def test_routes_prints_the_compiled_table_as_json(mini: Path) -> None:
    result = edgesite("routes", str(mini), "--json")
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    by_url = {row["url"]: row for row in table["routes"]}
    assert by_url["/posts/post-1/"]["kind"] == "page"
    assert by_url["/posts/post-1/"]["inputs"] == ["content/posts/post-1.md"]
    assert by_url["/atom.xml"]["kind"] == "feed"
    human = edgesite("routes", str(mini))
    assert human.returncode == 0 and "/posts/post-1/" in human.stdout


def test_routes_reports_a_compile_error_with_a_nonzero_status(mini: Path) -> None:
    (mini / "content/posts/clash.md").write_text("---\ntitle: C\nslug: post-1\n---\n")
    result = edgesite("routes", str(mini))
    assert result.returncode == 1
    assert "URL /posts/post-1/ is produced twice" in result.stderr


def test_purge_finds_the_local_nodes_token_by_itself(mini: Path, start_node: Any, tmp_path: Path) -> None:
    state = tmp_path / "node-state"
    node = start_node(mini, state_dir=state, token=None)
    node.get("/posts/post-1/")
    assert node.get("/posts/post-1/").headers["x-cache"] == "HIT"
    result = edgesite("purge", "--url", "/posts/post-1/", "--port", str(node.port), "--cache-dir", str(state))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["purged"] == {"mini": 1}
    assert node.get("/posts/post-1/").headers["x-cache"] == "MISS"
    refused = edgesite("purge", "--all", "--port", str(node.port), "--token", "wrong")
    assert refused.returncode == 1 and "401" in refused.stderr
