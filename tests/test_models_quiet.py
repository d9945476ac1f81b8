"""A Dagster dbt run says what matters: no warning per lake source test, no DuckDB partitioning warning per mart
(the demo log repeated both for every tenant and every run)."""

from __future__ import annotations

import logging

import dagster as dg
import pytest
from test_models_defs import _split

from blocks_pipelines.models.defs import build_model_defs
from models_helpers import hand_fixture, install_tenant, make_tenant
from tests.synthetic.line_items import write_line_items

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs, crash-injected processes or moto S3/SQS


def test_an_hourly_mart_run_logs_no_source_test_or_partitioning_warnings(blocks_env, capfd, caplog):
    tenant = make_tenant("quietco")
    install_tenant(blocks_env.parent / "assets_config", tenant)
    write_line_items(hand_fixture(tenant.id), str(blocks_env / "lake"))
    hourly, _ = _split(build_model_defs(tenant))
    with caplog.at_level(logging.WARNING):
        result = dg.materialize(
            [hourly],
            resources=build_model_defs(tenant).resources,
            tags={
                "dagster/asset_partition_range_start": "2026-10-01",
                "dagster/asset_partition_range_end": "2026-10-01",
            },
        )
    assert result.success
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert observed == []  # dbt tests either are checks of this run's assets or do not run here
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert checks and all(c.passed for c in checks)
    logs = capfd.readouterr().out + capfd.readouterr().err + caplog.text
    for noise in (
        "instead of an `AssetCheckResult`",
        "not included in Dagster's asset check selection",
        "only supported for DuckLake relations",
    ):
        assert noise not in logs, noise
