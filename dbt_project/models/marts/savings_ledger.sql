{{ config(**tenant_rollup_config()) }}
-- The 20% guarantee, measured per billing month: what the customer was promised against what the plans saved.
-- on_demand_equivalent is what the month would have cost at public on-demand prices (the CID formula: list cost,
-- commitment fees and Negation rows count 0, discounts are not usage); blocks_cost is what Blocks actually pays
-- AWS, amortized after its plans. Taxes, credits and refunds are outside the guarantee, as in savings_projection.
{% set discount = var('guaranteed_discount') | float %}
with money as (
    select
        billing_period,
        min(usage_date) as first_day,
        max(usage_date) as last_day,
        count(distinct usage_date) as days_with_data,
        sum(case
            when line_item_type in ('SavingsPlanRecurringFee', 'SavingsPlanUpfrontFee', 'SavingsPlanNegation', 'RIFee')
                or charge_class = 'discount' then 0
            when public_on_demand_cost > 0 then public_on_demand_cost
            else unblended_cost
        end) as on_demand_equivalent,
        sum(amortized_cost) as blocks_cost
    from {{ ref('spend_hourly') }}
    where charge_class not in ('tax', 'credit', 'refund')
    group by billing_period
),

-- The month's Savings Plans hours: the TOTAL row of the position, with the rate the plans actually got.
sp_hours as (
    select
        cast({{ dbt.date_trunc('month', 'p.usage_date') }} as date) as period_start,
        p.eligible_on_demand_cost as eligible,
        p.covered_on_demand_cost as covered,
        p.commitment,
        p.used_commitment,
        e.sp_effective_cost,
        e.sp_rate_ratio
    from {{ ref('sp_position_hourly') }} as p
    inner join {{ ref('sp_eligible_usage_hourly') }} as e on p.usage_hour = e.usage_hour
    where p.savings_plan_arn = 'TOTAL'
),

sp_month as (
    select
        period_start,
        count(*) as hours,
        sum(eligible) as eligible,
        sum(covered) as covered,
        sum(commitment) as commitment,
        sum(used_commitment) as used_commitment,
        -- the rate the plans got this month; months without coverage take the hours' carried-over ratio
        coalesce(sum(sp_effective_cost) / nullif(sum(covered), 0), avg(sp_rate_ratio)) as rate_ratio
    from sp_hours
    group by period_start
),

-- Hindsight: the flat cover K (on-demand $/h) that would have saved most this month, sum(min(u, K)) - r K n.
-- The value is concave and piecewise linear in K with kinks at the hours' usage, so its maximum is at one of
-- them: with the hours sorted by u, K = u_i saves (sum of u up to i) + u_i (n - i) - r u_i n.
ranked as (
    select
        h.period_start,
        h.eligible as u,
        m.rate_ratio,
        m.hours as n,
        sum(h.eligible) over (
            partition by h.period_start
            order by h.eligible
            rows between unbounded preceding and current row
        ) as below,
        row_number() over (
            partition by h.period_start
            order by h.eligible
        ) as i
    from sp_hours as h
    inner join sp_month as m on h.period_start = m.period_start
),

hindsight as (
    select
        period_start,
        max(below + u * (n - i) - rate_ratio * u * n) as best_value,
        max_by(u, below + u * (n - i) - rate_ratio * u * n) as best_cover
    from ranked
    group by period_start
),

months as (
    select
        m.billing_period,
        cast(m.billing_period || '-01' as date) as period_start,
        m.first_day,
        m.last_day,
        m.days_with_data,
        m.on_demand_equivalent,
        m.blocks_cost,
        coalesce(s.eligible, 0) as sp_eligible,
        coalesce(s.covered, 0) as sp_covered,
        coalesce(s.commitment, 0) as sp_commitment,
        coalesce(s.used_commitment, 0) as sp_used_commitment,
        s.hours as sp_hours,
        s.rate_ratio,
        greatest(coalesce(hs.best_value, 0), 0) as hindsight_savings,
        case when coalesce(hs.best_value, 0) > 0 then hs.best_cover * s.rate_ratio else 0 end
            as hindsight_hourly_commitment
    from money as m
    left join sp_month as s on cast(m.billing_period || '-01' as date) = s.period_start
    left join hindsight as hs on s.period_start = hs.period_start
),

latest as (
    select max(last_day) as data_through from money
)

select
    mo.billing_period,
    mo.period_start,
    cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'mo.period_start')) }} as date) as period_end,
    mo.last_day as data_through,
    mo.days_with_data,
    -- the newest month still has days to come: its figures are month to date
    (
        mo.last_day = l.data_through
        and mo.last_day < cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'mo.period_start')) }} as date))
        as is_month_to_date,
    cast(mo.on_demand_equivalent as double) as on_demand_equivalent,
    cast(mo.on_demand_equivalent * (1 - {{ discount }}) as double) as customer_cost,
    cast(mo.on_demand_equivalent * {{ discount }} as double) as promised_savings,
    cast(100 * {{ discount }} as double) as promised_savings_pct,
    cast(mo.blocks_cost as double) as blocks_cost,
    cast(mo.on_demand_equivalent - mo.blocks_cost as double) as realized_savings,
    cast(case when mo.on_demand_equivalent <> 0
            then 100 * (mo.on_demand_equivalent - mo.blocks_cost) / mo.on_demand_equivalent
    end as double)
        as realized_esr_pct,
    -- what the guarantee costs (negative) or earns Blocks: customer_cost - blocks_cost
    cast(mo.on_demand_equivalent * (1 - {{ discount }}) - mo.blocks_cost as double) as margin,
    cast(greatest(mo.blocks_cost - mo.on_demand_equivalent * (1 - {{ discount }}), 0) as double) as shortfall,
    cast(mo.sp_eligible as double) as sp_eligible_on_demand,
    cast(mo.sp_covered as double) as sp_covered_on_demand,
    cast(mo.sp_commitment as double) as sp_commitment_cost,
    cast(case when mo.sp_eligible > 0 then 100 * mo.sp_covered / mo.sp_eligible end as double) as sp_coverage_pct,
    cast(case when mo.sp_commitment > 0 then 100 * mo.sp_used_commitment / mo.sp_commitment end as double)
        as sp_utilization_pct,
    -- covered usage at on-demand prices less the commitment paid for it, used or not
    cast(mo.sp_covered - mo.sp_commitment as double) as sp_savings,
    cast(mo.rate_ratio as double) as sp_rate_ratio,
    cast(mo.hindsight_hourly_commitment as double) as hindsight_hourly_commitment,
    cast(mo.hindsight_savings as double) as hindsight_sp_savings,
    cast(greatest(mo.hindsight_savings - (mo.sp_covered - mo.sp_commitment), 0) as double) as hindsight_regret,
    cast('{{ tenant_id() }}' as varchar) as tenant_id
from months as mo
cross join latest as l
