{# Where DuckDB and Athena (Trino) differ; dbt's own cross-database macros cover date_trunc, dateadd, hash. #}

{# Text value of a top-level key of a JSON object held as text (tag keys contain ':' so they are quoted). #}
{% macro json_text(json_column, key) -%}
  {{ return(adapter.dispatch('json_text', 'blocks')(json_column, key)) }}
{%- endmacro %}

{% macro duckdb__json_text(json_column, key) -%}
  json_extract_string({{ json_column }}, '$."{{ key }}"')
{%- endmacro %}

{% macro athena__json_text(json_column, key) -%}
  json_extract_scalar({{ json_column }}, '$["{{ key }}"]')
{%- endmacro %}

{# A UTC timestamp without time zone from the lake's timestamp column (DuckDB reads it as TIMESTAMPTZ). #}
{% macro utc_timestamp(column) -%}
  {{ return(adapter.dispatch('utc_timestamp', 'blocks')(column)) }}
{%- endmacro %}

{% macro duckdb__utc_timestamp(column) -%}
  timezone('UTC', {{ column }})
{%- endmacro %}

{% macro athena__utc_timestamp(column) -%}
  cast({{ column }} as timestamp)
{%- endmacro %}

{# The latest non-null value of expr up to the current row (forward fill). #}
{% macro last_non_null(expr, order_by) -%}
  {{ return(adapter.dispatch('last_non_null', 'blocks')(expr, order_by)) }}
{%- endmacro %}

{% macro duckdb__last_non_null(expr, order_by) -%}
  last_value({{ expr }} ignore nulls) over (order by {{ order_by }} rows between unbounded preceding and current row)
{%- endmacro %}

{% macro athena__last_non_null(expr, order_by) -%}
  last_value({{ expr }}) ignore nulls over (order by {{ order_by }} rows between unbounded preceding and current row)
{%- endmacro %}

{#
  Incremental config per engine. Runs cover whole UTC days (see hour_range_days), so both replace whole days:
  delete+insert keyed by (tenant, day) on DuckDB, overwrite of (tenant_id, usage_date) partitions on Athena
  (force_batch keeps each statement under Athena's 100-partition limit; unique_tmp_table_suffix lets runs overlap).
#}
{% macro hourly_mart_config(unique_key) -%}
  {#- No partitioned_by on DuckDB: a plain DuckDB file has no partitions (dbt-duckdb warns and ignores it). -#}
  {{ return({
    'materialized': 'incremental',
    'incremental_strategy': 'delete+insert' if target.type == 'duckdb' else 'insert_overwrite',
    'unique_key': unique_key if target.type == 'duckdb' else none,
    'partitioned_by': none if target.type == 'duckdb' else ['tenant_id', 'usage_date'],
    'force_batch': true,
    'unique_tmp_table_suffix': true,
    'table_type': 'hive',
    'format': 'parquet',
  }) }}
{%- endmacro %}

{# Tenant-wide rollups: a plain table in the tenant's DuckDB file; the tenant's partition on shared Athena tables. #}
{% macro tenant_rollup_config() -%}
  {%- if target.type == 'duckdb' -%}
    {{ return({'materialized': 'table'}) }}
  {%- endif -%}
  {{ return({
    'materialized': 'incremental',
    'incremental_strategy': 'insert_overwrite',
    'partitioned_by': ['tenant_id'],
    'unique_tmp_table_suffix': true,
    'table_type': 'hive',
    'format': 'parquet',
  }) }}
{%- endmacro %}

{# True when a regular expression matches anywhere in the text. #}
{% macro regex_contains(text, pattern) -%}
  {{ return(adapter.dispatch('regex_contains', 'blocks')(text, pattern)) }}
{%- endmacro %}

{% macro duckdb__regex_contains(text, pattern) -%}
  regexp_matches({{ text }}, '{{ pattern }}')
{%- endmacro %}

{% macro athena__regex_contains(text, pattern) -%}
  regexp_like({{ text }}, '{{ pattern }}')
{%- endmacro %}
