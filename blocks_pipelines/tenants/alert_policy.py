"""A tenant's alerting policy (the `alerts:` block of its YAML): how sensitive detection is, the smallest dollar
impact worth telling anyone about, and where alerts go.

Channel secrets (Slack webhook URLs, SMTP passwords) are named by environment variable, never written in the YAML:
the registry is committed to git.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookChannel(_Strict):
    type: Literal["webhook", "slack"]
    url: str | None = Field(None, pattern=r"^https?://", description="the endpoint; prefer url_env for Slack")
    url_env: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]*$", description="environment variable holding the URL")

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url or url_env")
        return self


class EmailChannel(_Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    sender: str = Field("alerts@blocks.local", alias="from")
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, gt=0, lt=65536)
    starttls: bool = False
    username_env: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]*$")
    password_env: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]*$")


class SnsChannel(_Strict):
    type: Literal["sns"]
    topic_arn: str = Field(pattern=r"^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+$")
    region: str | None = None


class FileChannel(_Strict):
    type: Literal["file"]
    path: str = Field("alerts/{tenant}.jsonl", description="JSON lines; relative to BLOCKS_HOME; {tenant} expands")


Channel = Annotated[WebhookChannel | EmailChannel | SnsChannel | FileChannel, Field(discriminator="type")]


def _default_channels() -> list[Channel]:
    return [FileChannel(type="file")]


class AlertPolicy(_Strict):
    min_impact_usd: float = Field(
        50.0, ge=0, description="a spend anomaly is raised only when actual - expected is at least this much a day"
    )
    sensitivity: float = Field(
        4.0,
        gt=0,
        description="robust z-score (a day's excess over its weekday baseline, in noise units) that is anomalous",
    )
    coverage_dip_points: float = Field(
        10.0, gt=0, le=100, description="a day's SP coverage this many points under its 14-day median is a dip"
    )
    utilization_floor_pct: float = Field(
        90.0, gt=0, le=100, description="a day's SP utilization under this (with commitment held) is a dip"
    )
    channels: list[Channel] = Field(default_factory=_default_channels)
