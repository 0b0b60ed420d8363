"""Token check on every request, and the headers that keep pages from running foreign code.

The token is accepted from ``Authorization: Bearer …``, a ``?token=`` query parameter, or the
cookie set when a page was opened with ``?token=`` (the page is then reloaded without it, so
the token does not stay in the address bar or the history). Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "pgflow_dashboard_token"
TOKEN_PARAM = "token"

SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def relative_path(scope: Scope) -> str:
    root = str(scope.get("root_path", ""))
    path = str(scope["path"])
    return path[len(root) :] if root and path.startswith(root) else path


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _presented(scope: Scope) -> tuple[str | None, str]:
    """The token the request carries, and where it came from."""
    headers = _headers(scope)
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), "header"
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if key == TOKEN_PARAM:
            return value, "query"
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except ValueError:  # a malformed cookie header is as good as none
        return None, "none"
    if COOKIE in cookie:
        return cookie[COOKIE].value, "cookie"
    return None, "none"


async def _reply(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), *extra]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def host_name(header: str) -> str:
    """The host of a Host header, without its port (``[::1]:8765`` → ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class DashboardGuard:
    """ASGI middleware: the Host check (when hosts are given), the token check (when a token is
    set), and security headers on every response."""

    def __init__(
        self, app: ASGIApp, *, token: str | None, allowed_hosts: frozenset[str] | None = None
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        if self.allowed_hosts is not None:
            host = host_name(_headers(scope).get("host", ""))
            if host.lower() not in self.allowed_hosts:
                # A page of another site that rebinds its own name to this address.
                await _reply(send_with_headers, 400, f"host {host!r} is not allowed", [])
                return
        if self.token is None:
            await self.app(scope, receive, send_with_headers)
            return
        presented, source = _presented(scope)
        if presented is None:
            await _reply(
                send_with_headers,
                401,
                "this dashboard needs a token: send 'Authorization: Bearer <token>' or open a "
                "page with ?token=<token>",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if not hmac.compare_digest(presented.encode(), self.token):
            await _reply(send_with_headers, 403, "wrong token", [])
            return
        if source == "query" and scope["method"] == "GET" and not _is_api(scope):
            await self._remember(scope, send_with_headers, presented)
            return
        await self.app(scope, receive, send_with_headers)

    async def _remember(self, scope: Scope, send: Send, token: str) -> None:
        """Keep the token in a cookie and reload the page without it in the URL."""
        root = str(scope.get("root_path", "")) or "/"
        kept = [
            (k, v)
            for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            if k != TOKEN_PARAM
        ]
        location = str(scope["path"]) + (f"?{urlencode(kept)}" if kept else "")
        cookie = f"{COOKIE}={token}; Path={root}; HttpOnly; SameSite=Strict"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def _is_api(scope: Scope) -> bool:
    return relative_path(scope).startswith("/api/")


def same_origin(headers: Any) -> bool:
    """False when a browser says the request comes from another site (a cross-site form or
    script trying an action); requests without an Origin header (curl, scripts) pass."""
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "")
    return bool(origin.split("://", 1)[-1] == host)
