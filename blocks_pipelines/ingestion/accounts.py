"""Whose bill each row is on: the provider whose billing account a row names, and whether that account is well
formed and one of the tenant's. Pure functions over the distinct (provider names, account) pairs of a delivery."""

from __future__ import annotations

from dataclasses import dataclass

from blocks_pipelines.tenants import billing_accounts as ba
from blocks_pipelines.tenants.config import TenantConfig

# canonical columns naming who bills a row, most telling first: FOCUS ProviderName/ServiceProviderName, then who
# issues the invoice and who hosts (a marketplace seller's row is billed to the marketplace's cloud account)
PROVIDER_COLUMNS = ("provider", "invoice_issuer", "host_provider", "service_provider")
# Providers whose billing account ids have one documented shape: an id of another shape is a damaged file. Azure
# and OCI ids come in several forms, so an unexpected one is only unregistered (and registrable as "other").
CERTAIN_SHAPES = ("aws", "gcp")


@dataclass(frozen=True)
class AccountProblem:
    kind: str  # malformed | foreign
    provider: str  # aws | azure | gcp | oci | other
    account_id: str
    provider_name: str  # as the file names the provider
    registered: tuple[str, ...]

    @property
    def label(self) -> str:
        return ba.LABELS[self.provider]


def billing_provider(row: dict) -> str:
    """aws | azure | gcp | oci | other: the first provider name that is a known cloud, else the id's shape."""
    for column in PROVIDER_COLUMNS:
        family = ba.provider_family(row.get(column))
        if family:
            return family
    return ba.family_of_id(row["payer_account_id"] or "") or "other"


def _registered(tenant: TenantConfig, provider: str) -> list[str]:
    if provider != "other":
        return tenant.billing_account_ids(provider)
    # a SaaS provider's rows may be billed through one of the tenant's cloud accounts (marketplaces)
    return [i for p in (*ba.PROVIDERS, "other") for i in tenant.billing_account_ids(p)]


def _known(tenant: TenantConfig, provider: str, account_id: str) -> bool:
    if provider == "other":
        return any(ba.matches(p, tenant.billing_account_ids(p), account_id) for p in (*ba.PROVIDERS, "other"))
    # an Azure or OCI id registered as "other" (a form this platform does not know yet) counts; an AWS payer is the
    # organization's one
    return ba.matches(provider, tenant.billing_account_ids(provider), account_id) or (
        provider not in CERTAIN_SHAPES and account_id in tenant.billing_account_ids("other")
    )


def first_problem(tenant: TenantConfig, rows: list[dict]) -> AccountProblem | None:
    """The first malformed account id, else the first account that is not the tenant's (rows: distinct values of
    PROVIDER_COLUMNS and payer_account_id)."""
    rows = sorted(rows, key=lambda r: tuple(str(r.get(c)) for c in (*PROVIDER_COLUMNS, "payer_account_id")))
    checked = [(billing_provider(r), r) for r in rows if r.get("payer_account_id")]
    for provider, r in checked:
        if provider in CERTAIN_SHAPES and not ba.is_well_formed(provider, r["payer_account_id"]):
            return AccountProblem(
                "malformed",
                provider,
                r["payer_account_id"],
                r.get("provider") or "",
                tuple(_registered(tenant, provider)),
            )
    for provider, r in checked:
        if not _known(tenant, provider, r["payer_account_id"]):
            return AccountProblem(
                "foreign",
                provider,
                r["payer_account_id"],
                r.get("provider") or "",
                tuple(_registered(tenant, provider)),
            )
    return None
