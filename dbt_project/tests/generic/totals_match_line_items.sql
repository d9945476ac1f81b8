{#
  Fails on every (tenant, day) of the run where the model's cost sums differ from the line items' sums:
  aggregation must never drop or double count a row. Relative tolerance covers float summation order.
  only_modelled_days: check only days the model holds (rollups of an hourly mart that a partitioned run may have
  built for some days only); otherwise a day missing from the model fails too.
#}
{% test totals_match_line_items(model, cost_columns, only_modelled_days=false) %}
with line_items as (
    select tenant_id, usage_date,
        {% for c in cost_columns %}sum({{ c }}) as {{ c }}{{ "," if not loop.last }}{% endfor %}
    from {{ ref('stg_cur_line_items') }}
    where {{ in_run_days() }}
    group by tenant_id, usage_date
),

modelled as (
    select tenant_id, usage_date,
        {% for c in cost_columns %}sum({{ c }}) as {{ c }}{{ "," if not loop.last }}{% endfor %}
    from {{ model }}
    where {{ in_run_days() }}
    group by tenant_id, usage_date
)

select
    coalesce(l.tenant_id, m.tenant_id) as tenant_id,
    coalesce(l.usage_date, m.usage_date) as usage_date
    {% for c in cost_columns %}, l.{{ c }} as line_items_{{ c }}, m.{{ c }} as model_{{ c }}{% endfor %}
from line_items as l
{{ 'right' if only_modelled_days else 'full outer' }} join modelled as m
    on l.tenant_id = m.tenant_id and l.usage_date = m.usage_date
where
    {% for c in cost_columns %}
    abs(coalesce(l.{{ c }}, 0) - coalesce(m.{{ c }}, 0))
        > 1e-6 * greatest(1, abs(coalesce(l.{{ c }}, 0))){{ " or" if not loop.last }}
    {% endfor %}
{% endtest %}
