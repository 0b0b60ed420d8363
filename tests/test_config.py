"""Which database is used: flag > PGFLOW_DATABASE_URL > DATABASE_URL > embedded."""

from __future__ import annotations

import pytest

from pgflow.config import choose_database, redact
from pgflow.errors import ConfigurationError

FLAG = "postgresql://flag@localhost/a"
OURS = "postgresql://ours@localhost/b"
GENERIC = "postgresql://generic@localhost/c"


def test_flag_wins_over_both_variables() -> None:
    choice = choose_database(FLAG, {"PGFLOW_DATABASE_URL": OURS, "DATABASE_URL": GENERIC})
    assert (choice.url, choice.source) == (FLAG, "flag")


def test_pgflow_variable_wins_over_database_url() -> None:
    choice = choose_database(None, {"PGFLOW_DATABASE_URL": OURS, "DATABASE_URL": GENERIC})
    assert (choice.url, choice.source) == (OURS, "PGFLOW_DATABASE_URL")


def test_database_url_is_used_when_alone() -> None:
    choice = choose_database(None, {"DATABASE_URL": GENERIC})
    assert (choice.url, choice.source) == (GENERIC, "DATABASE_URL")


def test_embedded_default_when_nothing_is_configured() -> None:
    choice = choose_database(None, {"PGFLOW_DATABASE_URL": "", "DATABASE_URL": ""})
    assert choice.url is None
    assert choice.is_embedded


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://a b c", "unexpected spaces"),
        ("nonsense=1", 'invalid connection option "nonsense"'),
        ("   ", "is empty"),
    ],
)
def test_malformed_url_is_named_in_the_error(url: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        choose_database(None, {"PGFLOW_DATABASE_URL": url})
    assert "PGFLOW_DATABASE_URL" in str(caught.value)
    assert fragment in str(caught.value)


def test_redact_hides_the_password() -> None:
    assert "s3cret" not in redact("postgresql://user:s3cret@localhost/db")
    assert redact("postgresql://user@localhost/db") == "postgresql://user@localhost/db"
