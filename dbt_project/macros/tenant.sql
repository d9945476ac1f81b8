{# The tenant id is spliced into SQL and relation paths: refuse anything but a registry-shaped id. #}
{% macro tenant_id() -%}
  {%- set t = var('tenant_id') | string -%}
  {%- if not modules.re.match('^[a-z][a-z0-9_]{1,62}$', t) -%}
    {{ exceptions.raise_compiler_error("var tenant_id=" ~ t ~ " is not a tenant id (^[a-z][a-z0-9_]{1,62}$): pass --vars '{tenant_id: <id>}'") }}
  {%- endif -%}
  {{- return(t) -}}
{%- endmacro %}

{% macro sql_string(value) -%}
  '{{ (value | string) | replace("'", "''") }}'
{%- endmacro %}

{# The tenant's accounts from the registry (var accounts), as a relation both engines read. #}
{% macro accounts_relation() -%}
  {%- set accounts = var('accounts', []) -%}
  {%- if accounts | length == 0 -%}
    select cast(null as varchar) as account_id, cast(null as varchar) as account_name, cast(null as varchar) as ou_path
    where 1 = 0
  {%- else -%}
    select account_id, account_name, ou_path from (values
    {%- for a in accounts %}
      ({{ sql_string(a['account_id']) }}, {{ sql_string(a['name']) }}, {{ sql_string(a.get('ou_path', 'Root')) }}){{ "," if not loop.last }}
    {%- endfor %}
    ) as accounts (account_id, account_name, ou_path)
  {%- endif -%}
{%- endmacro %}
