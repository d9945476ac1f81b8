"""Public on-demand prices and product attributes the generator draws from.

Rates are us-east-1 Linux on-demand list prices (rounded) as published in the AWS price list; other regions apply
a factor. They only need to be plausible and internally consistent: every cost the generator writes is
rate x amount, so any test can recompute it.
"""

from __future__ import annotations

from dataclasses import dataclass

# region code -> (usage type prefix, product/location)
REGIONS: dict[str, tuple[str, str]] = {
    "us-east-1": ("USE1", "US East (N. Virginia)"),
    "us-east-2": ("USE2", "US East (Ohio)"),
    "us-west-2": ("USW2", "US West (Oregon)"),
    "eu-west-1": ("EUW1", "EU (Ireland)"),
    "eu-central-1": ("EUC1", "EU (Frankfurt)"),
}
REGION_PRICE_FACTOR: dict[str, float] = {
    "us-east-1": 1.0,
    "us-east-2": 1.0,
    "us-west-2": 1.0,
    "eu-west-1": 1.1,
    "eu-central-1": 1.15,
}


def usage_type(region: str, base: str, *, always_prefixed: bool = False) -> str:
    """AWS omits the region prefix for the oldest us-east-1 usage types (BoxUsage, EBS, DataTransfer...);
    newer families (PublicIPv4, Fargate, Lambda) always carry it."""
    if region == "us-east-1" and not always_prefixed:
        return base
    return f"{REGIONS[region][0]}-{base}"


@dataclass(frozen=True)
class InstanceType:
    name: str
    od_rate: float  # $/hour, us-east-1 Linux
    vcpu: int
    memory_gib: float
    current_generation: bool

    @property
    def family(self) -> str:
        return self.name.split(".")[-2] if self.name.startswith("db.") else self.name.split(".")[0]


_SIZE_NORMALIZATION = {
    "nano": 0.25,
    "micro": 0.5,
    "small": 1,
    "medium": 2,
    "large": 4,
    "xlarge": 8,
    "2xlarge": 16,
    "4xlarge": 32,
    "8xlarge": 64,
}


def normalization_factor(instance_type: str) -> float:
    return float(_SIZE_NORMALIZATION.get(instance_type.split(".")[-1], 1))


def _it(name: str, rate: float, vcpu: int, mem: float, current: bool = True) -> InstanceType:
    return InstanceType(name, rate, vcpu, mem, current)


EC2_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        # previous generations: what modernization rules should find
        _it("m4.large", 0.10, 2, 8, False),
        _it("m4.xlarge", 0.20, 4, 16, False),
        _it("m4.2xlarge", 0.40, 8, 32, False),
        _it("c4.large", 0.10, 2, 3.75, False),
        _it("c4.xlarge", 0.199, 4, 7.5, False),
        _it("r4.large", 0.133, 2, 15.25, False),
        _it("r4.xlarge", 0.266, 4, 30.5, False),
        _it("r4.2xlarge", 0.532, 8, 61, False),
        _it("t2.medium", 0.0464, 2, 4, False),
        _it("t2.large", 0.0928, 2, 8, False),
        # current generations
        _it("m5.large", 0.096, 2, 8),
        _it("m5.xlarge", 0.192, 4, 16),
        _it("m5.2xlarge", 0.384, 8, 32),
        _it("m6i.large", 0.096, 2, 8),
        _it("m6i.xlarge", 0.192, 4, 16),
        _it("m6i.2xlarge", 0.384, 8, 32),
        _it("m7g.large", 0.0816, 2, 8),
        _it("m7g.xlarge", 0.1632, 4, 16),
        _it("c6i.large", 0.085, 2, 4),
        _it("c6i.xlarge", 0.17, 4, 8),
        _it("c6i.2xlarge", 0.34, 8, 16),
        _it("r6i.large", 0.126, 2, 16),
        _it("r6i.xlarge", 0.252, 4, 32),
        _it("r6i.2xlarge", 0.504, 8, 64),
        _it("t3.medium", 0.0416, 2, 4),
        _it("t3.large", 0.0832, 2, 8),
    )
}

RDS_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        _it("db.m5.large", 0.171, 2, 8),
        _it("db.r6g.large", 0.225, 2, 16),
        _it("db.r5.xlarge", 0.50, 4, 32),
        _it("db.t3.medium", 0.068, 2, 4),
    )
}

SPOT_PRICE_RATIO = 0.32  # Spot price / on-demand price
RI_RATE_RATIO = 0.64  # 1-year no-upfront standard RI effective rate / on-demand

# Unit prices ($ per unit), us-east-1
FARGATE_VCPU_HOUR = 0.04048
FARGATE_GB_HOUR = 0.004445
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1_000_000
S3_STANDARD_GB_MONTH = 0.023
S3_TIER1_REQUEST = 0.005 / 1000
S3_TIER2_REQUEST = 0.0004 / 1000
EBS_GB_MONTH = {"gp2": 0.10, "gp3": 0.08}
EBS_SNAPSHOT_GB_MONTH = 0.05
RDS_GP2_GB_MONTH = 0.115
NAT_HOUR = 0.045
NAT_GB = 0.045
DATA_TRANSFER_OUT_GB = 0.09
DATA_TRANSFER_REGIONAL_GB = 0.01
PUBLIC_IPV4_HOUR = 0.005

PRODUCT_NAMES: dict[str, str] = {
    "AmazonEC2": "Amazon Elastic Compute Cloud",
    "AmazonRDS": "Amazon Relational Database Service",
    "AmazonS3": "Amazon Simple Storage Service",
    "AmazonECS": "Amazon Elastic Container Service",
    "AWSLambda": "AWS Lambda",
    "AmazonVPC": "Amazon Virtual Private Cloud",
    "ComputeSavingsPlans": "Savings Plans for AWS Compute usage",
}

# FOCUS ServiceCategory per service code
SERVICE_CATEGORIES: dict[str, str] = {
    "AmazonEC2": "Compute",
    "AmazonECS": "Compute",
    "AWSLambda": "Compute",
    "ComputeSavingsPlans": "Compute",
    "AmazonRDS": "Databases",
    "AmazonS3": "Storage",
    "AmazonVPC": "Networking",
}

LEGAL_ENTITY = "Amazon Web Services, Inc."
CURRENCY = "USD"
