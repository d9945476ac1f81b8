"""The one place that resolves the environment (local vs production).

Everything else asks this module for paths and URIs instead of reading environment variables itself,
so a test can point the whole platform somewhere else by setting a handful of variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    env: str  # "local" or "production"
    home: Path  # local working folder: warehouse files, state db, dagster home, demo data
    assets_config: Path  # folder holding tenants/*.yaml
    lake_uri: str  # root of the Hive-partitioned lake: a local path or s3://bucket/prefix
    s3_endpoint_url: str | None  # moto or localstack in tests; None means real AWS
    aws_region: str
    dbt_project_dir: Path
    dbt_target: str  # "duckdb" (embedded) or "athena"
    state_backend: str  # "sqlite" or "dynamodb"
    state_table_prefix: str
    # S3 event notifications of CUR deliveries (issue #16): the queue the delivery sensor drains, where it puts
    # messages it cannot use (with the reason), and an SQS endpoint override for tests (moto)
    delivery_queue_url: str | None = None
    delivery_dead_letter_url: str | None = None
    sqs_endpoint_url: str | None = None

    @property
    def tenants_dir(self) -> Path:
        return self.assets_config / "tenants"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def state_db_path(self) -> Path:
        return self.home / "state.sqlite"

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def get_settings() -> Settings:
    env = os.environ.get("BLOCKS_ENV", "local")
    home = Path(os.environ.get("BLOCKS_HOME", REPO_ROOT / ".blocks")).resolve()
    lake_default = str(home / "lake")
    return Settings(
        env=env,
        home=home,
        assets_config=Path(os.environ.get("BLOCKS_ASSETS_CONFIG", REPO_ROOT / "assets_config")).resolve(),
        lake_uri=os.environ.get("BLOCKS_LAKE_URI", lake_default),
        s3_endpoint_url=os.environ.get("BLOCKS_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"),
        aws_region=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")),
        dbt_project_dir=Path(os.environ.get("BLOCKS_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project")).resolve(),
        dbt_target=os.environ.get("BLOCKS_DBT_TARGET", "athena" if env == "production" else "duckdb"),
        state_backend=os.environ.get("BLOCKS_STATE_BACKEND", "dynamodb" if env == "production" else "sqlite"),
        state_table_prefix=os.environ.get("BLOCKS_STATE_TABLE_PREFIX", "blocks"),
        delivery_queue_url=os.environ.get("BLOCKS_DELIVERY_QUEUE_URL") or None,
        delivery_dead_letter_url=os.environ.get("BLOCKS_DELIVERY_DLQ_URL") or None,
        sqs_endpoint_url=os.environ.get("BLOCKS_SQS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_SQS"),
    )
