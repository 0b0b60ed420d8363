"""Token on every request (header, query or cookie; 401 without, 403 when wrong), security
headers, no CORS, and tokens that cannot break a header or a cookie refused up front."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pgflow.web import create_app
from pgflow.web._security import COOKIE
from tests.web.conftest import TOKEN


@pytest.fixture
def guarded(populated: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(populated["url"], token=TOKEN)) as client:
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs",
        "/api/health",
        "/api/openapi.json",
        "/api/events",
        "/api/schedules",
        "/",
        "/metrics",
        "/schedules",
    ],
)
def test_without_a_token_every_request_is_401(guarded: TestClient, path: str) -> None:
    response = guarded.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["detail"]


def test_a_wrong_token_is_403_wherever_it_comes_from(guarded: TestClient) -> None:
    assert guarded.get("/api/runs", headers={"authorization": "Bearer nope"}).status_code == 403
    assert guarded.get("/api/runs", params={"token": "nope"}).status_code == 403
    guarded.cookies.set(COOKIE, "nope")
    assert guarded.get("/api/runs").status_code == 403


def test_the_right_token_in_a_header_or_the_query(guarded: TestClient) -> None:
    assert guarded.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"}).is_success
    assert guarded.get("/api/runs", params={"token": TOKEN}).is_success


def test_a_page_opened_with_the_token_keeps_it_in_a_cookie_not_in_the_url(
    guarded: TestClient,
) -> None:
    response = guarded.get("/", params={"token": TOKEN, "status": "failed"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/?status=failed"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    followed = guarded.get(response.headers["location"])  # the client sends the cookie back
    assert followed.status_code == 200
    assert "<h1>Runs</h1>" in followed.text
    assert guarded.get("/api/runs").status_code == 200


def test_responses_carry_security_headers_and_no_cors(api: TestClient) -> None:
    page = api.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    preflight = api.options(
        "/api/runs",
        headers={"origin": "https://elsewhere.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    cross = api.get("/api/runs", headers={"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in cross.headers


@pytest.mark.parametrize("token", ["short", "has space in it", "semi;colon-token", ""])
def test_unusable_tokens_are_refused_when_the_app_is_made(
    populated: dict[str, Any], token: str
) -> None:
    with pytest.raises(ValueError, match="at least 8 characters"):
        create_app(populated["url"], token=token)


def test_allowed_hosts_refuse_other_host_names(populated: dict[str, Any]) -> None:
    app = create_app(populated["url"], allowed_hosts=["localhost", "::1"])
    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 400  # TestClient says "testserver"
        assert client.get("/api/health", headers={"host": "localhost:8765"}).status_code == 200
        assert client.get("/api/health", headers={"host": "[::1]:8765"}).status_code == 200
        assert client.get("/api/health", headers={"host": "LOCALHOST"}).status_code == 200
