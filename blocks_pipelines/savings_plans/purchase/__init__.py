"""Executing an approved proposal exactly once: guardrails, the order, and the purchaser (the local ledger or AWS
savingsplans)."""
