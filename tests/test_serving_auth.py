"""Bearer JWT verification: forged tokens get 401; Cognito-style id/access tokens via a JWKS; the dev issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.auth.dev_issuer import DEV_CLIENT_ID, DEV_ISSUER, DevIssuer
from serving.auth.keys import DevKeySource, JwksKeySource
from serving.auth.principal import AuthError
from serving.auth.verify import TokenVerifier
from serving.testing import prepare_env

DEMO_TENANTS = Path(__file__).resolve().parent.parent / "assets_config" / "tenants"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield prepare_env(mp, tmp_path_factory.mktemp("auth"), DEMO_TENANTS, {"acme_corp": 1.0}, days=10)


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app()) as c:
        yield c


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**over):
    now = int(time.time())
    base = {
        "sub": "u1",
        "iss": DEV_ISSUER,
        "client_id": DEV_CLIENT_ID,
        "token_use": "access",
        "tenant_id": "acme_corp",
        "roles": ["viewer"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload, key, kid, alg="RS256"):
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def dev_key(home):
    issuer = DevIssuer(home)
    issuer.kid  # noqa: B018 (creates the key pair)
    return issuer._private, issuer.kid


def forged_tokens(home) -> dict[str, str]:
    key, kid = dev_key(home)
    good = sign(claims(), key, kid)
    h, p, s = good.split(".")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        DevIssuer(home)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_body = b64(json.dumps(claims()).encode())
    hs_sig = b64(hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest())
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    tampered = b64(json.dumps(claims(tenant_id="globex")).encode())
    return {
        "alg_none": f"{none_header}.{b64(json.dumps(claims()).encode())}.",
        "hs256_with_public_key": f"{hs_header}.{hs_body}.{hs_sig}",
        "expired": sign(claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), key, kid),
        "wrong_issuer": sign(claims(iss="https://evil.example"), key, kid),
        "wrong_client_id": sign(claims(client_id="someone-else"), key, kid),
        "id_token_wrong_audience": sign(claims(token_use="id", client_id=None, aud="someone-else"), key, kid),
        "refresh_token_use": sign(claims(token_use="refresh"), key, kid),
        "no_token_use": sign(claims(token_use=None), key, kid),
        "no_exp": sign(claims(exp=None), key, kid),
        "unknown_kid": sign(claims(), other, "not-our-kid"),
        "right_kid_wrong_key": sign(claims(), other, kid),
        "tampered_payload": f"{h}.{tampered}.{s}",
        "no_tenant": sign(claims(tenant_id=None), key, kid),
        "bad_tenant_id": sign(claims(tenant_id="../globex"), key, kid),
        "garbage": "not.a.jwt",
        "no_kid": jwt.encode(claims(), key, algorithm="RS256"),
    }


def test_a_good_dev_token_is_accepted(client, home):
    key, kid = dev_key(home)
    r = client.get("/api/projection", headers={"Authorization": "Bearer " + sign(claims(), key, kid)})
    assert r.status_code == 200 and r.json()["tenant_id"] == "acme_corp"


FORGED = (
    "alg_none",
    "hs256_with_public_key",
    "expired",
    "wrong_issuer",
    "wrong_client_id",
    "id_token_wrong_audience",
    "refresh_token_use",
    "no_token_use",
    "no_exp",
    "unknown_kid",
    "right_kid_wrong_key",
    "tampered_payload",
    "no_tenant",
    "bad_tenant_id",
    "garbage",
    "no_kid",
)


@pytest.fixture(scope="module")
def forged(home):
    tokens = forged_tokens(home)
    assert set(tokens) == set(FORGED)
    return tokens


@pytest.mark.parametrize("name", FORGED)
def test_forged_tokens_get_401_on_every_endpoint(client, forged, name):
    token = forged[name]
    for method, url, body in (
        ("GET", "/api/spend", None),
        ("GET", "/api/recommendations", None),
        ("POST", "/api/chat", {"message": "what should I do next?"}),
        ("PATCH", "/api/recommendations/x", {"status": "done"}),
        ("POST", "/api/ingest/test-connection", None),
    ):
        r = client.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (name, url, r.text)
        assert r.json()["error"]["code"] == "unauthorized"


def test_non_bearer_schemes_are_401(client, home):
    key, kid = dev_key(home)
    token = sign(claims(), key, kid)
    for header in (f"Basic {token}", token, "Bearer", "Bearer "):
        assert client.get("/api/spend", headers={"Authorization": header}).status_code == 401
    assert client.get("/api/spend?access_token=" + token).status_code == 401


def test_tenant_comes_only_from_the_token_not_the_request(client, home):
    key, kid = dev_key(home)
    h = {"Authorization": "Bearer " + sign(claims(), key, kid), "X-Tenant-Id": "globex"}
    assert client.get("/api/spend?tenant_id=globex", headers=h).status_code == 400  # unknown parameter
    assert client.get("/api/projection", headers=h).json()["tenant_id"] == "acme_corp"


# ---- Cognito -------------------------------------------------------------------------------------------------------

POOL_ISS = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TESTPOOL"
CLIENT = "app-client-123"


class FakeJwks:
    def __init__(self):
        self.keys = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.fetches = 0

    def add(self, kid):
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def __call__(self, url):
        self.fetches += 1
        out = []
        for kid, k in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key()))
            jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
            out.append(jwk)
        return {"keys": out}


def cognito_claims(token_use, **over):
    now = int(time.time())
    c = {
        "sub": "cog-user",
        "iss": POOL_ISS,
        "token_use": token_use,
        "exp": now + 600,
        "iat": now,
        "custom:tenant_id": "acme_corp",
        "cognito:groups": ["admin"],
    }
    c.update({"aud": CLIENT} if token_use == "id" else {"client_id": CLIENT})
    c.update(over)
    return c


def test_cognito_id_and_access_tokens(home):
    jwks = FakeJwks()
    clock = [0.0]
    keys = JwksKeySource("https://example/jwks.json", fetch=jwks, min_refetch=60, clock=lambda: clock[0])
    v = TokenVerifier(keys, issuer=POOL_ISS, client_id=CLIENT)
    p = v.verify(sign(cognito_claims("id"), jwks.keys["k1"], "k1"))
    assert (p.tenant_id, p.is_admin, p.token_use) == ("acme_corp", True, "id")
    assert v.verify(sign(cognito_claims("access"), jwks.keys["k1"], "k1")).token_use == "access"
    for bad in (
        cognito_claims("id", aud="other"),
        cognito_claims("access", client_id="other"),
        cognito_claims("id", iss=POOL_ISS + "x"),
        cognito_claims("access", exp=int(time.time()) - 100),
    ):
        with pytest.raises(AuthError):
            v.verify(sign(bad, jwks.keys["k1"], "k1"))
    assert jwks.fetches == 1  # cached
    # key rotation: a new kid is fetched once; a flood of unknown kids does not refetch within min_refetch
    jwks.add("k2")
    clock[0] = 120.0
    assert v.verify(sign(cognito_claims("access", sub="other"), jwks.keys["k2"], "k2")).subject == "other"
    assert jwks.fetches == 2
    for i in range(5):
        with pytest.raises(AuthError):
            v.verify(sign(cognito_claims("access"), jwks.keys["k2"], f"forged-{i}"))
    assert jwks.fetches == 2


def test_app_with_cognito_verifier_scopes_to_the_claimed_tenant(home, monkeypatch):
    monkeypatch.setenv("BLOCKS_COGNITO_USER_POOL_ID", "eu-west-1_TESTPOOL")
    monkeypatch.setenv("BLOCKS_COGNITO_CLIENT_ID", CLIENT)
    monkeypatch.setenv("BLOCKS_COGNITO_REGION", "eu-west-1")
    jwks = FakeJwks()
    verifier = TokenVerifier(JwksKeySource("x", fetch=jwks), issuer=POOL_ISS, client_id=CLIENT)
    with TestClient(create_app(verifier=verifier)) as c:
        tok = sign(cognito_claims("id", **{"custom:tenant_id": "globex"}), jwks.keys["k1"], "k1")
        assert c.get("/api/projection", headers={"Authorization": f"Bearer {tok}"}).json()["tenant_id"] == "globex"
        dev_tok = sign(claims(), *dev_key(home))
        assert c.get("/api/projection", headers={"Authorization": f"Bearer {dev_tok}"}).status_code == 401


def test_production_refuses_to_start_without_cognito(home, monkeypatch):
    from serving.config import ConfigError

    monkeypatch.setenv("BLOCKS_ENV", "production")
    with pytest.raises(ConfigError, match="BLOCKS_COGNITO_USER_POOL_ID"):
        create_app()


def test_dev_token_cli(home):
    from serving.cli import dev_token

    out = CliRunner().invoke(dev_token, ["--tenant", "globex", "--role", "admin", "--ttl", "120"])
    assert out.exit_code == 0, out.output
    issuer = DevIssuer(home)
    v = TokenVerifier(DevKeySource(issuer), issuer=DEV_ISSUER, client_id=DEV_CLIENT_ID)
    p = v.verify(out.output.strip())
    assert p.tenant_id == "globex" and p.is_admin and p.expires_at - time.time() <= 121
    bad = CliRunner().invoke(dev_token, ["--tenant", "nobody"])
    assert bad.exit_code != 0 and "unknown tenant" in bad.output
    assert (home / "dev_jwt" / "private.pem").stat().st_mode & 0o077 == 0
