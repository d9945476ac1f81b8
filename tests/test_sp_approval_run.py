"""Deciding a proposal from Dagster: the approval run fails visibly on a bad request, confirms what is bought, and
`sp_proposals` shows the proposal's live status after each decision and purchase."""

from __future__ import annotations

import dagster as dg
import pytest
from test_sp_defs import T, buys, lake, latest_metadata, launch, run, tick  # noqa: F401 (fixtures)

from blocks_pipelines.savings_plans import defs as sp_defs
from blocks_pipelines.savings_plans.approval.cli import approve as approve_cli
from blocks_pipelines.savings_plans.approval.view import approval_run_config, approve_in_ui
from blocks_pipelines.savings_plans.purchase.terms import PurchaseTerms, purchase_terms
from blocks_pipelines.state import ProposalStatus, get_state_store
from sp_purchase_helpers import tenant


def latest_observation(instance, name="sp_proposals"):
    [record] = instance.fetch_observations(dg.AssetKey([T, name]), limit=1).records
    event = record.event_log_entry.asset_observation
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def approval_config(**config):
    return {"ops": {f"{T}__sp_approvals": {"config": {"decision": "approve", **config}}}}


def failed_run(defs, instance, run_config):
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey([T, "sp_approvals"])],
        run_config=run_config,
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.message


@pytest.fixture
def proposed(lake):  # noqa: F811
    instance, defs = dg.DagsterInstance.ephemeral(), sp_defs.build_sp_defs(tenant())
    run(defs, instance, ["sp_proposals"])
    return instance, defs, latest_metadata(instance, "sp_proposals")["proposal_id"]


@pytest.mark.parametrize("approver", ["", "   "])
def test_empty_approver_fails_the_run_and_decides_nothing(proposed, approver):
    instance, defs, pid = proposed
    message = failed_run(defs, instance, approval_config(proposal_id=pid, approver=approver))
    assert "approver is empty" in message and "Nothing was decided" in message
    assert get_state_store().get_proposal(pid).status is ProposalStatus.pending_approval
    assert get_state_store().get_decision(pid) is None


@pytest.mark.parametrize(
    "bad_id, says",
    [
        ("", "proposal_id is empty"),
        (f"{T}.20990101T0000.deadbeef", "unknown proposal"),
        ("not-a-proposal-id", "unknown proposal"),
        ("globex.20990101T0000.deadbeef", "belongs to tenant globex"),
    ],
)
def test_unknown_or_foreign_proposal_fails_the_run_and_lists_the_pending_ones(proposed, bad_id, says):
    instance, defs, pid = proposed
    message = failed_run(defs, instance, approval_config(proposal_id=bad_id, approver="alice"))
    assert says in message
    if says != "belongs to tenant globex":
        assert f"awaiting approval: {pid}" in message
    assert get_state_store().get_decision(pid) is None


def test_a_commitment_that_differs_from_the_proposal_is_refused(proposed):
    instance, defs, pid = proposed
    hourly = get_state_store().get_proposal(pid).hourly_commitment
    message = failed_run(
        defs, instance, approval_config(proposal_id=pid, approver="alice", confirm_hourly_commitment=hourly + 1)
    )
    assert "does not match" in message and f"{hourly:.3f} $/h" in message
    assert get_state_store().get_decision(pid) is None


def test_a_second_conflicting_decision_fails_a_repeat_of_the_same_succeeds(proposed):
    instance, defs, pid = proposed
    hourly = get_state_store().get_proposal(pid).hourly_commitment
    config = approval_config(proposal_id=pid, approver="alice", confirm_hourly_commitment=round(hourly, 3))
    run(defs, instance, ["sp_approvals"], config)
    run(defs, instance, ["sp_approvals"], config)  # a retried run of the same decision stays green
    message = failed_run(defs, instance, approval_config(proposal_id=pid, approver="bob", decision="reject"))
    assert "already decided: approve by alice" in message and "was not recorded" in message


def test_approval_confirms_the_terms_and_sp_proposals_follows_the_status(proposed, buys):  # noqa: F811
    instance, defs, pid = proposed
    store = get_state_store()
    proposal = store.get_proposal(pid)
    terms = purchase_terms(proposal)
    run(defs, instance, ["sp_approvals"], approval_config(proposal_id=pid, approver="alice", note="ok"))

    md = latest_metadata(instance, "sp_approvals")
    assert md["confirmation"].startswith(
        "Approved by alice: Blocks will buy a Compute Savings Plan of "
        f"${proposal.hourly_commitment:,.3f}/hour for {proposal.term_years} year"
    )
    assert md["total_commitment_usd"] == pytest.approx(
        proposal.hourly_commitment * 8760 * proposal.term_years, abs=0.01
    )
    assert md["expected_savings_usd_per_month"] == pytest.approx(
        proposal.expected["expected_monthly_savings"], abs=0.01
    )
    assert md["proposal_status"] == "Approved"
    seen = latest_observation(instance)
    assert (seen["proposal_id"], seen["status"], seen["decided_by"]) == (pid, "Approved", "approve by alice")
    # the approve hint of the pending proposal is overwritten: nothing is left to approve
    assert seen["approve_in_ui"].startswith("Nothing to decide: the proposal is Approved (approve by alice")
    assert seen["approve_config"] == "-"
    assert seen["what_approval_buys"] == terms.summary()

    [request] = tick(defs, instance).run_requests
    launch(defs, instance, request)
    assert buys == [pid]
    seen = latest_observation(instance)
    assert seen["status"] == "Monitoring" and seen["purchase"].startswith("completed:")
    assert "| Purchased |" in seen["history"] and "| Monitoring |" in seen["history"]
    # the runs reported every change: the sensor has nothing more to show
    assert tick(defs, instance).asset_events == []


def test_a_cli_decision_shows_on_sp_proposals_at_the_next_sensor_tick(proposed):
    instance, defs, pid = proposed
    from click.testing import CliRunner

    result = CliRunner().invoke(approve_cli, [pid, "--approver", "erin", "--reject", "--note", "too early"])
    assert result.exit_code == 0, result.output
    assert "Nothing will be bought (the proposal was a Compute Savings Plan of $" in result.output
    first = tick(defs, instance)
    observation, view = first.asset_events
    assert observation.asset_key == dg.AssetKey([T, "sp_proposals"])
    assert observation.metadata["status"].value == "Rejected"
    assert view.asset_key == dg.AssetKey([T, "sp_proposal_status"]) and view.metadata["status"].value == "Rejected"
    for event in first.asset_events:  # what the daemon does with the tick's events
        instance.report_runless_asset_event(event)
    assert tick(defs, instance).asset_events == []


def test_the_approve_hint_has_nothing_markdown_or_html_can_eat(proposed):
    _, _, pid = proposed
    proposal = get_state_store().get_proposal(pid)
    hint = approve_in_ui(T, proposal)
    assert "<" not in hint and ">" not in hint
    config = approval_run_config(T, proposal)
    assert f"```yaml\n{config}```" in hint
    # the YAML pasted as is (name filled in) is a config the run accepts
    import yaml

    parsed = yaml.safe_load(config.replace('approver: ""', "approver: alice"))
    assert parsed["ops"][f"{T}__sp_approvals"]["config"] == {
        "proposal_id": pid,
        "decision": "approve",
        "approver": "alice",
        "confirm_hourly_commitment": round(proposal.hourly_commitment, 3),
        "note": "",
    }


def test_purchase_terms_units():
    terms = PurchaseTerms(
        "p",
        hourly_commitment=2.5,
        term_years=3,
        payment_option="partial_upfront",
        expected_monthly_savings=300.0,
        expected_term_savings=10800.0,
    )
    assert terms.total_commitment == 2.5 * 8760 * 3 == 65700.0
    assert terms.upfront_payment == 32850.0 and terms.monthly_payment == pytest.approx(32850.0 / 36, abs=0.01)
    assert terms.summary() == (
        "a Compute Savings Plan of $2.500/hour for 3 years, Partial Upfront: $65,700.00 "
        "committed over the term, $32,850.00 of it upfront; expected savings $300.00/month "
        "($10,800.00 over the term)"
    )
    no_savings = PurchaseTerms("p", 1.0, 1, "no_upfront", None, None)
    assert no_savings.summary().endswith("expected savings not stated by the analysis")
    assert "upfront" not in no_savings.summary().split(":")[1].split(";")[0]


def test_the_approve_hint_links_the_approvals_asset_and_shows_the_config(proposed):
    from blocks_pipelines.savings_plans.approval.view import status_metadata

    _, _, pid = proposed
    store = get_state_store()
    md = status_metadata(store, store.get_proposal(pid))
    assert md["approve_at"].value == f"/assets/{T}/sp_approvals"
    assert f"[{T}/sp_approvals](/assets/{T}/sp_approvals)" in md["approve_in_ui"].value
    assert md["approve_config"].value == approval_run_config(T, store.get_proposal(pid))


def test_the_status_view_asset_holds_the_tenants_proposals_as_they_are_now(proposed, buys):  # noqa: F811
    instance, defs, pid = proposed

    def view():
        event = instance.get_latest_materialization_event(dg.AssetKey([T, "sp_proposal_status"]))
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}

    assert dg.AssetKey([T, "sp_proposal_status"]) in defs.resolve_asset_graph().get_all_asset_keys()
    assert view()["status"] == "PendingApproval" and f"| {pid} | PendingApproval |" in view()["proposals"]
    run(defs, instance, ["sp_approvals"], approval_config(proposal_id=pid, approver="alice"))
    assert view()["status"] == "Approved" and f"| {pid} | Approved |" in view()["proposals"]
    assert "| approve by alice |" in view()["proposals"]
    [request] = tick(defs, instance).run_requests
    launch(defs, instance, request)
    assert view()["status"] == "Monitoring" and view()["purchase"].startswith("completed:")
