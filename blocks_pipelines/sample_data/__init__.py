"""Sample CUR generator: realistic, deterministic Cost & Usage Reports (legacy CSV/Parquet, CUR 2.0, FOCUS 1.0)
for demo tenants and tests. Other domains call `generate_tenant_cur`; the CLI is `blocks cur generate`; the
Dagster definitions (sample_data.defs, the hourly delivery clock) load without the generator."""

from typing import Any

__all__ = ["GenerationSummary", "MonthSummary", "SavingsPlanSpec", "generate_tenant_cur"]


def __getattr__(name: str) -> Any:
    # PEP 562: the generator (polars) is imported on first use, so loading the Dagster definitions stays light.
    if name == "SavingsPlanSpec":
        from blocks_pipelines.sample_data.commitments import SavingsPlanSpec

        return SavingsPlanSpec
    if name in __all__:
        from blocks_pipelines.sample_data import generator

        return getattr(generator, name)
    raise AttributeError(name)
