"""calculate_retry_delay: floor(base_delay * 2^attempts_count), no cap."""

from __future__ import annotations

import pytest

from .conftest import Conn, scalar


@pytest.mark.parametrize(
    ("base", "attempts", "delay"),
    [
        (5, 0, 5),
        (5, 1, 10),
        (5, 2, 20),
        (1, 10, 1024),
        (0, 5, 0),
        (1.5, 1, 3),
        (0.7, 1, 1),
        (3, 20, 3145728),
    ],
)
def test_exponential_backoff(pgflow_conn: Conn, base: float, attempts: int, delay: int) -> None:
    assert (
        scalar(
            pgflow_conn,
            "SELECT pgflow.calculate_retry_delay(%s::numeric, %s::int) AS d",
            base,
            attempts,
        )
        == delay
    )
