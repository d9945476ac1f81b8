"""Per-tenant copies of asset templates: build each asset ONCE, copy it per tenant (issue #2).

`@dg.asset` costs ~2-3 ms (signature inspection, type resolution), so decorating 5 assets x 200 tenants took seconds.
A domain instead decorates each asset once with keys under TEMPLATE_TENANT, and `copy_for_tenant` gives every tenant
its own copy (~0.2 ms): keys [tenant, name] (its deps and checks too), group = tenant id, op name
`{tenant}__{name}` (what run config and sensors address, as with a per-tenant @asset), and optionally the tenant's
partitions and description. The compute function is shared: it finds its tenant with `tenant_of(context)`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_shared.record import replace as dg_replace

from blocks_pipelines.tenants.config import TenantConfig, bind_tenant, resolve_tenant

TEMPLATE_TENANT = "tenant_template"


def template_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([TEMPLATE_TENANT, name])


def tenant_id_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    return next(iter(context.assets_def.keys)).path[0]


def tenant_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> TenantConfig:
    """The tenant a shared compute function runs for: the one its asset's copy was made for (copy_for_tenant binds
    it), resolved like every other tenant lookup."""
    return resolve_tenant(tenant_id_of(context))


def _for_tenant(key: dg.AssetKey, tenant_id: str) -> dg.AssetKey:
    return dg.AssetKey([tenant_id, *key.path[1:]]) if key.path[0] == TEMPLATE_TENANT else key


def _renamed(op: dg.OpDefinition, name: str) -> dg.OpDefinition:
    """The template's op under another name. `with_replaced_properties` rebuilds the op (~0.5 ms: it re-resolves
    the signature and types of every input and output); the name is the only thing that differs, so a shallow copy
    with the name replaced is equivalent (Dagster derives nothing else from it; tests/test_definitions.py checks)."""
    if not hasattr(op, "_name"):  # a Dagster that stores it differently: take the slow, public path
        return op.with_replaced_properties(name=name)
    renamed = copy.copy(op)
    renamed._name = name  # noqa: SLF001
    renamed.__dict__.pop("_cached_method_cache__internal__", None)  # never share memoized results with the template
    return renamed


def copy_for_tenant(
    template: dg.AssetsDefinition,
    tenant: TenantConfig,
    *,
    partitions_def: dg.PartitionsDefinition | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    rename_op: bool = True,
) -> dg.AssetsDefinition:
    """The template (an op-backed asset or multi-asset, keys under TEMPLATE_TENANT) for one tenant: keys [t, name]
    for its assets, deps and checks, group t, and, given, the tenant's partitions, description and extra metadata.
    rename_op: the op is named after the (single) asset key, `{t}__{name}`, as the tenant's own `@dg.asset` would be.
    One AssetsDefinition construction (with_attributes + map_asset_specs take two and replace each spec twice)."""
    bind_tenant(tenant)
    t = tenant.id
    replaced: dict[str, Any] = {"group_name": t}
    if partitions_def is not None:
        replaced["partitions_def"] = partitions_def
    if description is not None:
        replaced["description"] = description
    specs = [
        spec.replace_attributes(
            key=_for_tenant(spec.key, t),
            deps=[d._replace(asset_key=_for_tenant(d.asset_key, t)) for d in spec.deps],
            **({"metadata": {**spec.metadata, **metadata}} if metadata else {}),
            **replaced,
        )
        for spec in template.specs
    ]
    checks = {
        name: dg_replace(
            spec,
            asset_key=_for_tenant(spec.asset_key, t),
            additional_deps=[d._replace(asset_key=_for_tenant(d.asset_key, t)) for d in spec.additional_deps],
        )
        for name, spec in template.node_check_specs_by_output_name.items()
    }
    attrs = template.get_attributes_dict()
    attrs.update(
        keys_by_input_name={n: _for_tenant(k, t) for n, k in template.node_keys_by_input_name.items()},
        keys_by_output_name={n: _for_tenant(k, t) for n, k in template.node_keys_by_output_name.items()},
        selected_asset_keys={_for_tenant(k, t) for k in template.keys},
        check_specs_by_output_name=checks,
        selected_asset_check_keys={c.key for c in checks.values()},
        specs=specs,
    )
    if rename_op:
        [key] = template.keys
        attrs["node_def"] = _renamed(template.node_def, _for_tenant(key, t).to_python_identifier())
    return dg.AssetsDefinition.dagster_internal_init(**attrs)
