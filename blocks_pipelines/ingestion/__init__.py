"""CUR ingestion: legacy CUR, CUR 2.0 and FOCUS deliveries (and Cost Explorer) into the lake's canonical line items.

Public API (imported from the submodules, so `import blocks_pipelines.ingestion` stays cheap):
- ingest.ingest_delivery(tenant, source_uri, *, lake_uri=None, fmt="auto", hour_range=None) -> IngestSummary
- deliveries.discover_deliveries(tenant) -> list[Delivery]   (newest manifest per billing month)
- defs.build_ingestion_defs(tenant) -> dagster.Definitions    (asset, blocking checks)
- delivery_sensors: the code location's delivery sensors (S3 notifications via SQS, polling as the fallback)
- cost_explorer.backfill_from_cost_explorer(tenant, start, end, client=...) -> CostExplorerBackfill
- cost_explorer_defs: each tenant's `cost_explorer_line_items` asset and sensor (docs/cost_explorer.md)
- errors.IngestError and its subclasses, raised before any lake write
- `blocks ingest SOURCE --tenant ID`, `blocks ingest --from-cost-explorer --tenant ID` (cli.py)

Flow: manifest -> data files -> one streaming polars query to a local scratch folder split by day (formats.py,
normalize.py) -> validation on the staged files -> per billing month, the next version written aside with the rows
outside the replaced slice kept, then the month's pointer swapped (lake_writer.py, lake/months.py) -> totals read
back from the lake (IngestSummary.periods).
"""
