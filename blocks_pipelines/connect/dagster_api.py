"""The few Dagster webserver calls onboarding needs, over its GraphQL API (dagster_graphql.DagsterGraphQLClient).

Reload the code location so a new tenant's assets exist, find the backfills already launched for a tenant (by tag),
and launch one asset backfill of `[tenant, "cur_line_items"]` over one billing month's hour range. With the
ingestion asset's BackfillPolicy.single_run() the daemon turns each into one run carrying
dagster/asset_partition_range_start/_end. A backfill rather than launchRun: launchRun with a range plans every
partition synchronously (about 12 s per month here), a backfill is recorded in under 0.1 s and the daemon does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError, ReloadRepositoryLocationStatus

from blocks_pipelines.connect.backfill import MonthRange
from blocks_pipelines.settings import DEFAULT_DAGSTER_URL

DEFAULT_LOCATION = "blocks"  # pyproject's [tool.dagster] code_location_name
DEFAULT_REPOSITORY = "__repository__"  # the name Dagster gives a Definitions object
TENANT_TAG = "blocks/backfill_tenant"
MONTH_TAG = "blocks/backfill_month"

_BACKFILLS_QUERY = """
query Backfills($cursor: String, $limit: Int) {
  partitionBackfillsOrError(cursor: $cursor, limit: $limit) {
    __typename
    ... on PartitionBackfills { results { id status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

_ASSET_QUERY = """
query TenantAsset($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode { id isPartitioned }
  }
}
"""

_LAUNCH_BACKFILL = """
mutation LaunchMonth($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
# A backfill that ended badly is launched again by the next setup; any other status means the month is in hand.
_RETRY_STATUSES = {"FAILED", "CANCELED", "COMPLETED_FAILED"}
_PAGE = 500


class DagsterApiError(RuntimeError):
    pass


@dataclass(frozen=True)
class LaunchedBackfill:
    billing_period: str
    backfill_id: str


def client_from_url(url: str = DEFAULT_DAGSTER_URL) -> DagsterGraphQLClient:
    parsed = urlparse(url)
    if not parsed.hostname:
        raise DagsterApiError(f"BLOCKS_DAGSTER_URL={url!r} is not a URL: use e.g. {DEFAULT_DAGSTER_URL}")
    return DagsterGraphQLClient(
        parsed.hostname,
        port_number=parsed.port,
        use_https=parsed.scheme == "https",
        path_prefix=parsed.path.rstrip("/"),
        timeout=60,
    )


class DagsterGateway:
    def __init__(
        self, client: DagsterGraphQLClient, location: str = DEFAULT_LOCATION, repository: str = DEFAULT_REPOSITORY
    ):
        self.client = client
        self.location = location
        self.repository = repository

    def _execute(self, query: str, variables: dict) -> dict:
        try:
            return self.client._execute(query, variables)
        except DagsterGraphQLClientError as exc:
            raise DagsterApiError(
                f"Dagster webserver unreachable or failing ({exc}): is it running at the "
                "BLOCKS_DAGSTER_URL / --dagster-url address?"
            ) from exc

    def reload(self) -> None:
        try:
            info = self.client.reload_repository_location(self.location)
        except DagsterGraphQLClientError as exc:
            raise DagsterApiError(
                f"Dagster webserver unreachable or failing ({exc}): is it running at the "
                "BLOCKS_DAGSTER_URL / --dagster-url address?"
            ) from exc
        if info.status != ReloadRepositoryLocationStatus.SUCCESS:
            raise DagsterApiError(
                f"Dagster could not reload code location {self.location!r} ({info.failure_type}): {info.message}. "
                "Fix the error it shows (often a tenant file that does not validate), then run setup again."
            )

    def has_asset(self, asset_key: list[str]) -> bool:
        res = self._execute(_ASSET_QUERY, {"assetKey": {"path": asset_key}})
        return res["assetNodeOrError"]["__typename"] == "AssetNode"

    def launched_months(self, tenant_id: str) -> dict[str, str]:
        """billing month -> backfill id of the backfills already launched for this tenant (a failed or canceled one
        does not count: its month is launched again)."""
        out: dict[str, str] = {}
        cursor = None
        while True:
            res = self._execute(_BACKFILLS_QUERY, {"cursor": cursor, "limit": _PAGE})["partitionBackfillsOrError"]
            if res["__typename"] != "PartitionBackfills":
                raise DagsterApiError(f"listing backfills: {res.get('message')}")
            for bf in res["results"]:
                tags = {t["key"]: t["value"] for t in bf["tags"]}
                if tags.get(TENANT_TAG) == tenant_id and bf["status"] not in _RETRY_STATUSES:
                    out.setdefault(tags.get(MONTH_TAG, ""), bf["id"])
            if len(res["results"]) < _PAGE:
                break
            cursor = res["results"][-1]["id"]
        out.pop("", None)
        return out

    def launch_month(self, tenant_id: str, month: MonthRange) -> LaunchedBackfill:
        params = {
            "partitionsByAssets": [
                {
                    "assetKey": {"path": [tenant_id, "cur_line_items"]},
                    "partitions": {"range": {"start": month.start_key, "end": month.end_key}},
                }
            ],
            "tags": [{"key": TENANT_TAG, "value": tenant_id}, {"key": MONTH_TAG, "value": month.billing_period}],
            "title": f"{tenant_id} history {month.billing_period}",
        }
        res = self._execute(_LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
        if res["__typename"] != "LaunchBackfillSuccess":
            raise DagsterApiError(
                f"launching the {month.billing_period} backfill of {tenant_id}: "
                f"{res['__typename']}: {res.get('message')}"
            )
        return LaunchedBackfill(month.billing_period, res["backfillId"])
