{{ config(**tenant_rollup_config()) }}
-- Where each day's line items come from: Cost Explorer days (before the tenant's first CUR delivery) hold daily
-- totals per account and service only, so the API flags figures over them as preliminary.
select
    usage_date,
    source_format,
    count(*) as rows,
    sum(unblended_cost) as unblended_cost,
    tenant_id
from {{ ref('stg_cur_line_items') }}
group by usage_date, source_format, tenant_id
