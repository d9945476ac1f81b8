"""The FastAPI app factory: `create_app()` wires auth, tenant scoping, the mart store and Major Tom."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from blocks_pipelines.settings import Settings, get_settings
from serving import errors
from serving.api import anomalies, chat, onboarding, recommendations, savings_ledger, savings_plans, spend
from serving.auth.dev_issuer import DEV_CLIENT_ID, DEV_ISSUER, DevIssuer
from serving.auth.keys import DevKeySource, JwksKeySource, cognito_jwks_url
from serving.auth.verify import TokenVerifier
from serving.config import ServingConfig, load_config
from serving.data.spend import SpendQuery, cached_spend
from serving.data.store import MartStore, TenantData
from serving.hot_cache import HotResponseCache
from serving.limits import BodySizeLimit
from serving.major_tom import answers
from serving.major_tom.providers import make_provider
from serving.major_tom.ratelimit import RateLimiter
from serving.schemas import Health
from serving.tenants import TenantDirectory

DOCS_ASSETS = "/docs-assets"
DESCRIPTION = """Spend, projections, recommendations, Savings Plans and Major Tom for one tenant.

Every route except /healthz needs `Authorization: Bearer <jwt>`; the tenant and roles come from the verified token
only. Until a tenant's backfill has produced marts, responses carry `data_status: "backfill_pending"` and sample data
flagged `sample: true`. Errors are `{"error": {"code", "message", "field"}}`."""


def build_verifier(settings: Settings, config: ServingConfig) -> TokenVerifier:
    if config.uses_cognito:
        issuer = f"https://cognito-idp.{config.cognito_region}.amazonaws.com/{config.cognito_user_pool_id}"
        keys = JwksKeySource(cognito_jwks_url(config.cognito_region, config.cognito_user_pool_id))
        return TokenVerifier(keys, issuer=issuer, client_id=config.cognito_client_id)
    return TokenVerifier(DevKeySource(DevIssuer(settings.home)), issuer=DEV_ISSUER, client_id=DEV_CLIENT_ID)


class _LazyStateStore:
    """The state store, opened on first use (routes that never need it do not pay for it)."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._store = None
        self._lock = threading.Lock()

    def __call__(self):
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from blocks_pipelines.state import get_state_store

                    self._store = get_state_store(self._settings)
        return self._store


log = logging.getLogger("blocks.serving")


def warm(app: FastAPI) -> None:
    """Load each registered tenant's snapshot, its default dashboard aggregates and what Major Tom's answers read,
    and open the state store, so first requests hit cache."""
    # Snapshots first: a request waits for its tenant's snapshot, but only competes with the aggregates' CPU.
    for stage in (_load_snapshot, _warm_dashboard, answers.warm):
        for tenant_id in app.state.tenants.ids():
            try:
                data = app.state.marts.tenant(tenant_id)
                if data.last_date is not None:
                    stage(data)
            except Exception:  # warming is an optimisation; the request path reports real errors
                log.exception("warming tenant %s failed", tenant_id)
    try:
        app.state.state_store()
    except Exception:
        log.exception("opening the state store failed")


def _load_snapshot(data: TenantData) -> None:
    """Nothing more to do: getting the tenant's data loaded its snapshot."""


def _warm_dashboard(data: TenantData) -> None:
    start = data.last_date - timedelta(days=29)
    for group_by in (None, "service", "account"):
        cached_spend(data, SpendQuery(start=start, end=data.last_date, group_by=group_by))


@asynccontextmanager
async def _lifespan(app: FastAPI):
    if app.state.config.preload:
        threading.Thread(target=warm, args=(app,), name="blocks-warm", daemon=True).start()
    yield
    app.state.marts.close()


def create_app(settings: Settings | None = None, *, verifier: TokenVerifier | None = None) -> FastAPI:
    settings = settings or get_settings()
    config = load_config(settings)
    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from the app itself (fastapi-offline ships the
    # files), not from a CDN, so the docs work on a laptop without internet and under a strict CSP.
    app = FastAPIOffline(
        title="Blocks API", version="0.1.0", description=DESCRIPTION, lifespan=_lifespan, static_url=DOCS_ASSETS
    )
    app.state.settings = settings
    app.state.config = config
    app.state.verifier = verifier or build_verifier(settings, config)
    app.state.tenants = TenantDirectory(settings.tenants_dir)
    app.state.marts = MartStore(settings.lake_uri, settings.home / "serving_cache", config.refresh_seconds)
    app.state.state_store = _LazyStateStore(settings)
    app.state.chat_limiter = RateLimiter(config.chat_per_minute, config.chat_burst)
    app.state.chat_provider = make_provider(config.bedrock_model_id, settings.aws_region)
    errors.install(app)
    for module in (spend, recommendations, savings_plans, savings_ledger, chat, onboarding, anomalies):
        app.include_router(module.router)

    @app.get("/healthz", response_model=Health, tags=["ops"], summary="Liveness (no auth)")
    async def healthz() -> Health:
        return Health(status="ok")

    app.add_middleware(HotResponseCache, state=app.state)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    return app
