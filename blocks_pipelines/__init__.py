"""Blocks data platform: CUR ingestion, spend models, Savings Plans automation, serving."""
