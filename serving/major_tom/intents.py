"""Which grounded question is being asked. Keyword rules on purpose: predictable, testable, no model needed;
anything else is refused rather than guessed."""

from __future__ import annotations

import re

SAVINGS = "savings_source"
NEXT_ACTIONS = "next_actions"
EXPLAIN_VIEW = "explain_view"
COST_DRIVERS = "cost_drivers"
DATA_FRESHNESS = "data_freshness"
GUARANTEE = "guarantee"
BILL_JUMP = "bill_jump"
UNKNOWN = "unknown"

DEEP_LINK = re.compile(r"(/app/[a-z-]+)(?:\?(\S*))?")

_RULES: tuple[tuple[str, re.Pattern], ...] = (
    (
        DATA_FRESHNESS,
        re.compile(
            r"\b(up[ -]to[ -]date|fresh(ness)?|last (updated?|refresh\w*|delivery)|latest data|"
            r"today'?s (spend|cost|data|bill)|(data|spend|cost)s? (is |are )?(missing|late|delayed|"
            r"behind)|(aws )?connection|connected)\b"
        ),
    ),
    (EXPLAIN_VIEW, re.compile(r"\bexplain\b.*\b(view|chart|page|this|dashboard)\b|\bwhat am i looking at\b")),
    (
        GUARANTEE,
        re.compile(
            r"\b(guarantee[ds]?|promised?|twenty percent|(savings )?ledger|margin|shortfall|esr|"
            r"effective savings rate|regret|hindsight)\b|\b20 ?%"
        ),
    ),
    (
        NEXT_ACTIONS,
        re.compile(
            r"\b(what should i do|next steps?|next actions?|what to do|top actions?|recommend\w*|"
            r"how (can|do) i save|save more)\b"
        ),
    ),
    (
        SAVINGS,
        re.compile(
            r"\b(where|how)\b.*\bsav(ings?|ed|e)\b.*\b(come|from|coming)\b|\bsavings? (come|from)\b|"
            r"\bsource of (my )?savings\b|\bwhere .*\bsav"
        ),
    ),
    # before cost drivers: "why did my bill jump?" is answered from the detected anomalies first
    (
        BILL_JUMP,
        re.compile(
            r"\b(jump(s|ed)?|spik(e|es|ed)|anomal\w*|unusual|unexpected|surge[sd]?|"
            r"why .*\bbill\b.*\b(up|high|higher|rise|rose|increased?))\b"
        ),
    ),
    (
        COST_DRIVERS,
        re.compile(
            r"\b(what changed|changes?|drives?|drivers?|driving|why .*(up|down|increase|higher|"
            r"lower)|increase|biggest cost|most expensive)\b"
        ),
    ),
)


def classify(message: str, has_context: bool) -> str:
    text = message.lower()
    for intent, pattern in _RULES:
        if pattern.search(text):
            return intent
    if has_context or DEEP_LINK.search(message):
        return EXPLAIN_VIEW if re.search(r"\b(explain|this|view|mean)\b", text) else UNKNOWN
    return UNKNOWN
