"""DynamoDB backend (production). One table per record kind, `{prefix}_{kind}`, keyed (pk HASH, sk RANGE);
conditional writes use ConditionExpression so racing writers get exactly one winner, as in SQLite."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import ClientError

from blocks_pipelines.state.backend import TABLES, Versioned


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class DynamoBackend:
    def __init__(self, table_prefix: str, region: str, endpoint_url: str | None = None, create_missing: bool = True):
        self.prefix = table_prefix
        self.client = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
        if create_missing:
            self._ensure_tables()

    def table_name(self, table: str) -> str:
        return f"{self.prefix}_{table}"

    def _ensure_tables(self) -> None:
        existing: set[str] = set()
        for page in self.client.get_paginator("list_tables").paginate():
            existing.update(page["TableNames"])
        for table in TABLES:
            name = self.table_name(table)
            if name in existing:
                continue
            try:
                self.client.create_table(
                    TableName=name,
                    AttributeDefinitions=[
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as exc:  # another process created it between list and create
                if exc.response["Error"]["Code"] != "ResourceInUseException":
                    raise
            self.client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    @staticmethod
    def _item(pk: str, sk: str, doc: dict[str, Any], version: int) -> dict[str, Any]:
        return {
            "pk": {"S": pk},
            "sk": {"S": sk},
            "version": {"N": str(version)},
            "doc": {"S": json.dumps(doc, default=str)},
        }

    def get(self, table: str, pk: str, sk: str) -> Versioned | None:
        out = self.client.get_item(
            TableName=self.table_name(table), Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        )
        item = out.get("Item")
        return Versioned(json.loads(item["doc"]["S"]), int(item["version"]["N"])) if item else None

    def put_new(self, table: str, pk: str, sk: str, doc: dict[str, Any]) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name(table),
                Item=self._item(pk, sk, doc, 1),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def replace(self, table: str, pk: str, sk: str, doc: dict[str, Any], expected_version: int) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name(table),
                Item=self._item(pk, sk, doc, expected_version + 1),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": str(expected_version)}},
            )
            return True
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def upsert(self, table: str, pk: str, sk: str, doc: dict[str, Any]) -> None:
        self.client.update_item(
            TableName=self.table_name(table),
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression="SET doc = :d ADD version :one",
            ExpressionAttributeValues={":d": {"S": json.dumps(doc, default=str)}, ":one": {"N": "1"}},
        )

    def query(self, table: str, pk: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name(table),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ConsistentRead=True,
        )
        return [json.loads(item["doc"]["S"]) for page in pages for item in page["Items"]]

    def scan(self, table: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("scan").paginate(TableName=self.table_name(table), ConsistentRead=True)
        items = [item for page in pages for item in page["Items"]]
        items.sort(key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
        return [json.loads(item["doc"]["S"]) for item in items]
