{{ config(**hourly_mart_config(['tenant_id', 'usage_date'])) }}
-- The spec's SPPosition per plan and in total (savings_plan_arn = 'TOTAL'), from the SP line items.
-- Commitment and used commitment come from the recurring fee rows (TotalCommitmentToDate / UsedCommitment);
-- when a source lacks them, used falls back to the covered rows' effective cost. AWS rows only (another cloud's
-- savings plans in a multi-cloud tenant's FOCUS are not AWS Savings Plans).
with covered as (
    select
        usage_hour,
        savings_plan_arn,
        sum(on_demand_equivalent_cost) as covered_on_demand_cost,
        sum(coalesce(savings_plan_effective_cost, 0)) as effective_cost
    from {{ ref('int_line_items_enriched') }}
    where line_item_type = 'SavingsPlanCoveredUsage' and savings_plan_arn is not null and provider = 'AWS'
        and {{ in_run_days() }}
    group by usage_hour, savings_plan_arn
),

fees as (
    select
        usage_hour,
        savings_plan_arn,
        sum(coalesce(savings_plan_total_commitment, 0)) as commitment,
        sum(savings_plan_used_commitment) as used_commitment
    from {{ ref('int_line_items_enriched') }}
    where line_item_type = 'SavingsPlanRecurringFee' and savings_plan_arn is not null and provider = 'AWS'
        and {{ in_run_days() }}
    group by usage_hour, savings_plan_arn
),

plans as (
    select
        coalesce(f.usage_hour, c.usage_hour) as usage_hour,
        coalesce(f.savings_plan_arn, c.savings_plan_arn) as savings_plan_arn,
        coalesce(f.commitment, 0) as commitment,
        coalesce(f.used_commitment, c.effective_cost, 0) as used_commitment,
        coalesce(c.covered_on_demand_cost, 0) as covered_on_demand_cost
    from fees as f
    full outer join covered as c
        on f.usage_hour = c.usage_hour and f.savings_plan_arn = c.savings_plan_arn
),

eligible as (
    select tenant_id, usage_hour, usage_date, eligible_on_demand_cost
    from {{ ref('sp_eligible_usage_hourly') }}
    where {{ in_run_days() }}
),

positions as (
    select
        e.tenant_id, e.usage_hour, e.usage_date, p.savings_plan_arn, p.commitment, p.used_commitment,
        e.eligible_on_demand_cost, p.covered_on_demand_cost
    from plans as p
    inner join eligible as e on p.usage_hour = e.usage_hour

    union all

    select
        e.tenant_id, e.usage_hour, e.usage_date, 'TOTAL' as savings_plan_arn,
        coalesce(sum(p.commitment), 0) as commitment, coalesce(sum(p.used_commitment), 0) as used_commitment,
        e.eligible_on_demand_cost, coalesce(sum(p.covered_on_demand_cost), 0) as covered_on_demand_cost
    from eligible as e
    left join plans as p on e.usage_hour = p.usage_hour
    group by e.tenant_id, e.usage_hour, e.usage_date, e.eligible_on_demand_cost
)

select
    usage_hour,
    savings_plan_arn,
    cast(commitment as double) as commitment,
    cast(used_commitment as double) as used_commitment,
    cast(greatest(commitment - used_commitment, 0) as double) as unused_commitment,
    cast(eligible_on_demand_cost as double) as eligible_on_demand_cost,
    cast(covered_on_demand_cost as double) as covered_on_demand_cost,
    cast(
        case when eligible_on_demand_cost > 0 then 100 * covered_on_demand_cost / eligible_on_demand_cost end
        as double
    ) as coverage_pct,
    cast(case when commitment > 0 then 100 * used_commitment / commitment end as double) as utilization_pct,
    tenant_id,
    usage_date
from positions
