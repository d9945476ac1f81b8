{#
  The run's hour range (vars start/end, end exclusive) widened to whole UTC days: the lake holds one file per
  (tenant, day) and Athena overwrites whole (tenant, day) partitions, so a partial day would drop the rest of it.
  Returns none when the run covers everything.
#}
{% macro hour_range_days() -%}
  {%- set s = var('start', none) -%}
  {%- set e = var('end', none) -%}
  {%- if s is none or e is none -%}{{ return(none) }}{%- endif -%}
  {%- set dt = modules.datetime -%}
  {%- set start = _as_utc(dt.datetime.fromisoformat(s | string)) -%}
  {%- set end = _as_utc(dt.datetime.fromisoformat(e | string)) -%}
  {%- if end <= start -%}
    {{ exceptions.raise_compiler_error("vars start=" ~ s ~ " end=" ~ e ~ ": end must be after start (end is exclusive)") }}
  {%- endif -%}
  {%- set last_day_exclusive = (end - dt.timedelta(microseconds=1)).date() + dt.timedelta(days=1) -%}
  {{ return((start.date().isoformat(), last_day_exclusive.isoformat())) }}
{%- endmacro %}

{% macro _as_utc(ts) -%}
  {%- if ts.tzinfo is none -%}{{ return(ts) }}{%- endif -%}
  {{ return(ts.astimezone(modules.datetime.timezone.utc).replace(tzinfo=none)) }}
{%- endmacro %}

{# A predicate keeping the run's days; `true` when the run covers everything. #}
{% macro in_run_days(date_column='usage_date') -%}
  {%- set days = hour_range_days() -%}
  {%- if days is none -%}
    1 = 1
  {%- else -%}
    {{ date_column }} >= date '{{ days[0] }}' and {{ date_column }} < date '{{ days[1] }}'
  {%- endif -%}
{%- endmacro %}
