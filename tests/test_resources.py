"""The platform's Dagster resources: a local and a production variant each, picked in one place from the settings,
and the same store the CLI and the API open."""

from __future__ import annotations

import dagster as dg
from test_sp_purchase import tenant

from blocks_pipelines.resources import PURCHASER, STATE_STORE, PurchaserResource, StateStoreResource, platform_resources
from blocks_pipelines.savings_plans.purchase.aws import AwsPurchaser
from blocks_pipelines.savings_plans.purchase.ledger import LedgerPurchaser
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import get_state_store


def test_local_resources_are_the_sqlite_store_and_the_ledger(blocks_env):
    resources = platform_resources()
    assert resources[STATE_STORE] == StateStoreResource(backend="sqlite", sqlite_path=str(get_settings().state_db_path))
    store = resources[STATE_STORE].store()
    assert type(store.backend).__name__ == "SqliteBackend"
    assert isinstance(resources[PURCHASER].for_tenant(tenant(), store), LedgerPurchaser)
    assert platform_resources() is resources  # one object per environment, whatever the number of tenants


def test_production_resources_are_dynamodb_and_aws(blocks_env, aws_env, monkeypatch):
    monkeypatch.setenv("BLOCKS_ENV", "production")
    monkeypatch.setenv("BLOCKS_DYNAMODB_ENDPOINT_URL", aws_env)
    monkeypatch.setenv("BLOCKS_STATE_TABLE_PREFIX", "prod_resources")
    resources = platform_resources()
    assert resources[STATE_STORE] == StateStoreResource(
        backend="dynamodb", table_prefix="prod_resources", region="us-east-1", endpoint_url=aws_env
    )
    store = resources[STATE_STORE].store()
    assert type(store.backend).__name__ == "DynamoBackend"
    assert isinstance(resources[PURCHASER].for_tenant(tenant(), store), AwsPurchaser)


def test_the_resource_opens_the_store_the_cli_and_api_read(blocks_env):
    """What a Dagster op writes through its resource, `blocks sp ...` and the API see (and back)."""
    through_dagster = platform_resources()[STATE_STORE].store()
    through_dagster.append_audit("sp_purchases", "test.event", "acme_corp/proposal/p1", "ok", {})
    seen = get_state_store().list_audit("acme_corp")
    assert [(e.actor, e.action) for e in seen] == [("sp_purchases", "test.event")]


def test_an_asset_can_be_handed_another_purchaser(blocks_env):
    """The resource is declared, not imported: a deployment (or a test) binds its own without patching modules."""

    @dg.asset
    def buyer_name(purchaser: PurchaserResource, state_store: StateStoreResource) -> str:
        return type(purchaser.for_tenant(tenant(), state_store.store())).__name__

    local = dg.materialize([buyer_name], resources=platform_resources())
    assert local.output_for_node("buyer_name") == "LedgerPurchaser"
    aws = dg.materialize(
        [buyer_name], resources={**platform_resources(), PURCHASER: PurchaserResource(buy_on_aws=True)}
    )
    assert aws.output_for_node("buyer_name") == "AwsPurchaser"
