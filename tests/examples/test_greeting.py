"""examples/greeting: the two-step flow, run by a real worker, started by its script."""

from __future__ import annotations

import pytest
from examples.greeting.__main__ import main
from examples.greeting.flow import greet_user

from pgflow.testing import running_worker


def test_greeting_script_prints_the_run_output(
    pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PGFLOW_DATABASE_URL", pgflow_database_url)
    with running_worker([greet_user], pgflow_database_url):
        main(["Grace", "Hopper"])
    assert capsys.readouterr().out == ("completed {'greeting': 'Hello, Grace Hopper!'}\n")
