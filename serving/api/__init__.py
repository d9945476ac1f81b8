"""HTTP routes. Every tenant-data route takes a TenantScope from deps.tenant_scope and nothing else."""
