"""What ``lantern serve`` runs: the API with the UI when settings ask for it; the API
factory alone serves no UI."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.main import build_app


def test_the_web_app_serves_the_login_page_and_the_api(container: Any) -> None:
    with TestClient(build_app(container=container)) as client:
        assert client.get("/login").status_code == 200
        assert client.get("/ui/", follow_redirects=False).headers["location"] == "/login?next=/ui/"
        assert client.get("/health").status_code == 200


def test_the_ui_is_off_when_settings_say_so(container: Any) -> None:
    container.settings.server.ui = False
    with TestClient(build_app(container=container)) as client:
        assert client.get("/login").status_code == 404
        assert client.get("/ui/").status_code == 404
        assert client.get("/health").status_code == 200


def test_the_api_factory_alone_has_no_ui(container: Any) -> None:
    with TestClient(create_app(container=container)) as client:
        assert client.get("/login").status_code == 404
        assert client.get("/api/v1/docs").status_code == 200


def test_the_indexes_are_the_configured_backends(
    container: Any, request: pytest.FixtureRequest
) -> None:
    """LANTERN_VECTOR_STORE__KIND switches both indexes (the lexical kind follows it);
    each API test variant really runs on its store."""
    _, store = request.node.callspec.params["database_url"]
    assert container.settings.vector_store.kind == store
    assert container.vectors.manifest.backend == store
    assert f".{container.settings.lexical_kind}_" in type(container.lexical).__module__
