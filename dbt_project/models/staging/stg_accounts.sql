-- The tenant's linked accounts from the registry (var accounts): names and OU paths are not in the CUR.
{{ accounts_relation() }}
