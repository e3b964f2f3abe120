"""The commands against a control plane: status, purge, deploy, rollback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgesite.cli import main
from network_support import TOKEN, Network


@pytest.fixture
def network(mini: Path, tmp_path: Path) -> Iterator[Network]:
    net = Network(mini, tmp_path / "state", 2)
    try:
        yield net
    finally:
        net.close()


def test_status_of_a_control_plane_is_a_table_of_its_nodes(network: Network) -> None:
    result = CliRunner().invoke(main, ["status", "--port", str(network.port)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "control plane: log seq 1" in result.output
    assert "node-1" in result.output and "node-2" in result.output
    data = json.loads(CliRunner().invoke(main, ["status", "--port", str(network.port), "--json"]).output)
    assert sorted(n["node"] for n in data["nodes"]) == ["node-1", "node-2"]


def test_purge_deploy_and_rollback_commands_reach_every_node(network: Network, mini: Path) -> None:
    runner, url = CliRunner(), network.url
    purged = json.loads(runner.invoke(main, ["purge", "--url", "/about/", "--port", str(network.port), "--token", TOKEN]).output)
    assert sorted(purged["nodes"]) == ["node-1", "node-2"]
    first = network.status()["sites"]["mini"]["version"]
    (mini / "content/about.md").write_text('+++\ntitle = "About"\n+++\nDeployed.\n')
    deployed = json.loads(runner.invoke(main, ["deploy", str(mini), "--to", url, "--token", TOKEN]).output)
    assert deployed["previous"] == first and deployed["blobs_sent"] == 1 and sorted(deployed["nodes"]) == ["node-1", "node-2"]
    assert all("Deployed." in network.get(u, "/about/").text for u in network.node_urls)
    back = json.loads(runner.invoke(main, ["rollback", "--to", url, "--token", TOKEN]).output)
    assert back["version"] == first
    assert all("Deployed." not in network.get(u, "/about/").text for u in network.node_urls)
    unknown = runner.invoke(main, ["rollback", "0000", "--to", url, "--token", TOKEN])
    assert unknown.exit_code == 1 and "no version 0000" in unknown.output


def test_a_node_that_keeps_dying_is_restarted_with_a_growing_delay(tmp_path: Path) -> None:
    from edgesite.network import Supervisor

    supervisor = Supervisor(1, 9, "127.0.0.1", tmp_path, [], {})
    supervisor.started[9] = time.monotonic()
    delays = [supervisor.restart_delay(9) for _ in range(6)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    supervisor.started[9] = time.monotonic() - 60  # it ran a good while before dying this time
    assert supervisor.restart_delay(9) == 0.0
