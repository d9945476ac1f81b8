{{ config(**tenant_rollup_config()) }}
-- Daily rollup of spend_hourly: week, month and YTD views are sums of days with the same filters.
select
    usage_date,
    billing_period,
    usage_account_id,
    account_name,
    ou_path,
    region,
    service,
    charge_class,
    tags,
    sum(unblended_cost) as unblended_cost,
    sum(amortized_cost) as amortized_cost,
    sum(public_on_demand_cost) as public_on_demand_cost,
    tenant_id
from {{ ref('spend_hourly') }}
group by
    usage_date, billing_period, usage_account_id, account_name, ou_path, region, service, charge_class, tags, tenant_id
