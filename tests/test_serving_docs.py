"""/docs and /redoc work without internet: every script and stylesheet the pages load is served by the app."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.testing import prepare_env

DEMO_TENANTS = Path(__file__).resolve().parent.parent / "assets_config" / "tenants"


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href"):
            self.urls.append(a["href"])


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        prepare_env(mp, tmp_path_factory.mktemp("docs"), DEMO_TENANTS, {"acme_corp": 1.0}, days=3)
        with TestClient(create_app()) as c:
            yield c


@pytest.mark.parametrize("page, must_load", [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_docs_pages_load_their_assets_from_the_app(client, page, must_load):
    r = client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    parser = _Assets()
    parser.feed(r.text)
    assert any(u.endswith(must_load) for u in parser.urls), parser.urls
    # nothing from another host: no CDN, no web fonts
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text), r.text
    for url in parser.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000 or url.endswith(".png"), url
    assert "/openapi.json" in r.text and client.get("/openapi.json").status_code == 200
