"""Taking turns: a code location's sensor that must touch each tenant (poll a bucket, read the state store) does a
bounded slice per tick and resumes after the last tenant it served, so a tick's cost does not grow with the tenant
count and no tenant is starved (issue #16)."""

from __future__ import annotations

from collections.abc import Sequence


def rotation(tenant_ids: Sequence[str], after: str | None) -> list[str]:
    """Every tenant once (sorted ids), starting after `after`, the one the previous tick stopped at."""
    ids = sorted(tenant_ids)
    start = next((i for i, t in enumerate(ids) if after is not None and t > after), 0)
    return ids[start:] + ids[:start]


def next_slice(tenant_ids: Sequence[str], after: str | None, n: int) -> tuple[list[str], str | None]:
    """The next n tenants in turn, never past the round's end, and the cursor to resume from (None at the end)."""
    ids = sorted(tenant_ids)
    turn = [t for t in ids if after is None or t > after][:n] or ids[:n]
    return turn, (turn[-1] if turn and turn[-1] != ids[-1] else None)
