{{ config(**hourly_mart_config(['tenant_id', 'usage_date'])) }}
-- The spec's SpendAggregate. Partition columns come last because Athena requires it.
select
    usage_hour,
    billing_period,
    usage_account_id,
    account_name,
    ou_path,
    region,
    service,
    usage_type,
    charge_class,
    line_item_type,
    sum(unblended_cost) as unblended_cost,
    sum(amortized_cost) as amortized_cost,
    sum(public_on_demand_cost) as public_on_demand_cost,
    sum(usage_amount) as usage_amount,
    tags,
    tenant_id,
    usage_date
from {{ ref('int_line_items_enriched') }}
where {{ in_run_days() }}
group by
    usage_hour, billing_period, usage_account_id, account_name, ou_path, region, service, usage_type,
    charge_class, line_item_type, tags, tenant_id, usage_date
