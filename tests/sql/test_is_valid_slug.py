"""is_valid_slug: the slug rules shared by flows and steps."""

from __future__ import annotations

import pytest

from .conftest import Conn, scalar


@pytest.mark.parametrize(
    ("slug", "valid"),
    [
        ("a", True),
        ("_private", True),
        ("Flow_1", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        (None, False),
        ("1abc", False),
        ("run", False),
        ("run_", True),
        ("Run", True),
        ("has-dash", False),
        ("has space", False),
        ("dot.ted", False),
        ("ünïcode", False),
    ],
)
def test_slug_rules(pgflow_conn: Conn, slug: str | None, valid: bool) -> None:
    assert scalar(pgflow_conn, "SELECT pgflow.is_valid_slug(%s) AS v", slug) is valid
