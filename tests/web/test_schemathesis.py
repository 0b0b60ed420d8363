"""Property-based requests generated from the dashboard's OpenAPI schema (schemathesis), sent
to a real server on a database with real runs: no request makes it fail with a 5xx, and every
response matches the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from pgflow.web import create_app
from pgflow.web._server import serving


@pytest.fixture(scope="module")
def live_api(populated: dict[str, Any]) -> Iterator[str]:
    # Actions on, so that starting runs is exercised too (this module's database is its own).
    with serving(create_app(populated["url"], enable_actions=True)) as base:
        yield base


def test_no_request_makes_the_api_fail(live_api: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_api}/api/openapi.json")
    # The event stream never ends by design; it is tested in test_live.py.
    operations = [result.ok() for result in schema.exclude(path="/api/events").get_all_operations()]
    assert len(operations) >= 8
    failures: dict[str, BaseException] = {}
    for operation in operations:
        # schemathesis' pytest plugin (from_fixture) does not run on pytest 9: drive
        # hypothesis directly, one operation at a time.
        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(
                base_url=live_api,
                checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
            )

        try:
            exercise()
        except Exception as exc:
            failures[operation.label] = exc
    assert not failures, "\n\n".join(f"{label}: {exc}" for label, exc in failures.items())
