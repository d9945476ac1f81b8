"""Production runs the same models on Athena: compile every one for the athena target and parse it as Trino SQL.

dbt-athena talks to STS/Glue even to compile, so the compile runs against the moto server (AWS_ENDPOINT_URL):
the real boto3 code path, no AWS account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from blocks_pipelines.models.build import build_args, dbt_resource
from blocks_pipelines.models.project import HOURLY_MARTS, MARTS
from models_helpers import make_tenant

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs or generated API cases: make test-fast skips them

# Functions sqlglot does not model but Trino has; anything else unknown is a DuckDB-ism that Athena would reject.
TRINO_EXTRA_FUNCTIONS = {"json_extract_scalar", "regexp_like", "to_utf8", "to_hex", "date_add", "split_part"}


def trino_problems(sql: str) -> list[str]:
    """Why this SQL would not run on Athena: parse errors, or functions Trino does not know."""
    try:
        statements = sqlglot.parse(sql, read="trino")
    except sqlglot.errors.ParseError as exc:
        return [f"does not parse as Trino: {exc}"]
    return sorted(
        {
            f"unknown function {fn.name}()"
            for st in statements
            if st is not None
            for fn in st.find_all(exp.Anonymous)
            if fn.name.lower() not in TRINO_EXTRA_FUNCTIONS
        }
    )


def test_checker_flags_duckdb_only_sql():
    assert trino_problems("select json_extract_string(tags, '$.a') from t") == [
        "unknown function json_extract_string()"
    ]
    assert trino_problems("select regexp_matches(x, 'a') from t") == ["unknown function regexp_matches()"]
    assert trino_problems("select from where") != []
    assert trino_problems("select json_extract_scalar(tags, '$[\"user:env\"]') from t") == []


@pytest.fixture(scope="module")
def athena_compiled(tmp_path_factory, moto_server):
    root = tmp_path_factory.mktemp("athena")
    env = {
        "BLOCKS_HOME": root / "home",
        "BLOCKS_LAKE_URI": "s3://blocks-lake/lake",
        "BLOCKS_DBT_TARGET": "athena",
        "BLOCKS_ATHENA_S3_STAGING_DIR": "s3://blocks-athena-results/staging/",
        "BLOCKS_ATHENA_SCHEMA": "blocks_marts",
        "BLOCKS_ATHENA_REGION": "eu-west-1",
        "BLOCKS_ATHENA_WORK_GROUP": "primary",
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, str(v))
        from datetime import datetime, timezone

        args = build_args(
            make_tenant("testco"),
            start=datetime(2026, 10, 1, 5, tzinfo=timezone.utc),
            end=datetime(2026, 10, 2, 7, tzinfo=timezone.utc),
            command="compile",
        )
        target = root / "target"
        invocation = dbt_resource().cli(args, raise_on_error=False, target_path=target)
        assert invocation.wait().is_successful(), invocation.get_error()
        yield target


def _compiled_models(target: Path) -> dict[str, str]:
    return {
        p.stem: p.read_text()
        for p in (target / "compiled" / "blocks" / "models").rglob("*.sql")
        if p.parent.suffix != ".yml"
    }


def test_every_mart_compiles_for_athena_and_parses_as_trino(athena_compiled):
    models = _compiled_models(athena_compiled)
    assert set(MARTS) <= set(models)
    problems = {name: trino_problems(sql) for name, sql in models.items()}
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_dbt_test_compiles_to_trino_too(athena_compiled):
    tests = [p for p in (athena_compiled / "compiled").rglob("*.sql") if "models" not in p.parts or p.parent.suffix]
    assert len(tests) >= 20
    problems = {p.name: trino_problems(p.read_text()) for p in tests}
    assert {k: v for k, v in problems.items() if v} == {}


def test_athena_sql_uses_the_trino_variants(athena_compiled):
    models = _compiled_models(athena_compiled)
    assert (
        "json_extract_scalar(" in models["recommendations"] and "json_extract_string" not in models["recommendations"]
    )
    assert "to_hex(md5(to_utf8(" in models["recommendations"]
    assert ") ignore nulls over (" in models["sp_eligible_usage_hourly"]
    # The run's hours widen to whole days: Athena overwrites whole (tenant, day) partitions.
    assert "usage_date >= date '2026-10-01' and usage_date < date '2026-10-03'" in models["spend_hourly"]
    assert "__dbt__cte__stg_cur_line_items" in models["spend_hourly"]  # staging is ephemeral on shared Athena


def test_incremental_marts_overwrite_tenant_day_partitions_safely(athena_compiled):
    manifest = json.loads((athena_compiled / "manifest.json").read_text())
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for name in HOURLY_MARTS:
        cfg = nodes[name]["config"]
        assert cfg["materialized"] == "incremental" and cfg["incremental_strategy"] == "insert_overwrite"
        assert cfg["partitioned_by"] == ["tenant_id", "usage_date"]
        assert cfg["force_batch"] is True and cfg["unique_tmp_table_suffix"] is True  # 100-partition limit, overlaps
    for name in set(MARTS) - set(HOURLY_MARTS):
        assert nodes[name]["config"]["partitioned_by"] == ["tenant_id"]
    for name in MARTS:
        select = sqlglot.parse_one(_compiled_models(athena_compiled)[name], read="trino")
        outputs = [e.alias_or_name for e in select.expressions]
        partitions = nodes[name]["config"]["partitioned_by"]
        assert outputs[-len(partitions) :] == partitions, name  # Athena wants partition columns last


def test_lake_table_ddl_covers_the_canonical_schema_with_partition_projection():
    from blocks_pipelines.ingestion.schema import CANONICAL_COLUMNS
    from blocks_pipelines.models.athena import lake_table_ddl

    ddl = lake_table_ddl("blocks_lake", "s3://blocks-lake/prod")
    create = sqlglot.parse_one(ddl, read="athena")
    assert isinstance(create, exp.Create)
    declared = {c.name for c in create.find_all(exp.ColumnDef)}
    assert declared == {c.name for c in CANONICAL_COLUMNS}  # data columns + tenant_id/billing_period partitions
    assert "PARTITIONED BY (`tenant_id` string, `billing_period` string)" in ddl
    # a partition is a month's symlink manifest: Athena reads the files of the month's current version only
    assert "STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'" in ddl
    assert (
        "'storage.location.template' = 's3://blocks-lake/prod/cur_line_items/_athena/tenant_id=${tenant_id}"
        "/billing_period=${billing_period}/'"
    ) in ddl
    with pytest.raises(ValueError, match="must be an s3://"):
        lake_table_ddl("blocks_lake", "/tmp/lake")


def test_create_lake_table_goes_through_athena(aws_env):
    import boto3

    from blocks_pipelines.models.athena import create_lake_table

    client = boto3.client("athena", endpoint_url=aws_env, region_name="us-east-1")
    qid = create_lake_table(
        client,
        database="blocks_lake",
        lake_uri="s3://blocks-lake/prod",
        work_group="primary",
        output_uri="s3://blocks-athena-results/ddl/",
    )
    execution = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert execution["Query"].startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `blocks_lake`.`cur_line_items`")
    assert execution["QueryExecutionContext"]["Database"] == "blocks_lake"
