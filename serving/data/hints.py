"""Filter values the tenant's data has never seen (service=EC2 instead of AmazonEC2).

Such a filter is well formed, so the request succeeds (200, figures for what matches: nothing), and the response
carries a `hints` entry naming the value and the known values closest to it. A 400 would break a saved view the
day an account is closed or a tag renamed; an empty 200 without a word is what made EC2 look free."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from serving.data.store import TenantData
from serving.schemas import FilterHint

MAX_KNOWN = 12
_KNOWN_SQL = {
    "account": "SELECT DISTINCT usage_account_id FROM spend_daily WHERE usage_account_id IS NOT NULL",
    "service": "SELECT DISTINCT service FROM spend_daily WHERE service IS NOT NULL",
    "region": "SELECT DISTINCT coalesce(region, 'global') FROM spend_daily",
    "ou": "SELECT DISTINCT ou_path FROM spend_daily WHERE ou_path IS NOT NULL",
    "tag": "SELECT DISTINCT k || '=' || json_extract_string(tags, '$.\"' || k || '\"') FROM "
    "(SELECT tags, unnest(json_keys(tags)) AS k FROM spend_daily WHERE tags IS NOT NULL AND tags <> '{}')",
}


def known_values(data: TenantData, field: str) -> tuple[str, ...]:
    """Every value `field` takes in the tenant's data (all days, not only the requested range), per snapshot."""
    return data.cached(
        ("known_values", field),
        lambda: tuple(sorted(str(r[0]) for r in data.rows(_KNOWN_SQL[field]) if r[0] is not None)),
    )


def closest(value: str, known: Sequence[str], limit: int = MAX_KNOWN) -> list[str]:
    """Known values most like `value`: those containing it (any case) first, then spelling neighbours, then the
    rest, so a short list still shows what exists."""
    needle = value.lower()
    containing = [k for k in known if needle in k.lower() or k.lower() in needle]
    similar = difflib.get_close_matches(value, known, n=limit, cutoff=0.4)
    ordered = list(dict.fromkeys([*containing, *similar, *known]))
    return ordered[:limit]


def _is_known(field: str, value: str, known: Sequence[str]) -> bool:
    if field == "ou":  # an OU filter includes its sub-OUs
        return any(k == value or k.startswith(value + "/") for k in known)
    if field == "tag" and value.endswith("="):
        return any(k.startswith(value) for k in known)
    return value in known


def filter_hints(data: TenantData, filters: dict[str, Sequence[str]]) -> list[FilterHint]:
    """One hint per filter value absent from the tenant's data. `tag` values are key=value; a known key with an
    unknown value suggests that key's values."""
    hints = []
    for field, values in filters.items():
        if field not in _KNOWN_SQL or not values:
            continue
        known = known_values(data, field)
        for value in values:
            if _is_known(field, value, known):
                continue
            pool = known
            if field == "tag":
                key = value.partition("=")[0]
                same_key = [k for k in known if k.startswith(key + "=")]
                pool = same_key or known
            hints.append(
                FilterHint(
                    field=field,
                    value=value,
                    known=closest(value, pool),
                    message=f"{field}={value} matches nothing in your data, so it contributes no cost; "
                    f"known {field} values include: {', '.join(closest(value, pool)[:5]) or 'none'}",
                )
            )
    return hints
