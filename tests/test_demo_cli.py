"""`blocks demo --dagster-port --api-port`: ports are chosen by the user and checked before the long build."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from blocks_pipelines.cli.demo import demo


def test_the_same_port_twice_is_refused_before_anything_is_built(blocks_env):
    result = CliRunner().invoke(demo, ["--dagster-port", "8100", "--api-port", "8100"])
    assert result.exit_code == 2 and "both 8100: pick two ports" in result.output
    assert not (blocks_env / "dagster_home").exists()


def test_a_port_in_use_names_the_flag_to_change(blocks_env):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(demo, ["--dagster-port", str(port), "--api-port", "1"])
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.output and "--dagster-port" in result.output


def test_help_lists_the_port_options():
    out = CliRunner().invoke(demo, ["--help"]).output
    assert "--dagster-port INTEGER RANGE" in out and "--api-port INTEGER RANGE" in out and "[default: 3000" in out
