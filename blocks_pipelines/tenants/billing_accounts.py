"""Billing account ids per cloud provider: their shapes, how a provider is recognised by name, and how two spellings
of one account compare. Shared by the tenant registry (what may be registered) and ingestion (whose rows a file holds).

Shapes, as each provider's FOCUS export writes BillingAccountId:
- AWS: the 12-digit payer (management) account id.
- Azure: `/providers/Microsoft.Billing/billingAccounts/<id>` (EA enrollments, MCA accounts; MCA exports may append
  `/billingProfiles/<id>`), or the account's bare name: an EA enrollment number, a GUID, or
  `<guid>:<guid>_<yyyy-mm-dd>` for MCA.
- Google Cloud: `XXXXXX-XXXXXX-XXXXXX`, three groups of six hex digits.
- OCI: the tenancy OCID, `ocid1.tenancy.<realm>.[region].<unique id>`.
"""

from __future__ import annotations

import re

PROVIDERS = ("aws", "azure", "gcp", "oci")
_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_AZURE_PATH = "/providers/microsoft.billing/billingaccounts/"
PATTERNS = {
    "aws": re.compile(r"^\d{12}$"),
    # an EA enrollment number has up to 10 digits: never an AWS account's 12, so the shapes stay apart
    "azure": re.compile(
        rf"^(?:{_AZURE_PATH}[\w.:@-]+(?:/[\w.:@/-]+)?|{_GUID}(?::{_GUID}_\d{{4}}-\d{{2}}-\d{{2}})?"
        r"|\d{4,10})$",
        re.IGNORECASE,
    ),
    "gcp": re.compile(r"^[0-9a-f]{6}-[0-9a-f]{6}-[0-9a-f]{6}$", re.IGNORECASE),
    "oci": re.compile(r"^ocid1\.tenancy\.oc\d+\.[a-z0-9-]*\.[a-z0-9]+$", re.IGNORECASE),
}
EXPECTED = {
    "aws": "12 digits",
    "azure": "/providers/Microsoft.Billing/billingAccounts/<id>, an EA enrollment number, a GUID, or "
    "<guid>:<guid>_<yyyy-mm-dd>",
    "gcp": "XXXXXX-XXXXXX-XXXXXX (three groups of six hex digits)",
    "oci": "a tenancy OCID, ocid1.tenancy.oc1..<unique id>",
}
LABELS = {
    "aws": "AWS payer account",
    "azure": "Azure billing account",
    "gcp": "Google Cloud billing account",
    "oci": "OCI tenancy",
    "other": "billing account",
}
# `blocks tenants add` / `add-account` options registering each provider's accounts
CLI_FLAGS = {
    "aws": "--payer",
    "azure": "--azure-billing-account",
    "gcp": "--gcp-billing-account",
    "oci": "--oci-tenancy",
    "other": "--other-billing-account",
}


def provider_family(name: str | None) -> str | None:
    """aws | azure | gcp | oci for the names providers give themselves in FOCUS (ProviderName, HostProviderName,
    InvoiceIssuerName: "AWS", "Amazon Web Services, Inc.", "Microsoft", "Microsoft Azure", "Google Cloud",
    "Oracle", "Oracle Cloud Infrastructure"...); None for anyone else (a SaaS vendor, "Not Applicable")."""
    if not name:
        return None
    n = name.lower()
    if "amazon" in n or re.search(r"\baws\b", n):
        return "aws"
    if "microsoft" in n or "azure" in n:
        return "azure"
    if "google" in n or re.search(r"\bgcp\b", n):
        return "gcp"
    if "oracle" in n or re.search(r"\boci\b", n):
        return "oci"
    return None


def is_well_formed(provider: str, account_id: str) -> bool:
    pattern = PATTERNS.get(provider)
    return pattern is None or bool(pattern.match(account_id))


def family_of_id(account_id: str) -> str | None:
    """The one provider whose shape the id has (None when none or several)."""
    found = [p for p in PROVIDERS if PATTERNS[p].match(account_id)]
    return found[0] if len(found) == 1 else None


def account_key(provider: str, account_id: str) -> str:
    """One spelling per account: Azure ids are case-insensitive and a billing profile path names its account;
    GCP ids are hex (upper case); OCIDs lower case."""
    v = account_id.strip()
    if provider == "azure":
        low = v.lower()
        return low[len(_AZURE_PATH) :].split("/", 1)[0] if low.startswith(_AZURE_PATH) else low
    if provider == "gcp":
        return v.upper()
    if provider == "oci":
        return v.lower()
    return v


def matches(provider: str, registered: list[str], account_id: str) -> bool:
    """Whether a file's account id is one of the registered ones (an MCA `<guid>:<guid>_<date>` account also
    matches its registered leading GUID)."""
    key = account_key(provider, account_id)
    keys = {account_key(provider, r) for r in registered}
    return key in keys or (provider == "azure" and key.split(":", 1)[0] in keys)


def invalid_reason(provider: str, account_id: str) -> str | None:
    """Why an id cannot be registered for a provider (None when it can)."""
    if is_well_formed(provider, account_id):
        return None
    return (
        f"{account_id!r} is not a {LABELS[provider]} id: expected {EXPECTED[provider]} "
        f"(got {len(account_id)} characters)"
    )
