"""`pgflow dashboard`: serves on loopback by default, refuses other addresses without a token."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from pgflow.cli._dashboard import TOKEN_ENV, is_loopback
from tests._helpers import run_cli
from tests.web.conftest import TOKEN


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("dashboard.example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_refuses_a_public_address_without_a_token(pgflow_database_url: str) -> None:
    result = run_cli("dashboard", "--host", "0.0.0.0", "-d", pgflow_database_url, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: refusing to serve on 0.0.0.0 without a token: pass --token or set ${TOKEN_ENV} "
        "(or bind to 127.0.0.1)"
    ]
    assert "Traceback" not in result.stderr


def test_refuses_an_unusable_token(pgflow_database_url: str) -> None:
    result = run_cli("dashboard", "--token", "a b", "-d", pgflow_database_url, timeout=60)
    assert result.returncode == 1
    assert "at least 8 characters" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def dashboard(url: str, env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """``pgflow dashboard`` on a free port of 127.0.0.1 (its default address) until the block
    ends; yields its URL and, after the block, the lines it printed on stderr."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pgflow", "dashboard", "-d", url, "--port", str(port)],
        env={**{k: v for k, v in os.environ.items() if k != TOKEN_ENV}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/api/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        yield base, printed
    finally:
        server.send_signal(signal.SIGINT)
        printed += server.communicate(timeout=30)[1].splitlines()


def test_serves_with_the_token_from_the_environment(pgflow_database_url: str) -> None:
    with dashboard(pgflow_database_url, {TOKEN_ENV: TOKEN}) as (base, printed):
        assert httpx.get(f"{base}/api/health", timeout=10).status_code == 401
        authorised = httpx.get(
            f"{base}/api/health", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        assert authorised.status_code == 200
        assert authorised.json()["database"] is True
    assert f"pgflow dashboard on {base}/ (token required), read-only" in printed


def test_without_a_token_only_loopback_host_names_are_served(pgflow_database_url: str) -> None:
    with dashboard(pgflow_database_url, {}) as (base, printed):
        assert httpx.get(f"{base}/api/health", timeout=10).status_code == 200
        for name in ("localhost", "127.0.0.1:1234"):
            assert httpx.get(f"{base}/", headers={"host": name}, timeout=10).status_code == 200
        # DNS rebinding: a foreign name that resolves to 127.0.0.1 gets nothing.
        rebound = httpx.get(f"{base}/api/runs", headers={"host": "evil.example"}, timeout=10)
        assert rebound.status_code == 400
        assert "not allowed" in rebound.json()["detail"]
        refused = httpx.post(f"{base}/api/flows/any/runs", json={"input": 1}, timeout=10)
        assert refused.status_code == 403  # read-only unless --enable-actions
    assert f"pgflow dashboard on {base}/, read-only" in printed
