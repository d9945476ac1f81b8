"""The sample CUR generator's entry point for other domains: `generate_tenant_cur`.

Deterministic: the same arguments give byte-identical files (ids and noise come from streams keyed by seed,
tenant, scale and billing period; gzip carries no timestamp). A month's usage does not depend on which other
months are generated, and the open month's first hours do not change as its end time moves on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from tqdm import tqdm

from blocks_pipelines.sample_data import delivery as D
from blocks_pipelines.sample_data.commitments import SavingsPlanSpec, existing_plan
from blocks_pipelines.sample_data.formats import FORMATS
from blocks_pipelines.sample_data.inventory import build_inventory
from blocks_pipelines.sample_data.lineitems import (
    Period,
    billing_period_rows,
    eligible_on_demand_per_hour,
    month_period,
)
from blocks_pipelines.sample_data.rand import stream_seed
from blocks_pipelines.tenants.config import TenantConfig

DEFAULT_ROWS_PER_FILE = 500_000


@dataclass(frozen=True)
class MonthSummary:
    billing_period: str
    delivery_id: str
    closed: bool
    rows: int
    unblended_cost: float
    files: list[str]
    manifests: list[str]


@dataclass
class GenerationSummary:
    tenant_id: str
    format: str
    out_uri: str
    savings_plans: list[SavingsPlanSpec]
    months: list[MonthSummary] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return [f for m in self.months for f in m.files]

    @property
    def manifests(self) -> list[str]:
        return [f for m in self.months for f in m.manifests]

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.months)

    def to_dict(self) -> dict:
        return {
            "tenant_id": self.tenant_id,
            "format": self.format,
            "out": self.out_uri,
            "rows": self.rows,
            "files": self.files,
            "manifests": self.manifests,
            "unblended_cost_by_month": {m.billing_period: round(m.unblended_cost, 2) for m in self.months},
            "months": [
                {
                    "billing_period": m.billing_period,
                    "delivery_id": m.delivery_id,
                    "closed": m.closed,
                    "rows": m.rows,
                    "unblended_cost": round(m.unblended_cost, 2),
                    "files": len(m.files),
                }
                for m in self.months
            ],
            "savings_plans": [
                {
                    "arn": p.arn,
                    "hourly_commitment": p.hourly_commitment,
                    "start": p.start.isoformat(),
                    "rate_ratio": p.rate_ratio,
                }
                for p in self.savings_plans
            ],
        }


def parse_month(value: str) -> tuple[int, int]:
    try:
        dt = datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise ValueError(f"start {value!r}: expected YYYY-MM, e.g. 2026-09") from None
    return dt.year, dt.month


def billing_periods(months: int, end: datetime, start: str | None = None) -> list[Period]:
    """`months` billing periods from `start` (default: the last `months` ending with end's month), cut at end."""
    if months < 1:
        raise ValueError(f"months must be >= 1 (got {months})")
    if start is None:
        idx = end.year * 12 + end.month - 1 - (months - 1)
    else:
        y, m = parse_month(start)
        idx = y * 12 + m - 1
    periods = [month_period(i // 12, i % 12 + 1, end) for i in range(idx, idx + months)]
    periods = [p for p in periods if p.start < p.data_end]
    if not periods:
        raise ValueError(
            f"no hours to generate: start {start or 'default'} is at or after the end time "
            f"{end.isoformat()}; pick an earlier --start or a later end"
        )
    return periods


def delivery_id(*key: object) -> str:
    return str(uuid.UUID(int=stream_seed(*key, "hi") << 64 | stream_seed(*key, "lo"), version=4))


def invoice_id(*key: object) -> str:
    return str(1_000_000_000 + stream_seed(*key, "invoice") % 9_000_000_000)


def generate_tenant_cur(
    tenant: TenantConfig,
    *,
    fmt: str,
    out_uri: str,
    months: int,
    seed: int,
    start: str | None = None,
    end: datetime | None = None,
    restatement: bool = False,
    extra_savings_plans: Sequence[SavingsPlanSpec] = (),
    scale: float = 1.0,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    progress: bool = False,
) -> GenerationSummary:
    """Write `months` billing periods of CUR for `tenant` under out_uri (local folder or s3://).

    restatement: write only a new delivery of the last period, with late credits/refunds and shifted usage.
    extra_savings_plans: plans bought later; they cover usage from their start, so coverage rises after it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if scale <= 0:
        raise ValueError(f"scale must be > 0 (got {scale})")
    if rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1 (got {rows_per_file})")
    end = end or datetime.now(timezone.utc)
    end = end.replace(tzinfo=timezone.utc) if end.tzinfo is None else end.astimezone(timezone.utc)
    periods = billing_periods(months, end, start)

    inv = build_inventory(tenant, seed=seed, scale=scale)
    payer = tenant.organization.payer_account_id
    anchor = tenant.history_start_dt
    key = (seed, tenant.id, scale)
    base = existing_plan(payer, anchor, eligible_on_demand_per_hour(inv, anchor, key), seed=seed, tenant_id=tenant.id)
    plans = ([base] if base else []) + list(extra_savings_plans)
    plans_key = tuple((p.arn, p.hourly_commitment, p.start.isoformat(), p.rate_ratio) for p in plans)

    summary = GenerationSummary(tenant.id, fmt, out_uri, plans)
    targets = periods[-1:] if restatement else periods
    for period in tqdm(targets, desc=f"{tenant.id} {fmt}", unit="month", disable=not progress):
        did = delivery_id(*key, fmt, period.label, period.data_end.isoformat(), restatement, plans_key)
        li = billing_period_rows(
            inv,
            payer=payer,
            period=period,
            plans=plans,
            anchor=anchor,
            key=key,
            restatement=restatement,
            delivery_id=did,
            invoice_id=invoice_id(*key, period.label) if period.closed else None,
        )
        if fmt.startswith("cur1"):
            out = D.write_cur1(
                li,
                out_uri=out_uri,
                report=tenant.cur_source.report_name,
                period=period,
                assembly_id=did,
                payer=payer,
                parquet=fmt == "cur1-parquet",
                rows_per_file=rows_per_file,
            )
        else:
            out = D.write_export(
                li,
                out_uri=out_uri,
                export=tenant.cur_source.report_name,
                period=period,
                execution_id=did,
                payer=payer,
                focus=fmt == "focus",
                rows_per_file=rows_per_file,
                region=tenant.cur_source.region,
            )
        summary.months.append(
            MonthSummary(
                period.label,
                did,
                period.closed,
                out.rows,
                float(li.get_column("unblended_cost").sum()),
                out.files,
                out.manifests,
            )
        )
    return summary
