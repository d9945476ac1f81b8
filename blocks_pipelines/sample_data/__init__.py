"""Sample CUR generator: realistic, deterministic Cost & Usage Reports (legacy CSV/Parquet, CUR 2.0, FOCUS 1.0)
for demo tenants and tests. Other domains call `generate_tenant_cur`; the CLI is `blocks cur generate`."""

from blocks_pipelines.sample_data.commitments import SavingsPlanSpec
from blocks_pipelines.sample_data.generator import GenerationSummary, MonthSummary, generate_tenant_cur

__all__ = ["GenerationSummary", "MonthSummary", "SavingsPlanSpec", "generate_tenant_cur"]
