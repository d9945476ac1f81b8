"""Key sources for token verification: Cognito's JWKS (fetched, cached, refreshed on an unknown kid) or the
local dev issuer's key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import jwt

from serving.auth.dev_issuer import DevIssuer


class KeySource(Protocol):
    def get(self, kid: str) -> Any | None: ...


class DevKeySource:
    def __init__(self, issuer: DevIssuer):
        self.issuer = issuer

    def get(self, kid: str) -> Any | None:
        return self.issuer.public_key() if kid == self.issuer.kid else None


def cognito_jwks_url(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}/.well-known/jwks.json"


def _http_get_json(url: str) -> dict:
    import httpx

    resp = httpx.get(url, timeout=5.0)
    resp.raise_for_status()
    return resp.json()


class JwksKeySource:
    """Keys from a JWKS URL. An unknown kid triggers a refetch (key rotation), at most once per `min_refetch`
    seconds so forged kids cannot make us hammer the endpoint."""

    def __init__(
        self,
        url: str,
        fetch: Callable[[str], dict] = _http_get_json,
        ttl: float = 3600.0,
        min_refetch: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self._fetch = fetch
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def get(self, kid: str) -> Any | None:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._ttl
        may_refetch = self._fetched_at is None or now - self._fetched_at > self._min_refetch
        if stale or (kid not in self._keys and may_refetch):
            self._refresh()
        return self._keys.get(kid)

    def _refresh(self) -> None:
        with self._lock:
            try:
                doc = self._fetch(self.url)
            except Exception:  # an unreachable JWKS keeps the last good keys; the caller sees an unknown kid
                if self._fetched_at is None:
                    self._fetched_at = self._clock() - self._ttl + self._min_refetch
                return
            keys = {}
            for jwk in doc.get("keys", []):
                if jwk.get("kty") == "RSA" and jwk.get("kid") and jwk.get("alg", "RS256") == "RS256":
                    keys[jwk["kid"]] = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
            self._keys = keys
            self._fetched_at = self._clock()
