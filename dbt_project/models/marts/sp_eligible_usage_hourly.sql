{{ config(**hourly_mart_config(['tenant_id', 'usage_date'])) }}
-- The Savings Plans analyzer's input: every hour with data, zero-filled, so idle hours weigh in its quantiles.
with hours as (
    select distinct tenant_id, usage_hour, usage_date
    from {{ ref('int_line_items_enriched') }}
    where {{ in_run_days() }}
),

eligible as (
    select
        usage_hour,
        sum(on_demand_equivalent_cost) as eligible_on_demand_cost,
        sum(case when line_item_type = 'SavingsPlanCoveredUsage' then on_demand_equivalent_cost else 0 end)
            as covered_on_demand_cost,
        sum(case when line_item_type = 'SavingsPlanCoveredUsage' then coalesce(savings_plan_effective_cost, 0)
            else 0
        end) as sp_effective_cost
    from {{ ref('int_line_items_enriched') }}
    where is_compute_sp_eligible and {{ in_run_days() }}
    group by usage_hour
),

per_hour as (
    select
        h.tenant_id,
        h.usage_hour,
        h.usage_date,
        coalesce(e.eligible_on_demand_cost, 0) as eligible_on_demand_cost,
        coalesce(e.covered_on_demand_cost, 0) as covered_on_demand_cost,
        coalesce(e.sp_effective_cost, 0) as sp_effective_cost,
        case when e.covered_on_demand_cost > 0 then e.sp_effective_cost / e.covered_on_demand_cost end
            as observed_ratio
    from hours as h
    left join eligible as e on h.usage_hour = e.usage_hour
)

select
    usage_hour,
    cast(eligible_on_demand_cost as double) as eligible_on_demand_cost,
    cast(covered_on_demand_cost as double) as covered_on_demand_cost,
    cast(eligible_on_demand_cost - covered_on_demand_cost as double) as uncovered_on_demand_cost,
    cast(sp_effective_cost as double) as sp_effective_cost,
    -- Hours without SP usage carry the latest observed ratio, else the run's average, else the default.
    cast(coalesce(
        {{ last_non_null('observed_ratio', 'usage_hour') }},
        sum(sp_effective_cost) over () / nullif(sum(covered_on_demand_cost) over (), 0),
        {{ var('default_sp_rate_ratio') }}
    ) as double) as sp_rate_ratio,
    tenant_id,
    usage_date
from per_hour
