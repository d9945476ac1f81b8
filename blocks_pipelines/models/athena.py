"""The Glue table the Athena target reads as source('lake', 'cur_line_items'), made from the canonical schema.

A partition is one (tenant, billing month): its location holds the month's symlink manifest, the list of the day
files of the month's current version (blocks_pipelines.lake.months rewrites it after each pointer swap), so Athena
reads a whole month version, never a month half replaced nor the folders of superseded or crashed writes.
Partition projection (tenant_id injected, billing_period a month range) means no crawler and no MSCK REPAIR: a
month ingestion commits is queryable at once, and every query must name its tenant (the staging model does).
"""

from __future__ import annotations

import polars as pl

from blocks_pipelines.ingestion.schema import CANONICAL_COLUMNS
from blocks_pipelines.lake.layout import athena_manifests_root

PARTITION_COLUMNS = {"tenant_id": "string", "billing_period": "string"}
_HIVE_TYPES = {pl.String: "string", pl.Float64: "double", pl.Date: "date", pl.Int64: "bigint", pl.Boolean: "boolean"}


def hive_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    for polars_type, hive in _HIVE_TYPES.items():
        if dtype == polars_type:
            return hive
    raise ValueError(f"canonical column type {dtype} has no Athena type: add it to _HIVE_TYPES")


def lake_table_ddl(database: str, lake_uri: str, table: str = "cur_line_items") -> str:
    if not lake_uri.startswith("s3://"):
        raise ValueError(f"Athena reads S3 only: BLOCKS_LAKE_URI={lake_uri!r} must be an s3://bucket/prefix")
    location = athena_manifests_root(lake_uri) + "/"
    columns = ",\n".join(
        f"  `{c.name}` {hive_type(c.dtype)}" for c in CANONICAL_COLUMNS if c.name not in PARTITION_COLUMNS
    )
    partitions = ", ".join(f"`{name}` {typ}" for name, typ in PARTITION_COLUMNS.items())
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{table}` (
{columns}
)
PARTITIONED BY ({partitions})
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{location}'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.billing_period.type' = 'date',
  'projection.billing_period.format' = 'yyyy-MM',
  'projection.billing_period.range' = '2015-01,NOW',
  'projection.billing_period.interval' = '1',
  'projection.billing_period.interval.unit' = 'MONTHS',
  'storage.location.template' = '{location}tenant_id=${{tenant_id}}/billing_period=${{billing_period}}/'
)"""


def create_lake_table(athena_client, *, database: str, lake_uri: str, work_group: str, output_uri: str) -> str:
    """Submit the DDL through Athena (boto3 client); returns the query execution id to poll."""
    response = athena_client.start_query_execution(
        QueryString=lake_table_ddl(database, lake_uri),
        QueryExecutionContext={"Database": database},
        WorkGroup=work_group,
        ResultConfiguration={"OutputLocation": output_uri},
    )
    return response["QueryExecutionId"]
