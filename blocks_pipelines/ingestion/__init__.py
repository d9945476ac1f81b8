"""CUR ingestion: legacy CUR, CUR 2.0 and FOCUS deliveries (and Cost Explorer) into the lake's canonical line items.

Public API (imported from the submodules, so `import blocks_pipelines.ingestion` stays cheap):
- api.ingest_delivery(tenant, source_uri, *, lake_uri=None, fmt="auto", hour_range=None) -> IngestSummary
- deliveries.discover_deliveries(tenant) -> list[Delivery]   (newest manifest per billing month)
- defs.build_ingestion_defs(tenant) -> dagster.Definitions    (asset, sensor, blocking checks)
- cost_explorer.backfill_from_cost_explorer(tenant, start, end, client=...) -> CostExplorerBackfill
- cost_explorer_defs: each tenant's `cost_explorer_line_items` asset and sensor (docs/cost_explorer.md)
- errors.IngestError and its subclasses, raised before any lake write
- `blocks ingest SOURCE --tenant ID`, `blocks ingest --from-cost-explorer --tenant ID` (cli.py)

Flow: manifest -> data files -> one streaming polars query to a local staging folder split by day (formats.py,
staging.py) -> validation on the staged files -> per day, keep rows outside the replaced slice, add the new ones,
write aside, swap (lake_writer.py) -> totals read back from the lake (IngestSummary.periods).
"""
