"""Serving configuration: the serving block of the platform's settings, checked for combinations the API cannot
run with (the values themselves are read in blocks_pipelines.settings, with every other environment variable)."""

from __future__ import annotations

from blocks_pipelines.settings import ServingSettings, Settings, SettingsError

ServingConfig = ServingSettings


class ConfigError(RuntimeError):
    pass


def load_config(settings: Settings) -> ServingConfig:
    try:
        cfg = settings.serving
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    if cfg.uses_cognito and not cfg.cognito_client_id:
        raise ConfigError(
            "BLOCKS_COGNITO_USER_POOL_ID is set but BLOCKS_COGNITO_CLIENT_ID is not: set the app client "
            "id the tokens are issued for"
        )
    if settings.is_production and not cfg.uses_cognito:
        raise ConfigError(
            "BLOCKS_ENV=production needs Cognito: set BLOCKS_COGNITO_REGION, BLOCKS_COGNITO_USER_POOL_ID "
            "and BLOCKS_COGNITO_CLIENT_ID (the development token issuer is disabled in production)"
        )
    return cfg
