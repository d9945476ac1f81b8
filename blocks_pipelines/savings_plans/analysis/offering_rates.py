"""The tenant's real Savings Plans rates, from savingsplans DescribeSavingsPlansOfferingRates.

The analyzer needs one number per offering: SP rate / on-demand rate over the tenant's usage mix. The typical
discount table (analyzer_rates) scales the ratio the tenant gets today; the real rates price the exact mix:
for each (region, usage type) the tenant ran in the last 30 days, the offering's SP rate divided by the on-demand
rate the CUR charged (public on-demand cost / usage amount), weighted by on-demand spend. Usage the API has no rate
for keeps the typical ratio, and the quote says how much of the spend was priced for real.

Compute Savings Plans rates are public prices (the same for every account), so one cache serves every tenant:
keyed by region, instance family (or fargate / lambda), term and payment option, kept RATE_TTL. It is a JSON file
written aside and swapped in, so a crash never leaves half a cache.

The CUR's usage type names the instance but the spend mart does not carry the operation (the OS/licence), and
the API returns one rate per operation: the operation whose rate gives the ratio closest to the typical one is
taken (a Linux rate against a Windows on-demand price would read as a 65% discount, which no plan gives).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import polars as pl

from blocks_pipelines.savings_plans.analysis.rates import TYPICAL_DISCOUNT, validate_offering

RATE_TTL = timedelta(days=7)
MIX_DAYS = 30
SECONDS_PER_YEAR = 31_536_000
PAYMENT_OPTION = {"no_upfront": "No Upfront", "partial_upfront": "Partial Upfront", "all_upfront": "All Upfront"}
MIN_PRICED_SHARE = 0.5  # below this, the quote is mostly the typical table and says so

# one cache entry: (usage type, operation) -> SP rate per unit
Rates = dict[tuple[str, str], float]
RateSource = Literal["offering_rates", "typical"]


@dataclass(frozen=True)
class MixItem:
    region: str
    usage_type: str
    on_demand_cost: float  # public on-demand $ over the mix window
    usage_amount: float

    @property
    def on_demand_rate(self) -> float:
        return self.on_demand_cost / self.usage_amount

    @property
    def family(self) -> str | None:
        return rate_family(self.usage_type)


@dataclass(frozen=True)
class RateQuote:
    ratio: float  # SP rate / on-demand rate for the offering over the tenant's mix
    source: RateSource
    priced_share: float  # share of the mix's on-demand spend priced by real rates
    term_years: int
    payment_option: str
    note: str


def rate_family(usage_type: str) -> str | None:
    """Cache family of a usage type: the EC2 instance family ("USE2-BoxUsage:m5.large" -> "m5"), "fargate",
    "lambda", or None for usage a Compute Savings Plan does not cover."""
    if "Fargate" in usage_type:
        return "fargate"
    if "Lambda" in usage_type:
        return "lambda"
    for marker in ("BoxUsage:", "DedicatedUsage:", "HostUsage:"):
        if marker in usage_type:
            return usage_type.split(marker, 1)[1].split(".", 1)[0] or None
    return None


def usage_mix(spend_hourly: pl.DataFrame, now: datetime, days: int = MIX_DAYS) -> list[MixItem]:
    """Compute-SP-eligible usage of the last `days` from the spend_hourly mart, per region and usage type."""
    if spend_hourly.is_empty():
        return []
    since = now - timedelta(days=days)
    rows = (
        spend_hourly.with_columns(pl.col("usage_hour").cast(pl.Datetime("us", "UTC")))
        .filter(
            pl.col("usage_hour") >= since,
            pl.col("usage_hour") < now,
            pl.col("line_item_type").is_in(["Usage", "SavingsPlanCoveredUsage", "DiscountedUsage"]),
            pl.col("service").is_in(["AmazonEC2", "AmazonECS", "AmazonEKS", "AWSLambda"]),
            ~pl.col("usage_type").str.contains("SpotUsage"),
        )
        .group_by("region", "usage_type")
        .agg(pl.col("public_on_demand_cost").sum(), pl.col("usage_amount").sum())
        .filter(pl.col("public_on_demand_cost") > 0, pl.col("usage_amount") > 0)
        .sort("public_on_demand_cost", descending=True)
    )
    items = [MixItem(r, u, float(c), float(a)) for r, u, c, a in rows.iter_rows()]
    return [i for i in items if i.region and i.family is not None]


class RateCache:
    """(region, family, term, payment) -> rates, shared by every tenant, in one JSON file."""

    def __init__(self, path: Path, ttl: timedelta = RATE_TTL):
        self.path, self.ttl = path, ttl

    @staticmethod
    def key(region: str, family: str, term_years: int, payment_option: str) -> str:
        return f"{region}|{family}|{term_years}|{payment_option}"

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:  # a cache is disposable: a corrupt one is refetched, not an error
            return {}

    def get(self, key: str, now: datetime) -> Rates | None:
        entry = self._load().get(key)
        if entry is None or now - datetime.fromisoformat(entry["fetched_at"]) > self.ttl:
            return None
        return {(u, o): float(r) for u, o, r in entry["rates"]}

    def put(self, key: str, rates: Rates, now: datetime) -> None:
        data = self._load()
        data[key] = {"fetched_at": now.isoformat(), "rates": [[u, o, r] for (u, o), r in sorted(rates.items())]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rates-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)


def fetch_rates(client: Any, region: str, family: str, term_years: int, payment_option: str) -> Rates:
    """Every Compute SP rate of one family in one region for the offering, all pages."""
    request: dict[str, Any] = {
        "savingsPlanTypes": ["Compute"],
        "savingsPlanPaymentOptions": [PAYMENT_OPTION[payment_option]],
        "filters": [{"name": "region", "values": [region]}],
        "maxResults": 1000,
    }
    if family == "fargate":
        request["products"] = ["Fargate"]
    elif family == "lambda":
        request["products"] = ["Lambda"]
    else:
        request["products"] = ["EC2"]
        request["filters"].append({"name": "instanceFamily", "values": [family]})
    duration = term_years * SECONDS_PER_YEAR
    rates: Rates = {}
    while True:
        page = client.describe_savings_plans_offering_rates(**request)
        for row in page.get("searchResults", []):
            offering = row.get("savingsPlanOffering", {})
            if offering.get("durationSeconds") != duration or offering.get("currency", "USD") != "USD":
                continue
            rates[(row["usageType"], row.get("operation", ""))] = float(row["rate"])
        if not page.get("nextToken"):
            return rates
        request["nextToken"] = page["nextToken"]


RateLookup = Callable[[str, str, int, str], Rates]


def cached_lookup(client: Any, cache: RateCache, now: datetime | None = None) -> RateLookup:
    """A lookup that asks the API once per (region, family, term, payment) and TTL."""
    at = now or datetime.now(timezone.utc)

    def lookup(region: str, family: str, term_years: int, payment_option: str) -> Rates:
        key = RateCache.key(region, family, term_years, payment_option)
        rates = cache.get(key, at)
        if rates is None:
            rates = fetch_rates(client, region, family, term_years, payment_option)
            cache.put(key, rates, at)
        return rates

    return lookup


def quote(
    mix: Iterable[MixItem],
    lookup: RateLookup | None,
    term_years: int,
    payment_option: str,
    typical_ratio: float,
    unavailable: str = "",
) -> RateQuote:
    """The offering's SP rate / on-demand rate over the mix; the typical ratio for whatever has no real rate."""
    validate_offering(term_years, payment_option)
    items = list(mix)
    total = sum(i.on_demand_cost for i in items)
    label = f"{term_years}-year {payment_option.replace('_', ' ')}"

    def typical(share: float, why: str) -> RateQuote:
        note = f"typical discount table for {label} ({100 * (1 - typical_ratio):.0f}% off): {why}"
        return RateQuote(typical_ratio, "typical", share, term_years, payment_option, note)

    if lookup is None or total <= 0:
        return typical(
            0.0, unavailable or ("no eligible usage to price" if total <= 0 else "no rate lookup configured")
        )
    expected = 1.0 - TYPICAL_DISCOUNT[(term_years, payment_option)]
    priced = weighted = 0.0
    failures: list[str] = []
    for item in items:
        try:
            rates = lookup(item.region, item.family, term_years, payment_option)
        except Exception as exc:  # one region/family failing keeps the rest real and says why
            failures.append(f"{item.region}/{item.family}: {type(exc).__name__}")
            rates = {}
        candidates = [r / item.on_demand_rate for (u, _), r in rates.items() if u == item.usage_type]
        candidates = [c for c in candidates if 0.0 < c <= 1.0]
        if candidates:
            ratio = min(candidates, key=lambda c: abs(c - expected))
            priced += item.on_demand_cost
            weighted += item.on_demand_cost * ratio
        else:
            weighted += item.on_demand_cost * typical_ratio
    share = priced / total
    ratio = weighted / total
    if share == 0.0:
        return typical(0.0, "; ".join(failures) or "the API returned no rate for the tenant's usage types")
    if share < MIN_PRICED_SHARE:
        return typical(round(share, 4), f"only {100 * share:.0f}% of eligible on-demand spend had a real rate")
    note = (
        f"DescribeSavingsPlansOfferingRates for {label}: {100 * (1 - ratio):.1f}% off over the last {MIX_DAYS} "
        f"days' mix, {100 * share:.0f}% of eligible on-demand spend priced at real rates"
        + (f", the rest at the typical {100 * (1 - typical_ratio):.0f}%" if share < 1.0 else "")
        + (f" (lookup failed for {', '.join(failures)})" if failures else "")
    )
    return RateQuote(round(ratio, 6), "offering_rates", round(share, 4), term_years, payment_option, note)
