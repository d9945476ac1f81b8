"""What Major Tom adds so a customer reads a figure right: a period that is not over yet, a filter that matched
nothing, and fixes worded for the customer (not the Blocks operator or its command line). Pure text helpers."""

from __future__ import annotations

import re

from serving.schemas import FilterHint, ProjectionRow, SpendResponse

_CLI = re.compile(r"`blocks [^`]+`")
OPERATOR_ACTION = "Operator action"
BLOCKS_SIDE = (
    "This one is on Blocks' side, not in your AWS account: Blocks' operations team is fixing it, and "
    "there is nothing for you to change."
)


def partial_spend(spend: SpendResponse, ref: int) -> str | None:
    """One line naming the partial points of a day/week/month series, or None when every point is whole."""
    partial = [pt for pt in spend.series if pt.partial]
    if not partial:
        return None
    by_period: dict[str, object] = {}
    for pt in partial:
        by_period.setdefault(pt.period_start, pt)
    shown = list(by_period.values())[:2]
    unit = spend.query.granularity
    parts = [
        f"the {unit} from {pt.period_start} holds {pt.days_with_data} of its days ({pt.partial_reason})" for pt in shown
    ]
    more = f" and {len(by_period) - len(shown)} more" if len(by_period) > len(shown) else ""
    return f"Not every {unit} here is complete [{ref}]: " + "; ".join(parts) + more + "."


def partial_projection(row: ProjectionRow, ref: int) -> str:
    """`for the month from X` or, while it is not over, `so far for the month from X (N of M days)`."""
    if not row.partial:
        return f"For the {row.period_type} from {row.period_start} [{ref}]"
    return (
        f"So far for the {row.period_type} from {row.period_start} ({row.days_with_data} of its "
        f"{row.days_in_period} days have data; the figures grow until it ends) [{ref}]"
    )


def unmatched_filters(hints: list[FilterHint], ref: int) -> str | None:
    if not hints:
        return None
    parts = [f"{h.field}={h.value}" + (f" (did you mean {', '.join(h.known[:3])}?)" if h.known else "") for h in hints]
    return f"Nothing in your data matches {'; '.join(parts)} [{ref}], so that part of the view shows no cost."


def for_customer(remediation: str | None) -> str:
    """A connection check's fix as the customer can act on it: operator actions become a word that Blocks is on
    it; commands of the Blocks CLI (run by its operators) become the Connect AWS page they back."""
    if not remediation:
        return "see the Connect AWS page"
    if remediation.startswith(OPERATOR_ACTION):
        return BLOCKS_SIDE
    return _CLI.sub("the Connect AWS page", remediation)
