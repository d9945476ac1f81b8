"""The durable state of the platform: audit log, recommendation statuses, connections, and the Savings Plans
proposal -> approval -> purchase records.

Every rule that keeps money safe lives here, on top of two conditional writes:
- a proposal changes status only through a legal transition, written with compare-and-swap on its version;
- one decision per proposal (create-if-absent keyed by proposal id): two racing approvals give one winner;
- one purchase per proposal: a run must *claim* the proposal (create-if-absent) before calling AWS, and only the
  claim holder can complete it. A crashed claim can be taken over after its lease, by one taker only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from blocks_pipelines.state.alerts import AlertRecords
from blocks_pipelines.state.backend import Backend
from blocks_pipelines.state.records import (
    RECOMMENDATION_STATUSES,
    Approval,
    AuditEvent,
    ConflictError,
    NotFoundError,
    Proposal,
    ProposalStatus,
    Purchase,
    PurchaseState,
    StatusChange,
    check_transition,
    tenant_of_proposal,
    utcnow,
)

CAS_RETRIES = 20  # a compare-and-swap loses only to a concurrent writer; a handful of rereads settles any race
DEFAULT_LEASE = timedelta(minutes=15)
ANY = object()  # set_recommendation_status without a compare-and-swap


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def proposal_target(proposal_id: str) -> str:
    return f"{tenant_of_proposal(proposal_id)}/proposal/{proposal_id}"


class StateStore(AlertRecords):
    def __init__(self, backend: Backend):
        self.backend = backend

    # ---- audit -------------------------------------------------------------------------------------------------
    def append_audit(self, actor: str, action: str, target: str, result: str, details: Mapping[str, Any]) -> None:
        event = AuditEvent(at=utcnow(), actor=actor, action=action, target=target, result=result, details=dict(details))
        # a random suffix keeps two events in the same microsecond apart; the log is never rewritten
        sk = f"{event.at.isoformat()}#{uuid.uuid4().hex}"
        if not self.backend.put_new("audit", target, sk, _dump(event)):
            raise ConflictError(f"audit event {target}/{sk} already exists")

    def list_audit(self, target_prefix: str | None = None) -> list[AuditEvent]:
        events = [AuditEvent.model_validate(d) for d in self.backend.scan("audit")]
        if target_prefix:
            events = [e for e in events if e.target.startswith(target_prefix)]
        return sorted(events, key=lambda e: e.at)

    # ---- recommendation statuses (user choices merged into the recommendations mart at read time) ---------------
    def set_recommendation_status(
        self, tenant_id: str, recommendation_id: str, status: str, actor: str, expected: str | None | object = ANY
    ) -> None:
        """Set a recommendation's status; last writer wins unless `expected` is given: the stored status the caller
        saw (None: none stored yet, the mart's default applied). Then the write is a compare-and-swap, atomic across
        processes, and ConflictError says another writer changed it since."""
        if status not in RECOMMENDATION_STATUSES:
            raise ValueError(
                f"recommendation {recommendation_id}: status {status!r} is not one of "
                f"{', '.join(RECOMMENDATION_STATUSES)}"
            )
        doc = {"recommendation_id": recommendation_id, "status": status, "actor": actor, "at": utcnow().isoformat()}
        table = "recommendation_status"
        if expected is ANY:
            self.backend.upsert(table, tenant_id, recommendation_id, doc)
        else:
            rec = self.backend.get(table, tenant_id, recommendation_id)
            stored = rec.doc["status"] if rec else None
            won = stored == expected and (
                self.backend.put_new(table, tenant_id, recommendation_id, doc)
                if rec is None
                else self.backend.replace(table, tenant_id, recommendation_id, doc, rec.version)
            )
            if not won:
                raise ConflictError(
                    f"recommendation {recommendation_id} of {tenant_id} changed meanwhile "
                    f"(stored status {stored!r}, expected {expected!r}): reload and retry"
                )
        self.append_audit(
            actor,
            "recommendation.set_status",
            f"{tenant_id}/recommendation/{recommendation_id}",
            "ok",
            {"status": status},
        )

    def get_recommendation_statuses(self, tenant_id: str) -> dict[str, str]:
        return {d["recommendation_id"]: d["status"] for d in self.backend.query("recommendation_status", tenant_id)}

    # ---- connections ---------------------------------------------------------------------------------------------
    def put_connection(self, tenant_id: str, connection: Mapping[str, Any] | BaseModel, actor: str = "system") -> None:
        doc = _dump(connection) if isinstance(connection, BaseModel) else dict(connection)
        self.backend.upsert("connections", tenant_id, "aws", doc)
        self.append_audit(
            actor,
            "connection.put",
            f"{tenant_id}/connection",
            "ok",
            {k: doc.get(k) for k in ("role_arn", "status", "scopes") if k in doc},
        )

    def get_connection(self, tenant_id: str) -> dict[str, Any] | None:
        rec = self.backend.get("connections", tenant_id, "aws")
        return rec.doc if rec else None

    # ---- proposals -----------------------------------------------------------------------------------------------
    def create_proposal(self, proposal: Proposal, actor: str) -> Proposal:
        if proposal.status is not ProposalStatus.analyzing:
            raise ValueError(
                f"proposal {proposal.proposal_id}: new proposals start in Analyzing, not {proposal.status.value}"
            )
        if tenant_of_proposal(proposal.proposal_id) != proposal.tenant_id:
            raise ValueError(f"proposal {proposal.proposal_id} does not belong to tenant {proposal.tenant_id}")
        proposal = proposal.model_copy(
            update={"history": [StatusChange(status=proposal.status, at=proposal.created_at, actor=actor)]}
        )
        if not self.backend.put_new("proposals", proposal.tenant_id, proposal.proposal_id, _dump(proposal)):
            raise ConflictError(f"proposal {proposal.proposal_id} already exists")
        self.append_audit(
            actor,
            "proposal.create",
            proposal_target(proposal.proposal_id),
            "ok",
            {"hourly_commitment": proposal.hourly_commitment, "fingerprint": proposal.data_fingerprint},
        )
        return proposal

    def get_proposal(self, proposal_id: str) -> Proposal:
        rec = self.backend.get("proposals", tenant_of_proposal(proposal_id), proposal_id)
        if rec is None:
            raise NotFoundError(f"proposal {proposal_id} not found; list them with `blocks sp proposals --tenant ...`")
        return Proposal.model_validate(rec.doc)

    def list_proposals(self, tenant_id: str, statuses: Iterable[ProposalStatus] | None = None) -> list[Proposal]:
        wanted = set(statuses) if statuses is not None else None
        out = [Proposal.model_validate(d) for d in self.backend.query("proposals", tenant_id)]
        return sorted((p for p in out if wanted is None or p.status in wanted), key=lambda p: p.created_at)

    def transition_proposal(
        self, proposal_id: str, target: ProposalStatus, actor: str, reason: str | None = None
    ) -> Proposal:
        """Move a proposal to `target`, or raise IllegalTransitionError if its *current* status (re-read after any
        lost race) does not lead there. Concurrent callers asking for the same move: one succeeds, the other raises."""
        tenant_id = tenant_of_proposal(proposal_id)
        for _ in range(CAS_RETRIES):
            rec = self.backend.get("proposals", tenant_id, proposal_id)
            if rec is None:
                raise NotFoundError(f"proposal {proposal_id} not found")
            current = Proposal.model_validate(rec.doc)
            try:
                check_transition(proposal_id, current.status, target)
            except Exception as exc:
                self.append_audit(
                    actor,
                    f"proposal.{target.value}",
                    proposal_target(proposal_id),
                    "refused",
                    {"from": current.status.value, "reason": str(exc)},
                )
                raise
            now = utcnow()
            updated = current.model_copy(
                update={
                    "status": target,
                    "status_reason": reason,
                    "history": [*current.history, StatusChange(status=target, at=now, actor=actor, reason=reason)],
                }
            )
            if self.backend.replace("proposals", tenant_id, proposal_id, _dump(updated), rec.version):
                self.append_audit(
                    actor,
                    f"proposal.{target.value}",
                    proposal_target(proposal_id),
                    "ok",
                    {"from": current.status.value, "reason": reason},
                )
                return updated
        raise ConflictError(f"proposal {proposal_id}: gave up after {CAS_RETRIES} concurrent updates")

    # ---- approvals -----------------------------------------------------------------------------------------------
    def record_decision(self, approval: Approval) -> tuple[Approval, bool]:
        """Store the first decision for a proposal. Returns (the stored decision, whether this call made it)."""
        won = self.backend.put_new("approvals", approval.tenant_id, approval.proposal_id, _dump(approval))
        stored = approval if won else self.get_decision(approval.proposal_id)
        if stored is None:  # put_new refused because a decision exists, and decisions are never deleted
            raise ConflictError(f"proposal {approval.proposal_id}: decision vanished while recording")
        self.append_audit(
            approval.approver,
            f"approval.{approval.decision}",
            proposal_target(approval.proposal_id),
            "recorded" if won else "duplicate_ignored",
            {
                "source": approval.source,
                "note": approval.note,
                "winning_decision": stored.decision,
                "winning_approver": stored.approver,
            },
        )
        return stored, won

    def get_decision(self, proposal_id: str) -> Approval | None:
        rec = self.backend.get("approvals", tenant_of_proposal(proposal_id), proposal_id)
        return Approval.model_validate(rec.doc) if rec else None

    # ---- purchases -----------------------------------------------------------------------------------------------
    def claim_purchase(self, proposal_id: str, claimant: str, lease: timedelta = DEFAULT_LEASE) -> Purchase | None:
        """The right to call the purchase API for this proposal, or None when a purchase completed or another live
        claim holds it. A failed attempt or a claim older than `lease` (its run crashed) can be taken over once."""
        tenant_id = tenant_of_proposal(proposal_id)
        now = utcnow()
        fresh = Purchase(
            proposal_id=proposal_id,
            tenant_id=tenant_id,
            state=PurchaseState.claimed,
            claim_token=uuid.uuid4().hex,
            claimed_at=now,
        )
        target = proposal_target(proposal_id)
        if self.backend.put_new("purchases", tenant_id, proposal_id, _dump(fresh)):
            self.append_audit(claimant, "purchase.claim", target, "claimed", {"claim_token": fresh.claim_token})
            return fresh
        rec = self.backend.get("purchases", tenant_id, proposal_id)
        if rec is None:  # purchases are never deleted; a vanished claim means someone edited the store by hand
            raise ConflictError(f"purchase {proposal_id}: claim vanished while reading it")
        existing = Purchase.model_validate(rec.doc)
        stale = existing.state is PurchaseState.claimed and now - existing.claimed_at > lease
        if existing.state is PurchaseState.completed or (existing.state is PurchaseState.claimed and not stale):
            self.append_audit(
                claimant, "purchase.claim", target, f"refused_{existing.state.value}", {"attempt": existing.attempt}
            )
            return None
        taken = existing.model_copy(
            update={
                "state": PurchaseState.claimed,
                "claim_token": uuid.uuid4().hex,
                "attempt": existing.attempt + 1,
                "claimed_at": now,
                "error": None,
            }
        )
        if not self.backend.replace("purchases", tenant_id, proposal_id, _dump(taken), rec.version):
            self.append_audit(claimant, "purchase.claim", target, "refused_lost_race", {})
            return None
        self.append_audit(
            claimant,
            "purchase.claim",
            target,
            "taken_over",
            {"attempt": taken.attempt, "previous_state": existing.state.value},
        )
        return taken

    def _finish_claim(self, claim: Purchase, actor: str, **changes: Any) -> Purchase:
        rec = self.backend.get("purchases", claim.tenant_id, claim.proposal_id)
        current = Purchase.model_validate(rec.doc) if rec else None
        if current is None or current.state is not PurchaseState.claimed or current.claim_token != claim.claim_token:
            raise ConflictError(f"purchase {claim.proposal_id}: claim {claim.claim_token} is no longer held")
        done = current.model_copy(update={"completed_at": utcnow(), **changes})
        if not self.backend.replace("purchases", claim.tenant_id, claim.proposal_id, _dump(done), rec.version):
            raise ConflictError(f"purchase {claim.proposal_id}: claim {claim.claim_token} lost to a concurrent writer")
        self.append_audit(
            actor,
            "purchase.finish",
            proposal_target(claim.proposal_id),
            done.state.value,
            {"savings_plan_id": done.savings_plan_id, "error": done.error, "attempt": done.attempt},
        )
        return done

    def complete_purchase(
        self,
        claim: Purchase,
        actor: str,
        *,
        savings_plan_id: str,
        savings_plan_arn: str | None,
        hourly_commitment: float,
        purchaser: str,
        details: Mapping[str, Any] | None = None,
    ) -> Purchase:
        return self._finish_claim(
            claim,
            actor,
            state=PurchaseState.completed,
            savings_plan_id=savings_plan_id,
            savings_plan_arn=savings_plan_arn,
            hourly_commitment=hourly_commitment,
            purchaser=purchaser,
            details=dict(details or {}),
        )

    def fail_purchase(self, claim: Purchase, actor: str, error: str) -> Purchase:
        return self._finish_claim(claim, actor, state=PurchaseState.failed, error=error)

    def get_purchase(self, proposal_id: str) -> Purchase | None:
        rec = self.backend.get("purchases", tenant_of_proposal(proposal_id), proposal_id)
        return Purchase.model_validate(rec.doc) if rec else None

    def list_purchases(self, tenant_id: str) -> list[Purchase]:
        return [Purchase.model_validate(d) for d in self.backend.query("purchases", tenant_id)]

    # ---- local ledger of simulated plans (BLOCKS_ENV=local buys nothing) -----------------------------------------
    def record_ledger_plan(self, tenant_id: str, plan: Mapping[str, Any]) -> bool:
        """Keyed by the plan id, so recording the same simulated purchase twice keeps one plan."""
        return self.backend.put_new("ledger", tenant_id, str(plan["savings_plan_id"]), dict(plan))

    def list_ledger_plans(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.backend.query("ledger", tenant_id)
