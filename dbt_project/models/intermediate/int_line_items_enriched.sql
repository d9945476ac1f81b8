-- Line items with the registry's account names and OU paths, and the flags every mart shares.
with accounts as (
    select * from {{ ref('stg_accounts') }}
)

select
    li.*,
    coalesce(a.account_name, li.usage_account_id) as account_name,
    coalesce(a.ou_path, 'Unassigned') as ou_path,
    -- On-demand equivalent: list price when the source has one, else what was billed.
    case when li.public_on_demand_cost > 0 then li.public_on_demand_cost else li.unblended_cost end
        as on_demand_equivalent_cost,
    -- coalesce: Cost Explorer rows have no usage type, so an EC2 row would otherwise be neither eligible nor not.
    -- AWS rows only: a multi-cloud tenant's Azure savings plan usage is no AWS Savings Plan's to cover.
    coalesce(li.provider = 'AWS' and (
        li.line_item_type = 'SavingsPlanCoveredUsage'
        or (
            li.line_item_type = 'Usage'
            and coalesce(li.pricing_term, 'OnDemand') <> 'Spot'
            and coalesce(li.usage_type, '') not like '%SpotUsage%'
            and (
                (li.service = 'AmazonEC2' and (
                    li.usage_type like '%BoxUsage%' or li.usage_type like '%DedicatedUsage%'
                    or li.usage_type like '%HostUsage%'
                ))
                or (li.service in ('AmazonECS', 'AmazonEKS') and li.usage_type like '%Fargate%')
                or (li.service = 'AWSLambda' and (
                    li.usage_type like '%Lambda-GB-Second%' or li.usage_type like '%Lambda-Provisioned%'
                ))
            )
        )
    ), false) as is_compute_sp_eligible
from {{ ref('stg_cur_line_items') }} as li
left join accounts as a
    on li.usage_account_id = a.account_id
