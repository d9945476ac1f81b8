"""Legacy CUR, CUR 2.0 and FOCUS columns mapped onto the canonical schema, as lazy polars expressions.

Legacy names (`lineItem/UsageStartDate`), Athena-style names (`line_item_usage_start_date`) and CUR 2.0 names share one
mapping: a name squashed to lowercase letters and digits is the same in all three (`lineitemusagestartdate`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from blocks_pipelines.ingestion.errors import FormatDetectionError, MissingColumnError
from blocks_pipelines.ingestion.schema import CANONICAL_SCHEMA, LINE_ITEM_TYPES
from blocks_pipelines.ingestion.timeparse import interval_part, parse_fixed, parse_utc, sniff_format

FORMATS = ("cur1", "cur2", "focus")
SAMPLE_ROWS = 200
USE_LOOKUPS = True
HASH_SEED = 0x5EED


def squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def blank_as_null(e: pl.Expr) -> pl.Expr:
    """Text with blanks as null. Literal null markers (NULL, \\N) never get here: the CSV reader reads them as null
    (readers.NULL_MARKERS), and NaN, pandas' marker for numbers, parses as a float that number() makes null."""
    return pl.when(e.str.len_bytes() > 0).then(e)


@dataclass(frozen=True)
class SourceContext:
    tenant_id: str
    delivery_id: str
    file: str
    billing_period: str | None = None  # from the manifest, when there is one


@dataclass(frozen=True)
class Check:
    """A value that failed to read: `fails` is true on rows where `column` (a source column) is unusable."""

    column: str
    fails: pl.Expr
    problem: str


# Column names that identify each format (a FOCUS file of any version, 1.0 to 1.3, has these two).
FOCUS_SIGNATURE = ("BilledCost", "ChargePeriodStart")
DETECTION_FIX = (
    "ingest a cost export as the provider writes it: from AWS a CUR 2.0 or FOCUS export (AWS Data Exports) or a "
    "legacy CUR; from Azure, Google Cloud or OCI their FOCUS export. If the file is one of these with renamed "
    "columns, pass --format cur1|cur2|focus"
)


def _columns_seen(columns: list[str], limit: int = 12) -> str:
    shown = ", ".join(columns[:limit])
    return f"{shown}, ... ({len(columns)} columns)" if len(columns) > limit else f"{shown} ({len(columns)} columns)"


def detect_format(columns: list[str], file: str | None = None) -> str:
    names = {c.lstrip("\ufeff") for c in columns}  # a UTF-8 BOM sticks to the first header of some CSV exports
    if set(FOCUS_SIGNATURE) <= names:
        return "focus"
    squashed = {squash(c) for c in columns}
    if "lineitemlineitemtype" not in squashed:
        raise FormatDetectionError(
            "the columns match no format the platform reads (legacy CUR, CUR 2.0, FOCUS 1.0-1.3): no "
            f"lineItem/LineItemType and no BilledCost + ChargePeriodStart; columns seen: {_columns_seen(columns)}",
            file=file,
            fix=DETECTION_FIX,
        )
    if any("/" in c for c in columns):
        return "cur1"
    # CUR 2.0 keeps product attributes, tags and cost categories in map columns and adds billing_period.
    return "cur2" if names & {"product", "resource_tags", "billing_period", "cost_category"} else "cur1"


@dataclass(frozen=True)
class Lookup:
    """A value computed once per distinct value of `column` and mapped back: map columns repeat the same few
    tag sets millions of times, so JSON-encoding the distinct ones is several times cheaper than every row."""

    column: str
    name: str
    expr: pl.Expr
    dtype: pl.DataType = pl.String


def _distinct_then_map_back(lookups: list[Lookup]):
    """A batch function over a struct of the looked-up columns: evaluate the lookups on the batch's distinct
    values only, then give every row its value. One call per streaming batch (~25k rows) for all the columns (tags
    and cost categories together: half the calls and hashing of one call per column), and nothing waits for the whole
    file: measured on a 2M-row CUR 2.0 month, a pre-pass collecting distinct values over the file cost more than it
    saved. Rows are keyed by a 64-bit hash; a batch whose distinct hashes are fewer than its distinct values (a
    collision) is computed per row instead, so a collision can never hand a row another row's tags."""
    dtype = pl.Struct({lk.name: lk.dtype for lk in lookups})
    exprs = [lk.expr.alias(lk.name) for lk in lookups]

    def fn(batch: pl.Series) -> pl.Series:
        keys = batch.hash(HASH_SEED)
        first = keys.is_first_distinct()
        distinct = batch.filter(first)
        if distinct.len() != batch.n_unique():
            return batch.struct.unnest().select(pl.struct(exprs)).to_series().cast(dtype)
        values = distinct.struct.unnest().select(pl.struct(exprs)).to_series().cast(dtype)
        return keys.replace_strict(keys.filter(first), values, return_dtype=dtype)

    return dtype, fn


class _Columns:
    """Finds source columns by squashed name and turns them into typed expressions, recording read checks."""

    def __init__(
        self, schema: dict[str, pl.DataType], sample: pl.DataFrame | None, fast: bool, use_lookups: bool = True
    ):
        self.schema = schema
        self.use_lookups = use_lookups
        self.sample = sample  # first rows of the file, to pick one timestamp format per column
        self.fast = fast
        self.by_squash: dict[str, str] = {}
        for c in schema:
            self.by_squash.setdefault(squash(c), c)
        self.checks: list[Check] = []
        self.lookups: list[Lookup] = []

    def find(self, *keys: str) -> str | None:
        for k in keys:
            if k in self.schema:
                return k
            if squash(k) in self.by_squash:
                return self.by_squash[squash(k)]
        return None

    def text(self, *keys: str) -> pl.Expr:
        col = self.find(*keys)
        if col is None:
            return pl.lit(None, pl.String)
        e = pl.col(col).cast(pl.String)
        return blank_as_null(e) if self.schema[col] == pl.String else e

    def number(self, *keys: str) -> pl.Expr:
        col = self.find(*keys)
        if col is None:
            return pl.lit(None, pl.Float64)
        dtype = self.schema[col]
        if dtype != pl.String:
            return pl.col(col).cast(pl.Float64).fill_nan(None)
        raw = pl.col(col).str.strip_chars()
        lenient = raw.cast(pl.Float64, strict=False)
        self.checks.append(Check(col, (raw.str.len_bytes() > 0) & lenient.is_null(), "not a number"))
        # strict: a bad value stops the read, and only then are the checks run to say which cell it was.
        # NaN (written by pandas and Spark for a missing number) is null, as in a nullable Parquet column.
        return pl.col(col).cast(pl.Float64, strict=True).fill_nan(None)

    def _text_time(self, col: str, raw: pl.Expr) -> pl.Expr:
        fmt = None
        if self.fast and self.sample is not None and col in self.sample.columns:
            fmt = sniff_format(self.sample.get_column(col).cast(pl.String).drop_nulls().to_list())
        return parse_fixed(raw, fmt, strict=True) if fmt else parse_utc(raw, pl.String, strict=True)

    def time(self, *keys: str, interval: str | None = None, part: int = 0) -> pl.Expr:
        col = self.find(*keys)
        if col is not None:
            if self.schema[col] != pl.String:
                return parse_utc(pl.col(col), self.schema[col])
            lenient = parse_utc(pl.col(col), pl.String)
            self.checks.append(Check(col, (pl.col(col).str.len_bytes() > 0) & lenient.is_null(), "not a timestamp"))
            return self._text_time(col, pl.col(col))
        icol = self.find(interval) if interval else None
        if icol is None:
            return pl.lit(None, pl.Datetime("us", "UTC"))
        raw = interval_part(pl.col(icol), part)
        lenient = parse_utc(raw, pl.String)
        self.checks.append(Check(icol, (pl.col(icol).str.len_bytes() > 0) & lenient.is_null(), "not a time interval"))
        return parse_utc(raw, pl.String, strict=True)

    def month(self, *keys: str) -> pl.Expr | None:
        """YYYY-MM of a billing period start column: a slice of the text (every CUR form starts with it)."""
        col = self.find(*keys)
        if col is None:
            return None
        if self.schema[col] == pl.String:
            return pl.col(col).str.slice(0, 7)
        return parse_utc(pl.col(col), self.schema[col]).dt.strftime("%Y-%m")

    def text_or_map(self, names: tuple[str, ...], map_col: str, *keys: str) -> pl.Expr:
        """The first present column of `names`, else a value of the map column: CUR 2.0 keeps some product
        attributes top-level and the rest in `product`; deciding per file avoids a map lookup per row."""
        if any(self.find(n) is not None for n in names):
            return pl.coalesce([self.text(n) for n in names if self.find(n) is not None])
        # per row: picking one key out of a map costs less than hashing the whole map to look it up (measured
        # 0.06-0.09 s against 0.35 s per 2M rows of CUR 2.0's `product`)
        return self.map_value(map_col, *keys)

    def _looked_up(self, column: str, name: str, expr: pl.Expr) -> pl.Expr:
        if not self.use_lookups:
            return expr
        self.lookups.append(Lookup(column, name, expr))
        return pl.col(name)

    def map_value(self, map_col: str, *keys: str) -> pl.Expr:
        """A value from a CUR 2.0 map column: list of {key, value} from Parquet, JSON object text from CSV."""
        col = self.find(map_col)
        if col is not None and self.schema[col] == pl.String:
            return pl.coalesce([pl.col(col).str.json_path_match(f'$["{k}"]') for k in keys])
        if col is None or not isinstance(self.schema[col], pl.List):
            return pl.lit(None, pl.String)
        wanted = pl.element().struct.field("key").is_in(list(keys))
        return pl.col(col).list.eval(pl.element().filter(wanted).struct.field("value")).list.first().cast(pl.String)


# JSON string escapes: backslash, quote and every control character, in one Aho-Corasick pass per value.
_ESCAPE_FROM = ["\\", '"'] + [chr(i) for i in range(32)]
_ESCAPE_TO = ["\\\\", '\\"'] + [
    {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(i, f"\\u{i:04x}") for i in range(32)
]


def _json_escape(e: pl.Expr) -> pl.Expr:
    return e.str.replace_many(_ESCAPE_FROM, _ESCAPE_TO)


def _json_key(key: str) -> str:
    return pl.select(_json_escape(pl.lit(key))).item()


def _json_from_columns(pairs: list[tuple[str, str]]) -> pl.Expr:
    """A JSON object text from flat columns [(key, column)], blank values left out; `{}` when none."""
    if not pairs:
        return pl.lit("{}")
    frags = [
        pl.when(pl.col(c).cast(pl.String).str.len_bytes() > 0).then(
            pl.lit('"' + _json_key(k) + '":"') + _json_escape(pl.col(c).cast(pl.String)) + pl.lit('"')
        )
        for k, c in pairs
    ]
    return pl.lit("{") + pl.concat_str(frags, separator=",", ignore_nulls=True) + pl.lit("}")


# CUR 2.0 map keys `user_team` / `aws_created_by` become legacy CUR's `user:team` / `aws:created_by`. Applied to the
# built JSON text: keys and values are escaped first, so a quote right after `{` or `,` can only open a key.
_KEY_PREFIXES = ['{"user_', ',"user_', '{"aws_', ',"aws_']
_KEY_RENAMED = ['{"user:', ',"user:', '{"aws:', ',"aws:']


def _json_from_map(col: str, rename_prefixes: bool) -> pl.Expr:
    """JSON object text from a map column (list of {key, value}), blank values left out, `{}` for none or null.
    One vectorized pass: each entry becomes `"key":"value"` (both escaped), entries are joined per row."""
    key = pl.element().struct.field("key").cast(pl.String)
    value = pl.element().struct.field("value").cast(pl.String)
    entry = pl.concat_str([pl.lit('"'), _json_escape(key), pl.lit('":"'), _json_escape(value), pl.lit('"')])
    joined = pl.col(col).list.eval(entry.filter(value.str.len_bytes() > 0)).list.join(",")
    text = pl.lit("{") + joined + pl.lit("}")
    if rename_prefixes:
        text = text.str.replace_many(_KEY_PREFIXES, _KEY_RENAMED)
    return text.fill_null("{}")


def _rename_json_text_keys(e: pl.Expr) -> pl.Expr:
    """`user_`/`aws_` keys of JSON object text (CUR 2.0 CSV exports write map columns as JSON) as `user:`/`aws:`.
    Outside strings a quote after `{` or `,` opens a key; inside strings quotes are escaped, so values are kept."""
    return e.str.replace_all(r'([{,]\s*)"(user|aws)_', '${1}"${2}:')


def _json_text(cols: _Columns, map_key: str, flat_prefixes: tuple[str, ...], rename: bool) -> pl.Expr:
    mcol = cols.find(map_key)
    if mcol is not None:
        dtype = cols.schema[mcol]
        if isinstance(dtype, pl.List):
            return cols._looked_up(mcol, f"__json_{squash(mcol)}", _json_from_map(mcol, rename))
        if dtype == pl.String:  # already JSON text (FOCUS Tags, CSV exports of maps)
            text = pl.when(pl.col(mcol).str.len_bytes() > 0).then(pl.col(mcol))
            return (_rename_json_text_keys(text) if rename else text).fill_null("{}")
    pairs = []
    for c in cols.schema:
        for prefix in flat_prefixes:
            if c.startswith(prefix) and len(c) > len(prefix):
                key = c[len(prefix) :]
                if prefix.endswith("_") and rename:
                    key = re.sub(r"^(user|aws)_", r"\1:", key)
                pairs.append((key, c))
    return _json_from_columns(pairs)


def _json_value(c: _Columns, *keys: str) -> pl.Expr:
    """A FOCUS JSON column (ContractApplied, AllocatedMethodDetails) as JSON text: CSV holds the text, Parquet a
    struct, a list of structs or a map (read as a list of {key, value})."""
    col = c.find(*keys)
    if col is None:
        return pl.lit(None, pl.String)
    dtype = c.schema[col]
    if dtype == pl.String:
        return blank_as_null(pl.col(col))
    if isinstance(dtype, pl.Struct):
        return pl.col(col).struct.json_encode()
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        if {f.name for f in dtype.inner.fields} == {"key", "value"}:
            return pl.when(pl.col(col).is_not_null()).then(_json_from_map(col, rename_prefixes=False))
        items = pl.col(col).list.eval(pl.element().struct.json_encode()).list.join(",")
        return pl.lit("[") + items + pl.lit("]")
    return pl.col(col).cast(pl.String)


CUR_REQUIRED = {
    "lineItem/LineItemType": ("lineItem/LineItemType",),
    "lineItem/UsageStartDate": ("lineItem/UsageStartDate", "identity/TimeInterval"),
    "lineItem/UnblendedCost": ("lineItem/UnblendedCost",),
    "lineItem/CurrencyCode": ("lineItem/CurrencyCode",),
    "bill/PayerAccountId": ("bill/PayerAccountId",),
    "lineItem/UsageAccountId": ("lineItem/UsageAccountId",),
}
FOCUS_REQUIRED = {
    "ChargePeriodStart": ("ChargePeriodStart",),
    "BilledCost": ("BilledCost",),
    "ChargeCategory": ("ChargeCategory",),
    "BillingCurrency": ("BillingCurrency",),
    "BillingAccountId": ("BillingAccountId",),
}


def check_required(fmt: str, columns: list[str], file: str, given_by: str | None = None) -> None:
    """Raise MissingColumnError when a column the format needs is absent. given_by: where the format came from when
    it was not read from the columns (`--format`, the delivery's manifest), so the message never claims detection."""
    cols = _Columns({c: pl.String for c in columns}, None, False)
    required = FOCUS_REQUIRED if fmt == "focus" else CUR_REQUIRED
    missing = [name for name, alts in required.items() if all(cols.find(a) is None for a in alts)]
    if not missing:
        return
    problem = f"required {fmt} column(s) missing: {', '.join(missing)}"
    if given_by:
        try:
            looks_like = detect_format(columns, file)
        except FormatDetectionError:
            looks_like = None
        other = looks_like if looks_like and looks_like != fmt else None
        problem += f" (format {fmt} from {given_by}" + (f"; the columns are {other}'s)" if other else ")")
        fix = (
            f"pass --format {other} (or --format auto)"
            if other
            else "export the report with these columns, or pass the format the file is in (--format auto)"
        )
    else:
        fix = f"the columns were detected as {fmt}: export the report with these columns, or pass --format"
    raise MissingColumnError(problem, file=file, column=missing[0], fix=fix)


# The source column a required canonical value comes from, to name it when a row has none.
_REQUIRED_SOURCES = {
    "focus": {
        "provider": ("ProviderName", "ServiceProviderName"),
        "billing_period": ("BillingPeriodStart",),
        "usage_start": ("ChargePeriodStart",),
        "usage_end": ("ChargePeriodEnd",),
        "usage_date": ("ChargePeriodStart",),
        "payer_account_id": ("BillingAccountId",),
        "usage_account_id": ("SubAccountId", "BillingAccountId"),
        "line_item_type": ("ChargeCategory",),
        "currency": ("BillingCurrency",),
        "unblended_cost": ("BilledCost",),
        "amortized_cost": ("EffectiveCost", "BilledCost"),
        "public_on_demand_cost": ("ListCost", "BilledCost"),
        "usage_amount": ("ConsumedQuantity", "PricingQuantity"),
    },
    "cur": {
        "billing_period": ("billing_period", "bill/BillingPeriodStartDate"),
        "usage_start": ("lineItem/UsageStartDate", "identity/TimeInterval"),
        "usage_date": ("lineItem/UsageStartDate", "identity/TimeInterval"),
        "usage_end": ("lineItem/UsageEndDate", "identity/TimeInterval"),
        "payer_account_id": ("bill/PayerAccountId",),
        "usage_account_id": ("lineItem/UsageAccountId",),
        "line_item_type": ("lineItem/LineItemType",),
        "currency": ("lineItem/CurrencyCode",),
        "unblended_cost": ("lineItem/UnblendedCost",),
        "amortized_cost": ("lineItem/UnblendedCost",),
        "usage_amount": ("lineItem/UsageAmount",),
    },
}


def source_column(fmt: str, columns: list[str], canonical: str) -> str:
    """The file's column a canonical column is read from (the canonical name when it has no single source)."""
    cols = _Columns({c: pl.String for c in columns}, None, False)
    names = _REQUIRED_SOURCES["focus" if fmt == "focus" else "cur"].get(canonical, ())
    return next((found for n in names if (found := cols.find(n)) is not None), canonical)


def _amortized(lit: pl.Expr, unblended: pl.Expr, c: _Columns) -> pl.Expr:
    """The Cloud Intelligence Dashboards amortized cost rule (REFERENCE.md section 1)."""
    z = lambda e: e.fill_null(0.0)  # noqa: E731 -- absent commitment columns count as zero
    return (
        pl.when(lit == "SavingsPlanCoveredUsage")
        .then(z(c.number("savingsPlan/SavingsPlanEffectiveCost")))
        .when(lit == "SavingsPlanRecurringFee")
        .then(z(c.number("savingsPlan/TotalCommitmentToDate")) - z(c.number("savingsPlan/UsedCommitment")))
        .when(lit.is_in(["SavingsPlanNegation", "SavingsPlanUpfrontFee"]))
        .then(0.0)
        .when(lit == "DiscountedUsage")
        .then(z(c.number("reservation/EffectiveCost")))
        .when(lit == "RIFee")
        .then(
            z(c.number("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"))
            + z(c.number("reservation/UnusedRecurringFee"))
        )
        .when((lit == "Fee") & (c.text("reservation/ReservationARN").is_not_null()))
        .then(0.0)
        .otherwise(unblended)
    )


def _cur_columns(c: _Columns, fmt: str, ctx: SourceContext) -> dict[str, pl.Expr]:
    lit = c.text("lineItem/LineItemType")
    unblended = c.number("lineItem/UnblendedCost")
    start = c.time("lineItem/UsageStartDate", interval="identity/TimeInterval", part=0)
    end = c.time("lineItem/UsageEndDate", interval="identity/TimeInterval", part=1)
    billing_period = c.month("billing_period", "bill/BillingPeriodStartDate")
    if billing_period is None:
        billing_period = pl.lit(ctx.billing_period) if ctx.billing_period else start.dt.strftime("%Y-%m")
    public = c.number("pricing/publicOnDemandCost").fill_null(0.0)
    # AWS Marketplace rows: the seller of record is the service provider (FOCUS 1.3 ServiceProviderName semantics)
    marketplace = c.text("bill/BillingEntity") == "AWS Marketplace"
    return {
        "provider": pl.lit("AWS"),
        "service_provider": pl.coalesce(pl.when(marketplace).then(c.text("lineItem/LegalEntity")), pl.lit("AWS")),
        "host_provider": pl.lit("AWS"),
        "invoice_issuer": c.text("bill/InvoicingEntity"),
        "pricing_currency": c.text("pricing/currency"),
        "billing_period": billing_period,
        "usage_start": start,
        "usage_end": pl.coalesce(end, start + pl.duration(hours=1)),  # an export without UsageEndDate: hourly rows
        "payer_account_id": c.text("bill/PayerAccountId"),
        "usage_account_id": c.text("lineItem/UsageAccountId"),
        "line_item_type": lit,
        "service": pl.coalesce(c.text("lineItem/ProductCode"), c.text("product/servicecode")),
        "service_name": c.text_or_map(("product/ProductName",), "product", "product_name"),
        "usage_type": c.text("lineItem/UsageType"),
        "operation": c.text("lineItem/Operation"),
        "region": c.text_or_map(("product/regionCode", "product/region"), "product", "region_code", "region"),
        "availability_zone": c.text("lineItem/AvailabilityZone"),
        "resource_id": c.text("lineItem/ResourceId"),
        "instance_type": c.text_or_map(("product/instanceType",), "product", "instance_type"),
        "product_family": c.text_or_map(("product/productFamily",), "product", "product_family"),
        "pricing_term": c.text("pricing/term"),
        "usage_amount": c.number("lineItem/UsageAmount").fill_null(0.0),
        "pricing_unit": c.text("pricing/unit"),
        "currency": c.text("lineItem/CurrencyCode"),
        "unblended_cost": unblended,
        "amortized_cost": _amortized(lit, unblended, c),
        # Negation rows repeat the covered usage's list price: zero them so list-cost sums never double count.
        "public_on_demand_cost": pl.when(lit == "SavingsPlanNegation").then(0.0).otherwise(public),
        "savings_plan_arn": c.text("savingsPlan/SavingsPlanARN", "savingsPlan/SavingsPlanArn"),
        "savings_plan_effective_cost": c.number("savingsPlan/SavingsPlanEffectiveCost"),
        "savings_plan_total_commitment": c.number("savingsPlan/TotalCommitmentToDate"),
        "savings_plan_used_commitment": c.number("savingsPlan/UsedCommitment"),
        "reservation_arn": c.text("reservation/ReservationARN"),
        "invoice_id": c.text("bill/InvoiceId"),
        "tags": _json_text(c, "resource_tags", ("resourceTags/", "resource_tags_"), rename=True),
        "cost_categories": _json_text(c, "cost_category", ("costCategory/", "cost_category_"), rename=False),
    }


# FOCUS has no line item type: it is derived from the charge category and commitment discount columns.
FOCUS_CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")


def _focus_line_item_type(c: _Columns) -> pl.Expr:
    raw = c.text("ChargeCategory")
    cat = raw.str.to_titlecase()  # providers differ in case ("usage", "USAGE"); the spec's values are title case
    ctype = c.text("CommitmentDiscountType").str.to_lowercase()
    status = c.text("CommitmentDiscountStatus").str.to_lowercase()
    is_sp = ctype.str.contains("savings").fill_null(False)
    is_ri = ctype.str.contains("reserv").fill_null(False)
    return (
        pl.when((cat == "Usage") & (status == "used") & is_sp)
        .then(pl.lit("SavingsPlanCoveredUsage"))
        .when((cat == "Usage") & (status == "used") & is_ri)
        .then(pl.lit("DiscountedUsage"))
        .when((cat == "Usage") & (status == "unused") & is_sp)
        .then(pl.lit("SavingsPlanRecurringFee"))
        .when((cat == "Usage") & (status == "unused") & is_ri)
        .then(pl.lit("RIFee"))
        .when(cat == "Usage")
        .then(pl.lit("Usage"))
        .when((cat == "Purchase") & is_sp)
        .then(pl.lit("SavingsPlanRecurringFee"))
        .when((cat == "Purchase") & is_ri)
        .then(pl.lit("RIFee"))
        .when(cat == "Purchase")
        .then(pl.lit("Fee"))
        .when(cat == "Tax")
        .then(pl.lit("Tax"))
        .when(cat == "Credit")
        .then(pl.lit("Credit"))
        .when(cat == "Adjustment")
        .then(pl.lit("Refund"))
        .when(raw.is_not_null())
        .then(pl.lit("Unknown:") + raw)
        .otherwise(pl.lit(None, pl.String))  # blank or a null marker: reported as a blank required ChargeCategory
    )


# The instance type at the end of an EC2/RDS/ElastiCache usage type: `EUW1-BoxUsage:m5.large`,
# `InstanceUsage:db.r5.large`.
_USAGE_TYPE_INSTANCE = r":((?:db\.|cache\.|ml\.)?[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+)$"


def _focus_instance_type(c: _Columns) -> pl.Expr:
    """FOCUS has no instance type column: AWS's x_ columns, then SkuPriceDetails, then the usage type's suffix
    (x_UsageType in AWS's FOCUS 1.0, SkuMeter from 1.2)."""
    options = [c.text("x_InstanceType", "x_instance_type", "InstanceType")]
    options.append(c.map_value("SkuPriceDetails", "x_InstanceType", "InstanceType", "instanceType"))  # JSON or MAP
    options.append(pl.coalesce(c.text("x_UsageType"), c.text("SkuMeter")).str.extract(_USAGE_TYPE_INSTANCE, 1))
    return pl.coalesce(options)


def _focus_columns(c: _Columns, ctx: SourceContext) -> dict[str, pl.Expr]:
    billed = c.number("BilledCost")
    start = c.time("ChargePeriodStart")
    billing_period = c.month("BillingPeriodStart")
    if billing_period is None:
        billing_period = pl.lit(ctx.billing_period) if ctx.billing_period else start.dt.strftime("%Y-%m")
    ctype = c.text("CommitmentDiscountType").str.to_lowercase()
    commitment = c.text("CommitmentDiscountId")
    effective = c.number("EffectiveCost")
    return {
        # ProviderName (1.0-1.2, deprecated in 1.3) and its 1.3 replacement ServiceProviderName; a file with neither
        # column is taken as AWS's (its FOCUS 1.0 preview had none)
        "provider": _either(c, "ProviderName", "ServiceProviderName", default="AWS"),
        "service_provider": _either(c, "ServiceProviderName", "ProviderName"),
        "host_provider": c.text("HostProviderName"),
        "invoice_issuer": c.text("InvoiceIssuerName", "InvoiceIssuer"),
        "billing_account_type": c.text("BillingAccountType"),
        "sub_account_type": c.text("SubAccountType"),
        "billing_period": billing_period,
        "usage_start": start,
        "usage_end": pl.coalesce(c.time("ChargePeriodEnd"), start + pl.duration(hours=1)),
        "payer_account_id": c.text("BillingAccountId"),
        "usage_account_id": pl.coalesce(c.text("SubAccountId"), c.text("BillingAccountId")),
        "line_item_type": _focus_line_item_type(c),
        "service": pl.coalesce(c.text("x_ServiceCode"), c.text("ServiceName")),
        "service_name": c.text("ServiceName"),
        # AWS's FOCUS 1.2 export dropped x_UsageType: its usage type is the SkuMeter column now
        "usage_type": pl.coalesce(c.text("x_UsageType"), c.text("SkuMeter")),
        "operation": c.text("x_Operation"),
        "region": pl.coalesce(c.text("RegionId"), c.text("Region")),
        "availability_zone": c.text("AvailabilityZone"),
        "resource_id": c.text("ResourceId"),
        "instance_type": _focus_instance_type(c),
        "product_family": c.text("ServiceCategory"),
        "pricing_term": c.text("PricingCategory"),
        "usage_amount": pl.coalesce(c.number("ConsumedQuantity"), c.number("PricingQuantity"), pl.lit(0.0)),
        "pricing_unit": pl.coalesce(c.text("ConsumedUnit"), c.text("PricingUnit")),
        "currency": c.text("BillingCurrency"),
        "pricing_currency": c.text("PricingCurrency"),
        "pricing_currency_effective_cost": c.number("PricingCurrencyEffectiveCost"),
        "pricing_currency_list_unit_price": c.number("PricingCurrencyListUnitPrice"),
        "pricing_currency_contracted_unit_price": c.number("PricingCurrencyContractedUnitPrice"),
        "unblended_cost": billed,
        "amortized_cost": pl.coalesce(effective, billed),
        "public_on_demand_cost": pl.coalesce(c.number("ListCost"), billed),
        "savings_plan_arn": pl.when(ctype.str.contains("savings")).then(commitment),
        "savings_plan_effective_cost": pl.when(ctype.str.contains("savings")).then(effective),
        "savings_plan_total_commitment": pl.lit(None, pl.Float64),
        "savings_plan_used_commitment": pl.lit(None, pl.Float64),
        "reservation_arn": pl.when(ctype.str.contains("reserv")).then(commitment),
        "invoice_id": c.text("InvoiceId"),
        "contract_applied": _json_value(c, "ContractApplied"),
        "allocated_method_id": c.text("AllocatedMethodId"),
        "allocated_method_details": _json_value(c, "AllocatedMethodDetails"),
        "allocated_resource_id": c.text("AllocatedResourceId"),
        "allocated_resource_name": c.text("AllocatedResourceName"),
        "allocated_tags": _json_text(c, "AllocatedTags", (), rename=False) if c.find("AllocatedTags") else None,
        "tags": _json_text(c, "Tags", (), rename=False),
        "cost_categories": _json_text(c, "x_CostCategories", (), rename=False),
    }


def _either(c: _Columns, *names: str, default: str | None = None) -> pl.Expr:
    """The first of names present in the file, per row the first non-null; default only when none is present."""
    present = [c.text(n) for n in names if c.find(n) is not None]
    if not present:
        return pl.lit(default, pl.String)
    return pl.coalesce(present)


def _charge_class(lit: pl.Expr) -> pl.Expr:
    """LINE_ITEM_TYPES as an elementwise when-chain (null for unknown types). replace_strict would be shorter but
    is not streamable: it made the whole month materialize in memory (4.2 GB instead of 1.3 GB for 8M rows)."""
    by_class: dict[str, list[str]] = {}
    for lit_name, cls in LINE_ITEM_TYPES.items():
        by_class.setdefault(cls, []).append(lit_name)
    chain = pl
    for cls, names in by_class.items():
        chain = chain.when(lit.is_in(names)).then(pl.lit(cls))
    return chain.otherwise(pl.lit(None, pl.String))


def _entries(dtype: pl.Map) -> pl.DataType:
    return pl.List(pl.Struct({"key": dtype.key, "value": dtype.value}))


@dataclass(frozen=True)
class Plan:
    """How one source file becomes canonical columns: expressions, the checks that locate an unreadable value,
    lookups, and the Map columns to read as lists of {key, value}."""

    exprs: list[pl.Expr]
    checks: list[Check]
    lookups: list[Lookup]
    maps: dict[str, pl.DataType]

    def source(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """The raw frame with each lookup's column added, computed batch by batch (see _distinct_then_map_back)."""
        if self.maps:
            lf = lf.with_columns(pl.col(n).cast(t) for n, t in self.maps.items())
        if not self.lookups:
            return lf
        dtype, fn = _distinct_then_map_back(self.lookups)
        columns = sorted({lk.column for lk in self.lookups})
        return lf.with_columns(
            pl.struct(columns).map_batches(fn, return_dtype=dtype, is_elementwise=True).alias("__lookups")
        ).with_columns(pl.col("__lookups").struct.field(lk.name) for lk in self.lookups)


def plan(
    schema: dict[str, pl.DataType],
    fmt: str,
    ctx: SourceContext,
    sample: pl.DataFrame | None = None,
    fast: bool = True,
    lookups: bool = USE_LOOKUPS,
) -> Plan:
    """The canonical columns for a source schema. Text is parsed strictly: a bad value raises, and the plan's checks
    then locate it. fast=True parses each timestamp column with the one format its sample shows; fast=False uses
    the general parser (for files that mix timestamp forms)."""
    if fmt not in FORMATS:
        raise FormatDetectionError(f"unknown format {fmt!r}", file=ctx.file, fix=f"use one of {FORMATS}")
    # Parquet MAP columns (CUR 2.0's product, resource_tags, cost_category; FOCUS Tags as AWS writes them) read as
    # polars Map; the normalizer works on their physical form, a list of {key, value} (a cast, no copy).
    maps = {n: _entries(t) for n, t in schema.items() if isinstance(t, pl.Map)}
    cols = _Columns({**schema, **maps}, sample, fast, lookups)
    exprs = _focus_columns(cols, ctx) if fmt == "focus" else _cur_columns(cols, fmt, ctx)
    start = exprs["usage_start"].dt.truncate("1h")
    exprs |= {
        "tenant_id": pl.lit(ctx.tenant_id),
        "usage_start": start,
        "usage_date": start.dt.date(),
        "charge_class": _charge_class(exprs["line_item_type"]),
        "source_format": pl.lit(fmt),
        "delivery_id": pl.lit(ctx.delivery_id),
    }
    # columns a format has no source for (FOCUS-only ones in CUR) are null
    out = [
        (exprs.get(name) if exprs.get(name) is not None else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in CANONICAL_SCHEMA.items()
    ]
    return Plan(out, cols.checks, cols.lookups, maps)


def normalize(lf: pl.LazyFrame, fmt: str, ctx: SourceContext) -> pl.LazyFrame:
    """A raw frame as canonical columns."""
    p = plan(dict(lf.collect_schema()), fmt, ctx, lf.head(SAMPLE_ROWS).collect())
    return p.source(lf).select(p.exprs)
