"""What the state store keeps: audit events, Savings Plans proposals, approvals and purchases.

The proposal lifecycle is a small state machine; every status change goes through `check_transition` so both
backends refuse the same illegal moves.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RECOMMENDATION_STATUSES = ("open", "accepted", "dismissed", "done", "snoozed")

# Tenant ids never contain '.', so a proposal id carries its tenant unambiguously: `{tenant}.{stamp}.{hash}`.
# That lets `blocks sp approve PROPOSAL_ID` and the Dagster approval event name a proposal with one string.
PROPOSAL_ID_RE = re.compile(r"^(?P<tenant>[a-z][a-z0-9_]{1,62})\.(?P<stamp>\d{8}T\d{4})\.(?P<digest>[0-9a-f]{8})$")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StateError(Exception):
    """Base class for state store refusals."""


class ConflictError(StateError):
    """A conditional write lost: someone else changed the record first."""


class IllegalTransitionError(StateError):
    """A proposal was asked to move to a status its current status does not lead to."""


class NotFoundError(StateError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class ProposalStatus(str, Enum):
    analyzing = "Analyzing"
    pending_approval = "PendingApproval"
    approved = "Approved"
    purchased = "Purchased"
    monitoring = "Monitoring"
    rejected = "Rejected"
    expired = "Expired"
    blocked = "Blocked"
    returned = "Returned"  # a rollback proposal whose plan was returned or, if queued, cancelled


S = ProposalStatus
TRANSITIONS: dict[ProposalStatus, frozenset[ProposalStatus]] = {
    S.analyzing: frozenset({S.pending_approval, S.blocked}),
    S.pending_approval: frozenset({S.approved, S.rejected, S.expired, S.blocked}),
    # an approved proposal can still be stopped by a guardrail or run out of time before the purchase runs
    S.approved: frozenset({S.purchased, S.returned, S.blocked, S.expired}),
    S.purchased: frozenset({S.monitoring}),
    S.monitoring: frozenset(),
    S.rejected: frozenset(),
    S.expired: frozenset(),
    S.blocked: frozenset(),
    S.returned: frozenset(),
}
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def check_transition(proposal_id: str, current: ProposalStatus, target: ProposalStatus) -> None:
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing (terminal status)"
        raise IllegalTransitionError(
            f"proposal {proposal_id}: cannot move from {current.value} to {target.value}; "
            f"{current.value} leads to {allowed}"
        )


def tenant_of_proposal(proposal_id: str) -> str:
    m = PROPOSAL_ID_RE.match(proposal_id)
    if not m:
        raise ValueError(
            f"proposal id {proposal_id!r} is not of the form <tenant>.<YYYYMMDDTHHMM>.<8 hex>; "
            "copy it from `blocks sp proposals --tenant <tenant>` or the sp_proposals asset metadata"
        )
    return m.group("tenant")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusChange(_Record):
    status: ProposalStatus
    at: datetime
    actor: str
    reason: str | None = None


class Proposal(_Record):
    proposal_id: str = Field(pattern=PROPOSAL_ID_RE.pattern)
    tenant_id: str
    status: ProposalStatus = ProposalStatus.analyzing
    status_reason: str | None = None
    hourly_commitment: float = Field(ge=0, description="additional $/h to buy, at Savings Plans rates")
    existing_hourly_commitment: float = Field(0.0, ge=0)
    term_years: Literal[1, 3] = 1
    payment_option: Literal["no_upfront", "partial_upfront", "all_upfront"] = "no_upfront"
    expected: dict[str, Any] = Field(default_factory=dict, description="analyzer output: bands, savings, curve")
    rationale: str = ""
    data_fingerprint: str = Field(description="hash of the usage window the analysis read")
    window_start: datetime | None = None
    window_end: datetime | None = None
    created_at: datetime
    expires_at: datetime
    history: list[StatusChange] = Field(default_factory=list)

    def is_expired(self, now: datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires_at


class Approval(_Record):
    proposal_id: str
    tenant_id: str
    decision: Literal["approve", "reject"]
    approver: str = Field(min_length=1)
    note: str = ""
    source: str = Field("cli", description="where the decision was made: cli, dagster, api")
    decided_at: datetime


class PurchaseState(str, Enum):
    claimed = "claimed"
    completed = "completed"
    failed = "failed"


class Purchase(_Record):
    proposal_id: str
    tenant_id: str
    state: PurchaseState
    claim_token: str
    attempt: int = 1
    claimed_at: datetime
    completed_at: datetime | None = None
    hourly_commitment: float | None = None
    savings_plan_id: str | None = None
    savings_plan_arn: str | None = None
    purchaser: str | None = Field(None, description="aws or ledger")
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class AuditEvent(_Record):
    at: datetime
    actor: str
    action: str
    target: str
    result: str
    details: dict[str, Any] = Field(default_factory=dict)
