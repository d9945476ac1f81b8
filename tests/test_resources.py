"""The platform's Dagster resources: a local and a production variant each, picked in one place from the settings,
and the same store the CLI and the API open."""

from __future__ import annotations

import dagster as dg
from test_sp_purchase import tenant

from blocks_pipelines.resources import (
    LAKE,
    PURCHASER,
    STATE_STORE,
    LakeResource,
    PurchaserResource,
    StateStoreResource,
    platform_resources,
)
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
    assert resources[LAKE] == LakeResource(root_uri=get_settings().lake_uri)
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


def test_the_ingestion_asset_writes_the_lake_it_is_given(blocks_env, tmp_path):
    """cur_line_items takes the lake root from its resource: a run handed another lake writes there, not to the
    settings' lake."""
    from blocks_pipelines.ingestion.defs import build_ingestion_defs
    from blocks_pipelines.lake import months
    from blocks_pipelines.tenants.config import load_registry, resolve_source_uri
    from blocks_pipelines.tenants.partitions import RANGE_END_TAG, RANGE_START_TAG
    from tests.synthetic.cur_frames import cur2_frame, write_export_delivery

    globex = {t.id: t for t in load_registry(get_settings().tenants_dir)}["globex"]
    frame = cur2_frame(200, "2026-10", "222222222222", ["222222222223", "222222222224"])
    root = resolve_source_uri(globex.cur_source, get_settings().home)
    write_export_delivery(root, "globex-cur2", [frame], "2026-10", tmp_path / "d")
    elsewhere = str(tmp_path / "other-lake")
    [asset] = [a for a in build_ingestion_defs(globex).assets if a.key.path[-1] == "cur_line_items"]
    result = dg.materialize(
        [asset],
        resources={LAKE: LakeResource(root_uri=elsewhere)},
        tags={RANGE_START_TAG: "2026-10-01-00:00", RANGE_END_TAG: "2026-10-31-23:00"},
    )
    assert result.success
    assert months.current_files(elsewhere, "globex")
    assert not months.current_files(get_settings().lake_uri, "globex")
