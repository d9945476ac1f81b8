"""A tenant's simulated estate: the resources that produce line items, one row per resource.

Built once per (tenant, seed), independent of the months generated, so every month of a tenant shows the same
instances, volumes and buckets. Accounts get a workload mix from their OU (Prod, Dev, Data, management) so
account/OU drill-downs, idle-resource rules and modernization rules each have something true to find:
previous-generation instances, unattached volumes (tag user:volume-state=available), old snapshots
(tag user:created-date), an idle NAT gateway, idle public IPv4 addresses and untagged resources.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from blocks_pipelines.sample_data import catalog as cat
from blocks_pipelines.sample_data.demand import PROFILE_NAMES
from blocks_pipelines.sample_data.rand import scalar_rng
from blocks_pipelines.tenants.config import TenantConfig

ALWAYS_ON = -1.0  # activity threshold of resources that run every hour

# amount modes: how a resource's hourly usage amount is derived
HOURLY = 0  # 1 unit (an hour) whenever active
SCALED = 1  # base_amount x demand level x noise (requests, bytes, GB-seconds)
STORAGE = 2  # base_amount GB prorated per hour, growing with the storage trend

TAG_KEYS = ("user:team", "user:env", "user:cost-center", "user:volume-state", "user:created-date")
COST_CATEGORY_KEYS = ("Environment", "BusinessUnit")


def tag_column(key: str) -> str:
    return f"tag.{key}"


def cost_category_column(key: str) -> str:
    return f"cc.{key}"


def stable_key(*parts: object) -> int:
    """A process-independent 32-bit key (Python's hash() is salted per process)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


@dataclass
class Account:
    account_id: str
    name: str
    ou_path: str
    role: str  # prod | dev | data | management
    team: str
    cost_center: str


def account_role(name: str, ou_path: str) -> str:
    text = f"{ou_path}/{name}".lower()
    for role, needles in (("prod", ("prod",)), ("dev", ("dev", "sandbox", "test")), ("data", ("data", "analytics"))):
        if any(n in text for n in needles):
            return role
    return "management"


def tenant_accounts(tenant: TenantConfig) -> list[Account]:
    """Linked accounts (first occurrence wins when a registry lists an id twice), the payer included."""
    seen: dict[str, Account] = {}
    for a in tenant.organization.linked_accounts:
        if a.account_id in seen or not a.active:
            continue
        role = account_role(a.name, a.ou_path)
        team = {
            "prod": a.name.split("-")[-1] if "-" in a.name else "product",
            "dev": "platform",
            "data": "data",
            "management": "finance",
        }[role]
        seen[a.account_id] = Account(
            a.account_id, a.name, a.ou_path, role, team, f"CC-{1000 + stable_key(a.account_id) % 9000}"
        )
    payer = tenant.organization.payer_account_id
    if payer not in seen:
        seen[payer] = Account(payer, "management", "Root", "management", "finance", "CC-1000")
    if not any(a.role == "prod" for a in seen.values()):
        # a single-account tenant still needs production workloads to be interesting
        first = next(iter(seen.values()))
        first.role, first.team = "prod", "product"
    return list(seen.values())


@dataclass(frozen=True)
class RiSpec:
    arn: str
    account_id: str
    region: str
    instance_type: str
    count: int
    hourly_rate: float  # per reservation
    start: date
    end: date


@dataclass
class Inventory:
    resources: pl.DataFrame
    accounts: list[Account]
    primary_region: str
    reserved_instance: RiSpec | None
    account_names: dict[str, str] = field(default_factory=dict)


class _Builder:
    def __init__(self, tenant: TenantConfig, seed: int, scale: float):
        self.rng = scalar_rng(seed, tenant.id, "inventory")
        self.scale = scale
        self.primary = tenant.cur_source.region if tenant.cur_source.region in cat.REGIONS else "us-east-1"
        self.secondary = "eu-west-1" if self.primary != "eu-west-1" else "us-east-1"
        self.rows: list[dict] = []
        self.history_start = tenant.history_start

    def n(self, base: float) -> int:
        return max(1, int(round(base * self.scale)))

    def hexid(self, length: int) -> str:
        return self.rng.randbytes((length + 1) // 2).hex()[:length]

    def tags(self, acct: Account, **extra: str) -> dict:
        if self.rng.random() < 0.12:  # some resources are never tagged
            return dict(extra)
        env = {"prod": "prod", "dev": "dev", "data": "prod", "management": "shared"}[acct.role]
        return {"user:team": acct.team, "user:env": env, "user:cost-center": acct.cost_center, **extra}

    def add(
        self,
        acct: Account,
        region: str,
        *,
        rid: str,
        product_code: str,
        usage_type: str,
        operation: str,
        unit: str,
        od_rate: float,
        family: str,
        description: str,
        profile: str = "flat",
        threshold: float = ALWAYS_ON,
        mode: int = HOURLY,
        base_amount: float = 1.0,
        term: str = "OnDemand",
        rate: float | None = None,
        instance_type: str | None = None,
        sp_eligible: bool = False,
        tags: dict | None = None,
        volume_api: str | None = None,
        az: bool = True,
    ) -> None:
        factor = cat.REGION_PRICE_FACTOR[region]
        it = cat.EC2_TYPES.get(instance_type or "") or cat.RDS_TYPES.get(instance_type or "")
        sku_key = stable_key(region, usage_type, operation)
        tags = tags if tags is not None else self.tags(acct)
        categories = {
            "Environment": {"prod": "Production", "dev": "Development", "data": "Analytics", "management": "Shared"}[
                acct.role
            ],
            "BusinessUnit": acct.ou_path.split("/")[1] if "/" in acct.ou_path else "Corporate",
        }
        self.rows.append(
            {
                "resource_id": rid,
                "usage_account_id": acct.account_id,
                "region": region,
                "availability_zone": f"{region}{'abc'[stable_key(rid) % 3]}" if az else None,
                "product_code": product_code,
                "usage_type": usage_type,
                "operation": operation,
                "pricing_unit": unit,
                "public_rate": round(od_rate * factor, 10),
                "rate": round((od_rate if rate is None else rate) * factor, 10),
                "pricing_term": term,
                "product_family": family,
                "description": description,
                "instance_type": instance_type,
                "instance_family": it.family if it else None,
                "vcpu": str(it.vcpu) if it else None,
                "memory": f"{it.memory_gib:g} GiB" if it else None,
                "current_generation": ("Yes" if it.current_generation else "No") if it else None,
                "normalization_factor": cat.normalization_factor(instance_type) if instance_type else None,
                "volume_api_name": volume_api,
                "profile_idx": PROFILE_NAMES.index(profile),
                "threshold": threshold,
                "amount_mode": mode,
                "base_amount": base_amount,
                "sp_eligible": sp_eligible,
                "sku": f"{sku_key:08X}{stable_key(sku_key) % 10**4:04d}"[:12],
                **{tag_column(k): tags.get(k) for k in TAG_KEYS},
                **{cost_category_column(k): categories[k] for k in COST_CATEGORY_KEYS},
            }
        )

    # --- workloads -------------------------------------------------------------------------------------------
    def ec2(
        self,
        acct: Account,
        region: str,
        itype: str,
        *,
        profile: str = "flat",
        threshold: float = ALWAYS_ON,
        spot: bool = False,
        tags: dict | None = None,
    ) -> str:
        it = cat.EC2_TYPES[itype]
        rid = f"i-0{self.hexid(16)}"
        base = "SpotUsage" if spot else "BoxUsage"
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonEC2",
            usage_type=cat.usage_type(region, f"{base}:{itype}"),
            operation="RunInstances",
            unit="Hrs",
            od_rate=it.od_rate,
            family="Compute Instance",
            description=(
                f"${it.od_rate * cat.REGION_PRICE_FACTOR[region] * (cat.SPOT_PRICE_RATIO if spot else 1):.4f}"
                f" per {'Spot' if spot else 'On Demand'} Linux {itype} Instance Hour"
            ),
            profile=profile,
            threshold=threshold,
            term="Spot" if spot else "OnDemand",
            rate=it.od_rate * cat.SPOT_PRICE_RATIO if spot else None,
            instance_type=itype,
            sp_eligible=not spot,
            tags=tags,
        )
        return rid

    def asg(
        self,
        acct: Account,
        region: str,
        itype: str,
        size: int,
        profile: str,
        *,
        always_on: int,
        headroom: float = 1.6,
        spot: bool = False,
    ) -> None:
        tags = self.tags(acct)  # one launch template: every member carries the same tags
        for j in range(size):
            threshold = ALWAYS_ON if j < always_on else (j + 0.5) / size * headroom
            self.ec2(acct, region, itype, profile=profile, threshold=threshold, spot=spot, tags=tags)

    def ebs(self, acct: Account, region: str, *, size_gb: int, volume_type: str, attached: bool) -> None:
        extra = {"user:volume-state": "in-use" if attached else "available"}
        tags = self.tags(acct, **extra)
        rate = cat.EBS_GB_MONTH[volume_type]
        self.add(
            acct,
            region,
            rid=f"vol-0{self.hexid(16)}",
            product_code="AmazonEC2",
            usage_type=cat.usage_type(region, f"EBS:VolumeUsage.{volume_type}"),
            operation="CreateVolume-Gp" + ("2" if volume_type == "gp2" else "3"),
            unit="GB-Mo",
            od_rate=rate,
            family="Storage",
            description=f"${rate:.2f} per GB-month of General Purpose SSD ({volume_type}) provisioned storage",
            mode=STORAGE,
            base_amount=float(size_gb),
            profile="flat",
            tags=tags,
            volume_api=volume_type,
        )

    def snapshot(self, acct: Account, region: str, *, size_gb: int, created: date) -> None:
        tags = self.tags(acct, **{"user:created-date": created.isoformat()})
        rid = f"arn:aws:ec2:{region}:{acct.account_id}:snapshot/snap-0{self.hexid(16)}"
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonEC2",
            usage_type=cat.usage_type(region, "EBS:SnapshotUsage"),
            operation="CreateSnapshot",
            unit="GB-Mo",
            od_rate=cat.EBS_SNAPSHOT_GB_MONTH,
            family="Storage Snapshot",
            description=f"${cat.EBS_SNAPSHOT_GB_MONTH:.3f} per GB-Month of snapshot data stored",
            mode=STORAGE,
            base_amount=float(size_gb),
            tags=tags,
            az=False,
        )

    def fargate(self, acct: Account, region: str, service: str, tasks: int, vcpu: float, gb: float) -> None:
        tags = self.tags(acct)
        for j in range(tasks):
            rid = f"arn:aws:ecs:{region}:{acct.account_id}:task/{service}/{self.hexid(32)}"
            threshold = ALWAYS_ON if j == 0 else (j + 0.5) / tasks * 1.5
            for kind, amount, rate, unit in (
                ("vCPU-Hours:perCPU", vcpu, cat.FARGATE_VCPU_HOUR, "hours"),
                ("GB-Hours", gb, cat.FARGATE_GB_HOUR, "GB-Hours"),
            ):
                self.add(
                    acct,
                    region,
                    rid=rid,
                    product_code="AmazonECS",
                    usage_type=cat.usage_type(region, f"Fargate-{kind}", always_prefixed=True),
                    operation="FargateTask",
                    unit=unit,
                    od_rate=rate,
                    family="Compute",
                    description=f"AWS Fargate - {kind.split(':')[0]} - {cat.REGIONS[region][1]}",
                    profile="web",
                    threshold=threshold,
                    mode=SCALED,
                    base_amount=amount,
                    sp_eligible=True,
                    tags=tags,
                    az=False,
                )

    def lambda_fn(self, acct: Account, region: str, profile: str, gb_seconds: float, requests: float) -> None:
        tags = self.tags(acct)
        rid = f"arn:aws:lambda:{region}:{acct.account_id}:function:{acct.team}-{self.hexid(6)}"
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AWSLambda",
            usage_type=cat.usage_type(region, "Lambda-GB-Second", always_prefixed=True),
            operation="Invoke",
            unit="Lambda-GB-Second",
            od_rate=cat.LAMBDA_GB_SECOND,
            family="Serverless",
            description="AWS Lambda - Total Compute - " + cat.REGIONS[region][1],
            profile=profile,
            mode=SCALED,
            base_amount=gb_seconds,
            sp_eligible=True,
            tags=tags,
            az=False,
        )
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AWSLambda",
            usage_type=cat.usage_type(region, "Request", always_prefixed=True),
            operation="Invoke",
            unit="Requests",
            od_rate=cat.LAMBDA_REQUEST,
            family="Serverless",
            description="AWS Lambda - Total Requests - " + cat.REGIONS[region][1],
            profile=profile,
            mode=SCALED,
            base_amount=requests,
            tags=tags,
            az=False,
        )

    def rds(self, acct: Account, region: str, itype: str, storage_gb: int) -> None:
        it = cat.RDS_TYPES[itype]
        tags = self.tags(acct)
        rid = f"arn:aws:rds:{region}:{acct.account_id}:db:{acct.team}-db-{self.hexid(4)}"
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonRDS",
            usage_type=cat.usage_type(region, f"InstanceUsage:{itype}"),
            operation="CreateDBInstance:0002",
            unit="Hrs",
            od_rate=it.od_rate,
            family="Database Instance",
            description=f"${it.od_rate:.3f} per RDS {itype} instance hour (or partial hour) running MySQL",
            instance_type=itype,
            tags=tags,
        )
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonRDS",
            usage_type=cat.usage_type(region, "RDS:GP2-Storage"),
            operation="CreateDBInstance:0002",
            unit="GB-Mo",
            od_rate=cat.RDS_GP2_GB_MONTH,
            family="Database Storage",
            description=f"${cat.RDS_GP2_GB_MONTH:.3f} per GB-month of provisioned GP2 storage running MySQL",
            mode=STORAGE,
            base_amount=float(storage_gb),
            tags=tags,
        )

    def s3(self, acct: Account, region: str, storage_gb: float, tier1: float, tier2: float, profile: str) -> None:
        tags = self.tags(acct)
        rid = f"{acct.team}-{acct.role}-{self.hexid(8)}"
        for ut, op, unit, rate, mode, amount, fam in (
            (
                "TimedStorage-ByteHrs",
                "StandardStorage",
                "GB-Mo",
                cat.S3_STANDARD_GB_MONTH,
                STORAGE,
                storage_gb,
                "Storage",
            ),
            ("Requests-Tier1", "PutObject", "Requests", cat.S3_TIER1_REQUEST, SCALED, tier1, "API Request"),
            ("Requests-Tier2", "GetObject", "Requests", cat.S3_TIER2_REQUEST, SCALED, tier2, "API Request"),
        ):
            self.add(
                acct,
                region,
                rid=rid,
                product_code="AmazonS3",
                usage_type=cat.usage_type(region, ut),
                operation=op,
                unit=unit,
                od_rate=rate,
                family=fam,
                description=f"Amazon S3 {ut}",
                profile=profile if mode == SCALED else "storage",
                mode=mode,
                base_amount=amount,
                tags=tags,
                az=False,
            )

    def nat(self, acct: Account, region: str, gb_per_hour: float, profile: str) -> None:
        tags = self.tags(acct)
        rid = f"arn:aws:ec2:{region}:{acct.account_id}:natgateway/nat-0{self.hexid(16)}"
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonEC2",
            usage_type=cat.usage_type(region, "NatGateway-Hours"),
            operation="NatGateway",
            unit="Hrs",
            od_rate=cat.NAT_HOUR,
            family="NAT Gateway",
            description=f"${cat.NAT_HOUR:.3f} per NAT Gateway Hour",
            tags=tags,
        )
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonEC2",
            usage_type=cat.usage_type(region, "NatGateway-Bytes"),
            operation="NatGateway",
            unit="GB",
            od_rate=cat.NAT_GB,
            family="NAT Gateway",
            description=f"${cat.NAT_GB:.3f} per GB Data Processed by NAT Gateways",
            profile=profile,
            mode=SCALED,
            base_amount=gb_per_hour,
            tags=tags,
        )

    def data_transfer(self, acct: Account, region: str, out_gb: float, regional_gb: float) -> None:
        rid = f"i-0{self.hexid(16)}"
        tags = self.tags(acct)
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonEC2",
            usage_type=cat.usage_type(region, "DataTransfer-Out-Bytes"),
            operation="RunInstances",
            unit="GB",
            od_rate=cat.DATA_TRANSFER_OUT_GB,
            family="Data Transfer",
            description=f"${cat.DATA_TRANSFER_OUT_GB:.2f} per GB - first 10 TB / month data transfer out",
            profile="web",
            mode=SCALED,
            base_amount=out_gb,
            tags=tags,
            az=False,
        )
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonEC2",
            usage_type=cat.usage_type(region, "DataTransfer-Regional-Bytes"),
            operation="InterZone-In",
            unit="GB",
            od_rate=cat.DATA_TRANSFER_REGIONAL_GB,
            family="Data Transfer",
            description=f"${cat.DATA_TRANSFER_REGIONAL_GB:.2f} per GB - regional data transfer",
            profile="web",
            mode=SCALED,
            base_amount=regional_gb,
            tags=tags,
            az=False,
        )

    def idle_ipv4(self, acct: Account, region: str) -> None:
        rid = f"arn:aws:ec2:{region}:{acct.account_id}:elastic-ip/eipalloc-0{self.hexid(16)}"
        self.add(
            acct,
            region,
            rid=rid,
            product_code="AmazonVPC",
            usage_type=cat.usage_type(region, "PublicIPv4:IdleAddress", always_prefixed=True),
            operation="AssociateAddressVPC",
            unit="Hrs",
            od_rate=cat.PUBLIC_IPV4_HOUR,
            family="IP Address",
            description=f"${cat.PUBLIC_IPV4_HOUR:.3f} per Idle public IPv4 address per hour",
            az=False,
        )


def build_inventory(tenant: TenantConfig, *, seed: int, scale: float = 1.0) -> Inventory:
    b = _Builder(tenant, seed, scale)
    accounts = tenant_accounts(tenant)
    P, S = b.primary, b.secondary
    prod_index = 0
    old = [b.history_start - timedelta(days=int(d)) for d in (420, 610, 800, 990, 1200)]
    for acct in accounts:
        if acct.role == "prod":
            web_type = ("m5.xlarge", "m6i.xlarge", "c6i.xlarge")[prod_index % 3]
            b.asg(acct, P, web_type, b.n(18), "web", always_on=3)
            b.asg(
                acct,
                S if prod_index % 2 else P,
                ("m7g.large", "c6i.large")[prod_index % 2],
                b.n(10),
                "web",
                always_on=2,
            )
            for itype in ("m4.xlarge", "c4.large", "r4.xlarge", "t2.large", "r6i.large", "m5.large") * b.n(1):
                b.ec2(acct, P, itype)
                b.ebs(
                    acct,
                    P,
                    size_gb=b.rng.randrange(50, 500),
                    volume_type=("gp2", "gp3")[b.rng.randrange(2)],
                    attached=True,
                )
            for k in range(b.n(4)):
                b.fargate(acct, P, f"svc-{acct.team}-{k}", 2, (0.5, 1.0, 2.0)[k % 3], (1.0, 2.0, 4.0)[k % 3])
            for _ in range(b.n(3)):
                b.lambda_fn(acct, P, "web", gb_seconds=b.rng.uniform(8000, 30000), requests=b.rng.uniform(5e4, 4e5))
            b.rds(acct, P, "db.r6g.large", b.rng.randrange(200, 1000))
            if prod_index == 0:
                b.rds(acct, P, "db.m5.large", b.rng.randrange(100, 400))
            for _ in range(b.n(2)):
                b.s3(acct, P, b.rng.uniform(2e3, 2e4), 5e4, 5e5, "web")
            b.nat(acct, P, gb_per_hour=30.0, profile="web")
            b.data_transfer(acct, P, out_gb=20.0, regional_gb=50.0)
            for _ in range(2):
                b.snapshot(acct, P, size_gb=b.rng.randrange(50, 300), created=b.history_start - timedelta(days=20))
            prod_index += 1
        elif acct.role == "dev":
            for itype in (
                "t2.medium",
                "t3.large",
                "m4.large",
                "t3.medium",
                "t2.large",
                "t3.medium",
                "m5.large",
                "t3.large",
            ) * b.n(1):
                b.ec2(acct, P, itype, profile="dev", threshold=b.rng.uniform(0.0, 0.85))
            for k in range(b.n(6)):
                b.ebs(acct, P, size_gb=b.rng.randrange(20, 200), volume_type="gp2", attached=k % 2 == 0)
            for k in range(b.n(5)):
                b.snapshot(acct, P, size_gb=b.rng.randrange(20, 500), created=old[k % len(old)])
            b.nat(acct, P, gb_per_hour=0.002, profile="flat")  # idle NAT: hours billed, almost no traffic
            for _ in range(b.n(2)):
                b.idle_ipv4(acct, P)
            b.s3(acct, P, b.rng.uniform(100, 800), 2e3, 2e4, "dev")
        elif acct.role == "data":
            for itype in ("r4.2xlarge", "r6i.xlarge", "r6i.xlarge") * b.n(1):
                b.ec2(acct, P, itype)
                b.ebs(acct, P, size_gb=b.rng.randrange(500, 2000), volume_type="gp3", attached=True)
            b.asg(acct, P, "c6i.2xlarge", b.n(10), "batch", always_on=0, headroom=1.4, spot=True)
            for _ in range(b.n(3)):
                b.s3(acct, P, b.rng.uniform(1e4, 8e4), 2e4, 2e5, "batch")
            b.rds(acct, S, "db.r5.xlarge", b.rng.randrange(500, 2000))
            for _ in range(b.n(2)):
                b.lambda_fn(acct, P, "batch", gb_seconds=b.rng.uniform(5000, 20000), requests=b.rng.uniform(1e4, 1e5))
            b.idle_ipv4(acct, P)
        else:
            b.s3(acct, P, b.rng.uniform(200, 2000), 1e4, 1e4, "flat")
            b.ec2(acct, P, "t3.medium")
            b.ebs(acct, P, size_gb=30, volume_type="gp3", attached=True)

    resources = pl.DataFrame(b.rows, infer_schema_length=None).with_row_index("resource_idx")
    ri = _reserved_instance(tenant, accounts, resources, P)
    names = {a.account_id: a.name for a in accounts}
    return Inventory(resources, accounts, P, ri, names)


def _reserved_instance(
    tenant: TenantConfig, accounts: list[Account], resources: pl.DataFrame, region: str
) -> RiSpec | None:
    """One RDS reservation sized one above the matching fleet, so its RIFee shows unused hours."""
    itype = "db.r6g.large"
    matching = resources.filter((pl.col("instance_type") == itype) & (pl.col("region") == region)).height
    if matching == 0:
        return None
    owner = next(a for a in accounts if a.role == "prod")
    start = tenant.history_start - timedelta(days=200)
    return RiSpec(
        arn=f"arn:aws:rds:{region}:{owner.account_id}:ri:blocks-{stable_key(tenant.id, 'ri'):08x}",
        account_id=owner.account_id,
        region=region,
        instance_type=itype,
        count=matching + 1,
        hourly_rate=round(cat.RDS_TYPES[itype].od_rate * cat.RI_RATE_RATIO * cat.REGION_PRICE_FACTOR[region], 6),
        start=start,
        end=start + timedelta(days=3 * 365),
    )
