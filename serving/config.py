"""Serving settings from the environment (on top of the platform's blocks_pipelines.settings)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from blocks_pipelines.settings import Settings


@dataclass(frozen=True)
class ServingConfig:
    cognito_region: str | None
    cognito_user_pool_id: str | None
    cognito_client_id: str | None
    refresh_seconds: float  # how often a tenant's mart files are checked for a new export
    chat_per_minute: float  # Major Tom requests per tenant per minute (token bucket refill)
    chat_burst: int
    max_body_bytes: int
    bedrock_model_id: str | None
    preload: bool  # load every tenant's snapshot and hot aggregates in the background at startup

    @property
    def uses_cognito(self) -> bool:
        return bool(self.cognito_user_pool_id)


class ConfigError(RuntimeError):
    pass


def load_config(settings: Settings) -> ServingConfig:
    env = os.environ
    cfg = ServingConfig(
        cognito_region=env.get("BLOCKS_COGNITO_REGION") or settings.aws_region,
        cognito_user_pool_id=env.get("BLOCKS_COGNITO_USER_POOL_ID") or None,
        cognito_client_id=env.get("BLOCKS_COGNITO_CLIENT_ID") or None,
        refresh_seconds=_number("BLOCKS_SERVING_REFRESH_SECONDS", 5.0),
        chat_per_minute=_number("BLOCKS_CHAT_PER_MINUTE", 20.0),
        chat_burst=int(_number("BLOCKS_CHAT_BURST", 5)),
        max_body_bytes=int(_number("BLOCKS_MAX_BODY_BYTES", 64 * 1024)),
        bedrock_model_id=env.get("BLOCKS_BEDROCK_MODEL_ID") or None,
        preload=env.get("BLOCKS_SERVING_PRELOAD", "1") not in ("0", "false", "no"),
    )
    if cfg.uses_cognito and not cfg.cognito_client_id:
        raise ConfigError("BLOCKS_COGNITO_USER_POOL_ID is set but BLOCKS_COGNITO_CLIENT_ID is not: set the app client "
                          "id the tokens are issued for")
    if settings.is_production and not cfg.uses_cognito:
        raise ConfigError("BLOCKS_ENV=production needs Cognito: set BLOCKS_COGNITO_REGION, BLOCKS_COGNITO_USER_POOL_ID "
                          "and BLOCKS_COGNITO_CLIENT_ID (the development token issuer is disabled in production)")
    return cfg


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value
