{{ config(**tenant_rollup_config()) }}
-- Current spend against spend under the Blocks guarantee, per day, week, month and year to date.
-- Baseline is amortized spend the discount applies to: taxes, credits and refunds are not discounted.
{% set discount = var('guaranteed_discount') | float %}
{% set achievable = var('achievable_daily_savings', none) %}
with daily as (
    select tenant_id, usage_date, sum(amortized_cost) as baseline_cost
    from {{ ref('spend_daily') }}
    where charge_class not in ('tax', 'credit', 'refund')
    group by tenant_id, usage_date
),

by_period as (
    select
        tenant_id, 'day' as period_type, usage_date as period_start, usage_date as period_end, 1 as days, baseline_cost
    from daily

    union all

    select
        tenant_id, 'week' as period_type, period_start,
        cast({{ dbt.dateadd('day', 6, 'period_start') }} as date) as period_end, count(*) as days,
        sum(baseline_cost) as baseline_cost
    from (select *, cast({{ dbt.date_trunc('week', 'usage_date') }} as date) as period_start from daily) as d
    group by tenant_id, period_start

    union all

    select
        tenant_id, 'month' as period_type, period_start,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'period_start')) }} as date) as period_end,
        count(*) as days, sum(baseline_cost) as baseline_cost
    from (select *, cast({{ dbt.date_trunc('month', 'usage_date') }} as date) as period_start from daily) as d
    group by tenant_id, period_start

    union all

    select
        tenant_id,
        'ytd' as period_type,
        period_start,
        max(usage_date) as period_end,
        count(*) as days,
        sum(baseline_cost) as baseline_cost
    from (select *, cast({{ dbt.date_trunc('year', 'usage_date') }} as date) as period_start from daily) as d
    group by tenant_id, period_start
)

select
    period_type,
    period_start,
    period_end,
    cast(baseline_cost as double) as baseline_cost,
    cast(baseline_cost * (1 - {{ discount }}) as double) as projected_cost,
    cast(baseline_cost * {{ discount }} as double) as savings,
    cast(case when baseline_cost <> 0 then 100 * (baseline_cost * {{ discount }}) / baseline_cost end as double)
        as delta_pct,
    {% if achievable is none -%}
        cast(null as double) as achievable_cost,
    {%- else -%}
    -- The proposal's savings, prorated over the period's days with data.
    cast(baseline_cost - {{ achievable | float }} * days as double) as achievable_cost,
    {%- endif %}
    tenant_id
from by_period
