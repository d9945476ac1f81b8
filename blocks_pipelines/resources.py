"""The Dagster resources the platform's assets use, with a local and a production variant each (the hooli pattern):
the lake (a local folder / S3), the state store (SQLite file / DynamoDB tables) and the purchaser (a ledger that
records / AWS savingsplans that buys). `platform_resources` is the one place that picks the variants, from the settings.

Assets and sensors declare the resource they need (`state_store: StateStoreResource`), so a test or another
deployment can hand them a different store or purchaser without patching modules; the CLI and the API, which run
no Dagster op, open the same store with `blocks_pipelines.state.get_state_store`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import dagster as dg

from blocks_pipelines.settings import Settings, get_settings

if TYPE_CHECKING:
    from blocks_pipelines.savings_plans.purchase.orders import Purchaser
    from blocks_pipelines.state import StateStore
    from blocks_pipelines.tenants.config import TenantConfig

STATE_STORE = "state_store"
PURCHASER = "purchaser"
LAKE = "lake"


class LakeResource(dg.ConfigurableResource):
    """The lake's root: a local folder by default, s3://bucket/prefix in production (read and written through
    blocks_pipelines.lake.fs, whose S3 client honours the endpoint override)."""

    root_uri: str


class StateStoreResource(dg.ConfigurableResource):
    """Proposals, approvals, purchases, alerts and the audit log: SQLite locally, DynamoDB in production."""

    backend: str = "sqlite"  # sqlite | dynamodb
    sqlite_path: str = ""
    table_prefix: str = "blocks"
    region: str = "eu-west-1"
    endpoint_url: str | None = None

    @classmethod
    def local(cls, settings: Settings) -> StateStoreResource:
        return cls(backend="sqlite", sqlite_path=str(settings.state_db_path))

    @classmethod
    def production(cls, settings: Settings) -> StateStoreResource:
        return cls(
            backend="dynamodb",
            table_prefix=settings.state_table_prefix,
            region=settings.aws_region,
            endpoint_url=settings.dynamodb_endpoint_url,
        )

    def store(self) -> StateStore:
        from blocks_pipelines.state import open_state_store

        return open_state_store(
            self.backend,
            sqlite_path=self.sqlite_path,
            table_prefix=self.table_prefix,
            region=self.region,
            endpoint_url=self.endpoint_url,
        )


class PurchaserResource(dg.ConfigurableResource):
    """Who executes an approved purchase: AWS savingsplans in production only; anywhere else the local ledger, so a
    laptop or CI can never spend money."""

    buy_on_aws: bool = False

    def for_tenant(self, tenant: TenantConfig, store: StateStore) -> Purchaser:
        if self.buy_on_aws:
            from blocks_pipelines.savings_plans.purchase.aws import AwsPurchaser

            return AwsPurchaser(tenant, store)
        from blocks_pipelines.savings_plans.purchase.ledger import LedgerPurchaser

        return LedgerPurchaser(tenant, store)


def platform_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resource map of this environment. The store follows BLOCKS_STATE_BACKEND (a local run may point at
    DynamoDB Local); the purchaser buys on AWS only in production."""
    return _resources(settings or get_settings())


@lru_cache(maxsize=8)
def _resources(s: Settings) -> dict[str, dg.ConfigurableResource]:
    # One object per environment: merging 2,000 tenants' Definitions must see the same resource under each key.
    if s.state_backend not in ("sqlite", "dynamodb"):
        raise ValueError(f"BLOCKS_STATE_BACKEND={s.state_backend!r} is not supported: use 'sqlite' or 'dynamodb'")
    store = StateStoreResource.production(s) if s.state_backend == "dynamodb" else StateStoreResource.local(s)
    return {
        STATE_STORE: store,
        PURCHASER: PurchaserResource(buy_on_aws=s.is_production),
        LAKE: LakeResource(root_uri=s.lake_uri),
    }
