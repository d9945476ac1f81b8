{# A JSON list of manual steps as a SQL string literal: steps are fixed per rule, so no engine JSON is needed. #}
{% macro steps_json(steps) -%}
  {{ sql_string(tojson(steps)) }}
{%- endmacro %}

{# Non-production by the environment tag or the account's OU path / name: where rightsizing is low-risk. #}
{% macro is_non_production(tags_column, ou_path_column, account_name_column) -%}
  (
    lower(coalesce({{ json_text(tags_column, 'user:environment') }}, {{ json_text(tags_column, 'user:env') }}, ''))
        in ('dev', 'development', 'test', 'testing', 'qa', 'sandbox', 'staging')
    or {{ regex_contains("lower(" ~ ou_path_column ~ " || '/' || " ~ account_name_column ~ ")", '(^|[/_-])(dev|test|sandbox|staging|qa)') }}
  )
{%- endmacro %}
