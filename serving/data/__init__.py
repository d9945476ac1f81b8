"""Read-side of the marts: tenant snapshots in DuckDB and the query functions the API and Major Tom share."""
