{# Fails on every period whose delta differs from the guaranteed discount by more than 0.1 points. #}
{% test delta_pct_matches_guarantee(model, column_name) %}
select *
from {{ model }}
where baseline_cost > 0
  and abs({{ column_name }} - 100 * {{ var('guaranteed_discount') }}) > 0.1
{% endtest %}
