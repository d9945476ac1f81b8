"""The one place that resolves the environment (local vs production).

Everything else asks this module for paths and URIs instead of reading environment variables itself,
so a test can point the whole platform somewhere else by setting a handful of variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"
# Until Blocks' own AWS account is configured, the customer template names this one (and says so).
PLACEHOLDER_BLOCKS_ACCOUNT_ID = "123456789012"


class SettingsError(ValueError):
    """An environment variable that is set but unusable; the message names it and says what it must be."""


@dataclass(frozen=True)
class ServingSettings:
    cognito_region: str | None
    cognito_user_pool_id: str | None
    cognito_client_id: str | None
    refresh_seconds: float  # how often a tenant's mart files are checked for a new export
    chat_per_minute: float  # Major Tom requests per tenant per minute (token bucket refill)
    chat_burst: int
    max_body_bytes: int
    bedrock_model_id: str | None
    preload: bool  # load every tenant's snapshot and hot aggregates in the background at startup

    @property
    def uses_cognito(self) -> bool:
        return bool(self.cognito_user_pool_id)


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
    dynamodb_endpoint_url: str | None  # moto or DynamoDB Local; None means real AWS
    dagster_url: str  # the webserver `blocks connect` registers tenants with
    blocks_aws_account_id: str  # the account Blocks assumes customers' roles from
    sp_offering_rates: bool  # price proposals at the tenant's DescribeSavingsPlansOfferingRates (always in production)
    # S3 event notifications of CUR deliveries (issue #16): the queue the delivery sensor drains, where it puts
    # messages it cannot use (with the reason), and an SQS endpoint override for tests (moto)
    delivery_queue_url: str | None = None
    delivery_dead_letter_url: str | None = None
    sqs_endpoint_url: str | None = None

    @property
    def serving(self) -> ServingSettings:
        """Read when the API starts (not with every other setting), so a bad serving variable stops only the API."""
        return serving_settings(os.environ, self.aws_region)

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
        dynamodb_endpoint_url=os.environ.get("BLOCKS_DYNAMODB_ENDPOINT_URL")
        or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        or None,
        dagster_url=os.environ.get("BLOCKS_DAGSTER_URL", DEFAULT_DAGSTER_URL),
        blocks_aws_account_id=os.environ.get("BLOCKS_AWS_ACCOUNT_ID", PLACEHOLDER_BLOCKS_ACCOUNT_ID),
        sp_offering_rates=env == "production" or os.environ.get("BLOCKS_SP_OFFERING_RATES") == "1",
        delivery_queue_url=os.environ.get("BLOCKS_DELIVERY_QUEUE_URL") or None,
        delivery_dead_letter_url=os.environ.get("BLOCKS_DELIVERY_DLQ_URL") or None,
        sqs_endpoint_url=os.environ.get("BLOCKS_SQS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_SQS"),
    )


def secret(env_var: str) -> str | None:
    """A secret a tenant's YAML names by environment variable (a webhook URL, an SMTP password), never by value."""
    return os.environ.get(env_var) or None


def serving_settings(env: Mapping[str, str], aws_region: str) -> ServingSettings:
    return ServingSettings(
        cognito_region=env.get("BLOCKS_COGNITO_REGION") or aws_region,
        cognito_user_pool_id=env.get("BLOCKS_COGNITO_USER_POOL_ID") or None,
        cognito_client_id=env.get("BLOCKS_COGNITO_CLIENT_ID") or None,
        refresh_seconds=_positive(env, "BLOCKS_SERVING_REFRESH_SECONDS", 5.0),
        chat_per_minute=_positive(env, "BLOCKS_CHAT_PER_MINUTE", 20.0),
        chat_burst=int(_positive(env, "BLOCKS_CHAT_BURST", 5)),
        max_body_bytes=int(_positive(env, "BLOCKS_MAX_BODY_BYTES", 64 * 1024)),
        bedrock_model_id=env.get("BLOCKS_BEDROCK_MODEL_ID") or None,
        preload=env.get("BLOCKS_SERVING_PRELOAD", "1") not in ("0", "false", "no"),
    )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be positive")
    return value
