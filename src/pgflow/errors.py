"""Typed errors raised at the boundary where bad input or a bad environment enters.

Every error carries a one-line message that says what is wrong and what to do; the CLI prints
that line and exits non-zero, without a traceback.
"""

from __future__ import annotations


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of an error's text (database errors run to several), for one-line
    messages; ``default`` (else the error's type name) when it has no text."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else (default or type(exc).__name__)


class PgflowError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(PgflowError):
    """The database to use could not be determined (for example a malformed URL)."""


class DatabaseUnavailableError(PgflowError):
    """The database server could not be reached or refused the connection."""


class InstallError(PgflowError):
    """The schema could not be installed (permissions, incompatible pgmq, changed migration)."""


class IncompatiblePgmqError(InstallError):
    """The pgmq already present (or offered) by the server is older than the required one."""


class EmbeddedServerError(PgflowError):
    """The embedded PostgreSQL server could not be started, stopped or inspected."""


class FlowDefinitionError(PgflowError):
    """A flow, step or job definition breaks a rule; the message names the flow, step and rule."""


class FlowShapeMismatchError(PgflowError):
    """The flow in the database has other steps, types or dependencies than the code."""

    def __init__(self, flow_slug: str, differences: list[str], runs: int) -> None:
        self.flow_slug = flow_slug
        self.differences = differences
        self.runs = runs
        listed = "; ".join(differences)
        super().__init__(
            f"flow {flow_slug!r} in the database differs from the code: {listed}. "
            f"Recreating it (recreate=True) deletes the flow with its {runs} run(s), their "
            "tasks and its queue"
        )


class FlowNotFoundError(PgflowError):
    """No flow with this slug exists in the database."""


class RunNotFoundError(PgflowError):
    """No run with this id exists (or it was pruned)."""


class InvalidInputError(PgflowError):
    """Input refused before anything was written (not JSON, not an array for a root map…)."""


class WaitTimeoutError(PgflowError, TimeoutError):
    """A run did not finish within the time given to wait for it."""


class StepOutputUnavailableError(PgflowError):
    """The step has no output (it has not completed, or does not exist)."""


class ScheduleNotFoundError(PgflowError):
    """No schedule with this name exists."""


class RunStateError(PgflowError):
    """The run is not in a state that allows the operation (cancelling a finished run,
    resuming one that is still running or completed, retrying one that did not fail)."""
