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


def test_sample_data_tenants_have_no_cost_explorer_asset_to_show_as_missing(blocks_env):
    from datetime import date, timedelta

    from test_connect_support import make_tenant

    from blocks_pipelines.ingestion.defs import build_ingestion_defs
    from blocks_pipelines.settings import get_settings
    from blocks_pipelines.tenants.config import load_registry

    for tenant in load_registry(get_settings().tenants_dir):  # the demo's tenants: local CUR, no AWS account
        defs = build_ingestion_defs(tenant)
        keys = {k.path[-1] for k in defs.resolve_asset_graph().get_all_asset_keys()}
        assert keys == {"cur_line_items"}, (tenant.id, keys)
        assert not defs.sensors  # the delivery sensors are the code location's (issue #16)
    real = make_tenant(uri="s3://newco-cur/reports", history_start=date.today() - timedelta(days=30))
    keys = {k.path[-1] for k in build_ingestion_defs(real).resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"cur_line_items", "cost_explorer_line_items"}
