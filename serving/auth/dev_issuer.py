"""The development token issuer: an RS256 key pair at $BLOCKS_HOME/dev_jwt/, created on first use.

Its tokens look like Cognito access tokens (token_use=access, client_id) so the dev server runs the same
verification code as production, only with a local key set instead of Cognito's JWKS.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_ISSUER = "blocks-dev"
DEV_CLIENT_ID = "blocks-dev-client"
MAX_TTL_SECONDS = 7 * 24 * 3600


class DevIssuer:
    def __init__(self, home: Path):
        self.dir = home / "dev_jwt"
        self._private = None
        self._public = None

    def _ensure(self) -> None:
        if self._private is not None:
            return
        priv_path = self.dir / "private.pem"
        if not priv_path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            tmp = self.dir / f".tmp-{uuid.uuid4().hex}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            try:
                os.link(tmp, priv_path)  # first writer wins when two processes start at once
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        self._private = serialization.load_pem_private_key(priv_path.read_bytes(), password=None)
        self._public = self._private.public_key()

    @property
    def kid(self) -> str:
        self._ensure()
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(der).hexdigest()[:16]

    def public_key(self):
        self._ensure()
        return self._public

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def issue(self, tenant_id: str, roles: list[str], ttl: int = 3600, subject: str | None = None) -> str:
        if not 0 < ttl <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl must be between 1 and {MAX_TTL_SECONDS} seconds, got {ttl}")
        self._ensure()
        now = int(time.time())
        claims = {
            "sub": subject or f"dev-{tenant_id}",
            "iss": DEV_ISSUER,
            "client_id": DEV_CLIENT_ID,
            "token_use": "access",
            "tenant_id": tenant_id,
            "roles": roles,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})
