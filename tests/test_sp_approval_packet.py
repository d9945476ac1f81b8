"""The approval packet in sp_proposals' metadata: figures, bands, ledger effect (hand-checked), the return-window note
and the savings-curve PNG (a valid image with the recommendation marked)."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from datetime import datetime, timedelta

import dagster as dg
import polars as pl
from test_sp_defs import NOW_HOUR, buys, lake, latest_metadata, position_rows, run, write_mart  # noqa: F401

from blocks_pipelines.savings_plans import defs as sp_defs
from blocks_pipelines.savings_plans.analysis.analyzer import recommend
from blocks_pipelines.savings_plans.approval.curve_png import HEIGHT, MARK, WIDTH, savings_curve_png
from blocks_pipelines.savings_plans.approval.packet import ledger_effect, packet_markdown
from blocks_pipelines.savings_plans.proposals import build_proposal
from blocks_pipelines.state import get_state_store
from sp_purchase_helpers import END, hourly_usage, tenant

NOW = END


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height = size
    return width, height, zlib.decompress(idat)


def test_curve_png_is_a_valid_image_with_the_recommendation_marked():
    points = [(0.0, 0.0), (10.0, 8000.0), (20.0, 12000.0), (30.0, 9000.0), (40.0, -2000.0)]
    width, height, raw = decode_png(savings_curve_png(points, 20.0))
    assert (width, height) == (WIDTH, HEIGHT) and len(raw) == height * (1 + 3 * width)
    red = bytes(MARK)
    rows = [raw[y * (1 + 3 * width) + 1 : (y + 1) * (1 + 3 * width)] for y in range(height)]
    marked = [(y, x // 3) for y, row in enumerate(rows) for x in range(0, len(row), 3) if row[x : x + 3] == red]
    assert marked  # the dot is drawn where the chosen commitment sits: the curve's top, half-way across
    mean_x = sum(x for _, x in marked) / len(marked)
    mean_y = sum(y for y, _ in marked) / len(marked)
    assert abs(mean_x - (70 + (WIDTH - 90) * 0.5)) < 3 and mean_y < HEIGHT / 3


def ledger_rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "billing_period": ["2026-10", "2026-11"],
            "period_start": [datetime(2026, 10, 1), datetime(2026, 11, 1)],
            "is_month_to_date": [False, True],
            "days_with_data": [31, 19],
            "on_demand_equivalent": [10_000.0, 6_000.0],
            "realized_esr_pct": [18.0, 19.0],
            "margin": [-200.0, -60.0],
            "promised_savings_pct": [20.0, 20.0],
        }
    )


def test_ledger_effect_uses_the_last_full_month():
    text = ledger_effect(ledger_rows(), monthly_savings=300.0)
    # 300 / 10,000 = +3 points; margin -200 + 300 = 100
    assert "2026-10 (last full month)" in text and "ESR 18.0% -> 21.0%" in text and "$-200 -> $100" in text
    mtd = ledger_effect(ledger_rows().filter(pl.col("is_month_to_date")), 300.0)
    # 6,000 over 19 days is 9,474 a 30-day month: +3.2 points
    assert "month to date, scaled" in mtd and "19.0% -> 22.2%" in mtd
    assert "No savings ledger yet" in ledger_effect(None, 300.0)


def test_packet_states_commitment_bands_rates_ledger_and_return_window():
    t, usage = tenant(), hourly_usage(days=60)
    rec = recommend(usage, max_hourly_commitment=40.0)
    proposal = build_proposal(t, usage, rec, [], NOW)
    text = packet_markdown(proposal, ledger_rows(), NOW, returns_used=2, cap=40.0)
    assert f"**${proposal.hourly_commitment:,.3f}/h**" in text and "of the $40.000/h cap" in text
    assert "1 year(s), no upfront" in text and "typical discount table" in text
    assert f"${rec.expected_savings:,.0f} over the term" in text
    assert f"daily P10 {rec.utilization_pct.p10:.1f}%" in text and f"P10 {rec.coverage_pct.p10:.1f}%" in text
    assert "2026-10 (last full month)" in text
    assert "until 2026-11-27 00:00 UTC" in text and "2 of 10 returns used" in text  # bought on the 20th
    [png] = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert decode_png(base64.b64decode(png))[:2] == (WIDTH, HEIGHT)
    queued = proposal.model_copy(
        update={
            "expected": {
                **proposal.expected,
                "starts_at": "2026-11-29T05:00:00+00:00",
                "renews_hourly_commitment": 12.0,
            }
        }
    )
    text = packet_markdown(queued, None, NOW)
    assert "queued: starts 2026-11-29 05:00 UTC, as the $12.000/h plan it renews ends" in text
    assert "can be cancelled at no cost" in text and "until 2026-12-01 00:00 UTC" in text  # month end cuts the 7 days


def test_sp_proposals_metadata_carries_the_packet_and_the_renewal_of_an_expiring_plan(lake, buys):  # noqa: F811
    instance, defs = dg.DagsterInstance.ephemeral(), sp_defs.build_sp_defs(tenant())
    run(defs, instance, ["sp_proposals"])
    md = latest_metadata(instance, "sp_proposals")
    assert md["approval_packet"].startswith(f"### Approval packet: `{md['proposal_id']}`")
    assert "data:image/png;base64," in md["approval_packet"] and "Return window" in md["approval_packet"]
    assert md["expiring_plans"] == [] and md["renewal_proposals"] == []  # the held plan was first seen 60 days ago
    assert "typical discount table" in md["rate_source"]

    # a plan CUR-only but first seen 350 days ago: listed with its assumed end, not renewed (it may be a 3-year plan)
    first = NOW_HOUR - timedelta(days=350)
    old = position_rows(first, 350 * 24, 1.44, 1.44, 20.0, 2.0)
    write_mart(
        "sp_position_hourly",
        pl.concat(
            [
                old.with_columns(
                    pl.lit("arn:aws:savingsplans::111111111111:savingsplan/old").alias("savings_plan_arn")
                ),
                old,
            ]
        ),
    )
    run(defs, instance, ["sp_proposals"])
    md = latest_metadata(instance, "sp_proposals")
    [expiring] = md["expiring_plans"]
    assert (expiring["within_days"], expiring["end_known"], md["renewal_proposals"]) == (30, False, [])
    # the same plan bought by Blocks (its start and term are recorded): a queued replacement is proposed
    get_state_store().record_ledger_plan(
        "acme_corp",
        {
            "savings_plan_id": "ledger-old",
            "savings_plan_arn": "arn:aws:savingsplans::111111111111:savingsplan/old",
            "hourly_commitment": 1.44,
            "term_years": 1,
            "start": first.isoformat(),
        },
    )
    run(defs, instance, ["sp_proposals"])
    md = latest_metadata(instance, "sp_proposals")
    [expiring] = md["expiring_plans"]
    assert expiring["end_known"] and expiring["savings_plan_arn"].endswith("/old")
    [renewal] = md["renewal_proposals"]
    assert expiring["renewal_proposal"] == renewal
    assert md["renewal_packets"].startswith(f"### Approval packet: `{renewal}`")
    assert "queued: starts" in md["renewal_packets"]
