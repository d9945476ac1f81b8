{{ config(**tenant_rollup_config()) }}
-- Rules v1 over the last var lookback_days of data (ending at the newest day in the lake), monthly figures
-- scaled by 30 / days observed. Each rule emits at most one row per resource; ids hash tenant, rule and
-- resource so user status changes (kept in the state store) survive rebuilds.
with bounds as (
    select
        max(usage_date) as last_day,
        cast({{ dbt.dateadd('day', 1 - (var('lookback_days') | int), 'max(usage_date)') }} as date) as first_day
    from {{ ref('int_line_items_enriched') }}
),

recent as (
    select li.*
    from {{ ref('int_line_items_enriched') }} as li
    cross join bounds as b
    where li.usage_date between b.first_day and b.last_day
),

scale as (
    select cast(30 as double) / count(distinct usage_date) as to_month from recent
),

-- On-demand EC2 instances (not Spot, not covered by a commitment): dominant type per instance.
instances as (
    select
        resource_id, usage_account_id, region, instance_type, account_name, ou_path, tags, cost,
        split_part(instance_type, '.', 1) as family,
        split_part(instance_type, '.', 2) as size
    from (
        select
            resource_id, usage_account_id, region, instance_type,
            max(account_name) as account_name, max(ou_path) as ou_path, max(tags) as tags,
            sum(on_demand_equivalent_cost) as cost,
            row_number()
                over (
                    partition by resource_id
                    order by sum(on_demand_equivalent_cost) desc
                )
                as rank_in_resource
        from recent
        where service = 'AmazonEC2' and line_item_type = 'Usage' and usage_type like '%BoxUsage%'
            and coalesce(pricing_term, 'OnDemand') <> 'Spot'
            and instance_type is not null and resource_id is not null
        group by resource_id, usage_account_id, region, instance_type
    ) as ranked
    where rank_in_resource = 1
),

modernization as (
    select
        'modernization' as category, 'previous_generation_instance' as rec_type,
        i.resource_id, i.usage_account_id, i.region, 'AmazonEC2' as service,
        'Move ' || i.resource_id || ' from ' || i.instance_type || ' to ' || g.current_family || '.' || i.size as title,
        i.instance_type || ' is a previous-generation family; ' || g.current_family || '.' || i.size
        || ' costs about ' || cast(cast(round((1 - g.price_ratio) * 100) as integer) as varchar)
        || '% less on demand for the same size and is faster.' as rationale,
        i.cost * (1 - g.price_ratio) * s.to_month as expected_monthly_savings,
        {{ steps_json([
            "Check the AMI and drivers support the current family (ENA and NVMe are required).",
            "Stop the instance in a maintenance window and change its instance type.",
            "Start it and verify the application; keep the old type noted for rollback.",
        ]) }} as steps
    from instances as i
    inner join {{ ref('previous_generation_families') }} as g on i.family = g.previous_family
    cross join scale as s
    where g.price_ratio < 1
),

rightsizing as (
    select
        'rightsizing' as category, 'downsize_non_production' as rec_type,
        i.resource_id, i.usage_account_id, i.region, 'AmazonEC2' as service,
        'Downsize non-production instance ' || i.resource_id || ' (' || i.instance_type || ')' as title,
        i.instance_type || ' runs on demand in a non-production account (' || i.ou_path
        || '); one size smaller halves its cost, and non-production load rarely needs the headroom.' as rationale,
        i.cost * 0.5 * s.to_month as expected_monthly_savings,
        {{ steps_json([
            "Check CPU and memory peaks for the last 14 days in CloudWatch (below 40% means one size down is safe).",
            "Stop the instance, change its type to the next smaller size, start it.",
            "Watch the workload for a week; revert if it saturates.",
        ]) }} as steps
    from instances as i
    cross join scale as s
    where i.size like '%xlarge' and {{ is_non_production('i.tags', 'i.ou_path', 'i.account_name') }}
),

posture as (
    select
        sum(e.eligible_on_demand_cost) as eligible,
        sum(e.covered_on_demand_cost) as covered,
        coalesce(
            sum(e.sp_effective_cost) / nullif(sum(e.covered_on_demand_cost), 0), {{ var('default_sp_rate_ratio') }}
        )
            as rate_ratio
    from {{ ref('sp_eligible_usage_hourly') }} as e
    cross join bounds as b
    where e.usage_date between b.first_day and b.last_day
),

commitment_posture as (
    select
        'commitment_posture' as category, 'compute_sp_coverage_below_target' as rec_type,
        'compute_savings_plans' as resource_id, cast(null as varchar) as usage_account_id,
        cast(null as varchar) as region, 'ComputeSavingsPlans' as service,
        'Raise Compute Savings Plans coverage to '
        || cast({{ (var('target_coverage') * 100) | round | int }} as varchar)
        || '%' as title,
        'Savings Plans cover ' || cast(cast(round(100 * p.covered / p.eligible) as integer) as varchar)
        || '% of the eligible compute spend (EC2, Fargate, Lambda) of the last '
        || cast({{ var('lookback_days') | int }} as varchar) || ' days; the target is '
        || cast({{ (var('target_coverage') * 100) | round | int }} as varchar) || '%.' as rationale,
        p.eligible * s.to_month * ({{ var('target_coverage') }} - p.covered / p.eligible) * (1 - p.rate_ratio)
            as expected_monthly_savings,
        {{ steps_json([
            "Nothing to do on your side: Blocks prepares a Savings Plans proposal (hourly commitment, term, payment option) and its team reviews it before buying.",
            "Blocks buys it in ladders, so part of the commitment expires every month and it follows your usage down.",
            "See coverage and utilization rise on the Savings Plans page within 48 hours of the purchase.",
        ]) }} as steps
    from posture as p
    cross join scale as s
    where p.eligible > 0 and p.covered / p.eligible < {{ var('target_coverage') }}
),

-- Idle and waste.
idle_ips as (
    select
        'idle' as category, 'idle_public_ipv4' as rec_type,
        coalesce(r.resource_id, r.usage_account_id || ':' || coalesce(r.region, 'global') || ':idle-ipv4')
            as resource_id,
        r.usage_account_id, r.region, max(r.service) as service,
        'Release idle public IPv4 address ' || coalesce(r.resource_id, 'in ' || r.usage_account_id) as title,
        'AWS bills this Elastic IP as idle ('
        || max(r.usage_type)
        || '): it is allocated but not attached to a running resource.' as rationale,
        sum(r.on_demand_equivalent_cost) * max(s.to_month) as expected_monthly_savings,
        {{ steps_json([
            "Confirm nobody depends on the address (DNS records, allow-lists).",
            "Release it: aws ec2 release-address --allocation-id <id>.",
        ]) }} as steps
    from recent as r
    cross join scale as s
    where r.usage_type like '%IdleAddress%'
    group by
        coalesce(r.resource_id, r.usage_account_id || ':' || coalesce(r.region, 'global') || ':idle-ipv4'),
        r.resource_id, r.usage_account_id, r.region
),

nat_gateways as (
    select
        resource_id, max(usage_account_id) as usage_account_id, max(region) as region,
        sum(on_demand_equivalent_cost) as cost,
        sum(case when usage_type like '%NatGateway-Bytes%' then usage_amount else 0 end) as gigabytes
    from recent
    where usage_type like '%NatGateway-%' and resource_id is not null
    group by resource_id
),

idle_nat as (
    select
        'idle' as category, 'idle_nat_gateway' as rec_type,
        n.resource_id, n.usage_account_id, n.region, 'AmazonEC2' as service,
        'Remove NAT gateway ' || n.resource_id || ' that moves almost no data' as title,
        'It processed ' || cast(cast(round(n.gigabytes * s.to_month) as bigint) as varchar)
        || ' GB per month while its hourly charge runs all the time.' as rationale,
        n.cost * s.to_month as expected_monthly_savings,
        {{ steps_json([
            "Check the route tables that point at the gateway and what still uses them.",
            "Move remaining traffic to a VPC endpoint or a shared gateway.",
            "Delete the NAT gateway and release its Elastic IP.",
        ]) }} as steps
    from nat_gateways as n
    cross join scale as s
    where n.gigabytes * s.to_month < 10
),

-- CUR cannot see attachments: a volume billed in a zone where no instance ran for the last 7 days belongs to a
-- stopped or terminated instance.
running_zones as (
    select distinct r.usage_account_id, coalesce(r.availability_zone, r.region) as zone
    from recent as r
    cross join bounds as b
    where r.usage_type like '%BoxUsage%' and r.usage_date > cast({{ dbt.dateadd('day', -7, 'b.last_day') }} as date)
),

orphan_volumes as (
    select
        'idle' as category, 'ebs_volume_without_running_instance' as rec_type,
        v.resource_id, v.usage_account_id, v.region, 'AmazonEC2' as service,
        'Snapshot and delete EBS volume ' || v.resource_id as title,
        'No instance ran in ' || v.zone || ' of this account for 7 days, so the volume is unattached or '
        || 'belongs to a long-stopped instance.' as rationale,
        v.cost * s.to_month as expected_monthly_savings,
        {{ steps_json([
            "Check the volume's state in the EC2 console (available, or attached to a stopped instance).",
            "Create a snapshot if the data may be needed later.",
            "Delete the volume.",
        ]) }} as steps
    from (
        select
            resource_id, max(usage_account_id) as usage_account_id, max(region) as region,
            max(coalesce(availability_zone, region)) as zone, sum(on_demand_equivalent_cost) as cost
        from recent
        where usage_type like '%EBS:VolumeUsage%' and resource_id is not null
        group by resource_id
    ) as v
    cross join scale as s
    left join running_zones as z on v.usage_account_id = z.usage_account_id and v.zone = z.zone
    where z.zone is null
),

snapshot_first_days as (
    select resource_id, min(usage_date) as first_day
    from {{ ref('int_line_items_enriched') }}
    where usage_type like '%EBS:SnapshotUsage%' and resource_id is not null
    group by resource_id
),

-- Snapshots billed since at least 90 days before the window's end (the lake's history shows their age).
old_snapshots as (
    select
        'idle' as category, 'old_snapshot' as rec_type,
        r.resource_id, r.usage_account_id, r.region, 'AmazonEC2' as service,
        'Delete snapshot ' || r.resource_id || ' older than 90 days' as title,
        'Billed since ' || cast(f.first_day as varchar) || '; snapshots this old are rarely restored.' as rationale,
        r.cost * s.to_month as expected_monthly_savings,
        {{ steps_json([
            "Check the snapshot is not used by an AMI or a backup policy that must keep it.",
            "Delete it, or move it to the EBS Snapshots Archive tier if it must be kept.",
        ]) }} as steps
    from (
        select
            resource_id, max(usage_account_id) as usage_account_id, max(region) as region,
            sum(on_demand_equivalent_cost) as cost
        from recent
        where usage_type like '%EBS:SnapshotUsage%' and resource_id is not null
        group by resource_id
    ) as r
    inner join snapshot_first_days as f on r.resource_id = f.resource_id
    cross join bounds as b
    cross join scale as s
    where f.first_day <= cast({{ dbt.dateadd('day', -90, 'b.last_day') }} as date)
),

all_rules as (
    select * from modernization
    union all
    select * from rightsizing
    union all
    select * from commitment_posture
    union all
    select * from idle_ips
    union all
    select * from idle_nat
    union all
    select * from orphan_volumes
    union all
    select * from old_snapshots
)

select
    {{ dbt.hash("'" ~ tenant_id() ~ "' || '|' || rec_type || '|' || resource_id") }} as recommendation_id,
    category,
    rec_type,
    resource_id,
    usage_account_id,
    region,
    service,
    title,
    rationale,
    cast(round(expected_monthly_savings, 2) as double) as expected_monthly_savings,
    steps,
    'open' as status,
    cast(current_timestamp as timestamp) as generated_at,
    '{{ tenant_id() }}' as tenant_id
from all_rules
where expected_monthly_savings >= 0.01
