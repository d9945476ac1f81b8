"""Token verification. The rules (REFERENCE.md section 5): RS256 only, the signing key chosen by kid from our
key source, exp and iss checked, and for Cognito-style tokens aud (id token) or client_id (access token) plus
token_use. Tenant and roles come from the verified claims and nowhere else."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

import jwt

from serving.auth.keys import KeySource
from serving.auth.principal import ROLES, AuthError, Principal

ALGORITHMS = ["RS256"]
TENANT_CLAIMS = ("custom:tenant_id", "tenant_id")
ROLE_CLAIMS = ("cognito:groups", "roles")
_TENANT_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
MAX_TOKEN_BYTES = 8192


class TokenVerifier:
    def __init__(self, keys: KeySource, issuer: str, client_id: str, leeway: float = 10.0, cache_size: int = 4096):
        self.keys = keys
        self.issuer = issuer
        self.client_id = client_id
        self.leeway = leeway
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        # A token that verified once verifies again until it expires; the cache only skips the RSA work.
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None:
            if hit.expires_at + self.leeway > time.time():
                return hit
            with self._lock:
                self._cache.pop(token, None)
        principal = self._verify(token)
        with self._lock:
            self._cache[token] = principal
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def _verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise AuthError(f"algorithm {header.get('alg')!r} is not accepted; tokens must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("token header has no kid")
        key = self.keys.get(kid)
        if key is None:
            raise AuthError("unknown signing key (kid)")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        token_use = claims.get("token_use")
        if token_use == "id":
            aud = claims.get("aud")
            if aud != self.client_id and not (isinstance(aud, list) and self.client_id in aud):
                raise AuthError("token audience is not this application")
        elif token_use == "access":
            if claims.get("client_id") != self.client_id:
                raise AuthError("token client_id is not this application")
        else:
            raise AuthError("token_use must be 'id' or 'access'")
        tenant = next((claims[c] for c in TENANT_CLAIMS if c in claims), None)
        if not isinstance(tenant, str) or not _TENANT_ID.match(tenant):
            raise AuthError("token carries no valid tenant claim")
        raw_roles = next((claims[c] for c in ROLE_CLAIMS if c in claims), None) or ["viewer"]
        if isinstance(raw_roles, str):
            raw_roles = [raw_roles]
        roles = frozenset(r for r in raw_roles if r in ROLES) or frozenset({"viewer"})
        return Principal(
            subject=str(claims["sub"]),
            tenant_id=tenant,
            roles=roles,
            token_use=token_use,
            expires_at=float(claims["exp"]),
        )
