"""pgflow for Python: a Postgres-first workflow engine, wire-compatible with pgflow core 0.8.1."""

from __future__ import annotations

from pgflow._version import __version__
from pgflow.client import AsyncClient, Client
from pgflow.context import Context
from pgflow.dsl import Flow, Job, Step, job
from pgflow.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    EmbeddedServerError,
    FlowDefinitionError,
    FlowNotFoundError,
    FlowShapeMismatchError,
    IncompatiblePgmqError,
    InstallError,
    InvalidInputError,
    PgflowError,
    RunNotFoundError,
    ScheduleNotFoundError,
    StepOutputUnavailableError,
    WaitTimeoutError,
)
from pgflow.installer import InstallReport, install, install_script

__all__ = [
    "AsyncClient",
    "Client",
    "ConfigurationError",
    "Context",
    "DatabaseUnavailableError",
    "EmbeddedServerError",
    "Flow",
    "FlowDefinitionError",
    "FlowNotFoundError",
    "FlowShapeMismatchError",
    "IncompatiblePgmqError",
    "InstallError",
    "InstallReport",
    "InvalidInputError",
    "Job",
    "PgflowError",
    "RunNotFoundError",
    "ScheduleNotFoundError",
    "Step",
    "StepOutputUnavailableError",
    "WaitTimeoutError",
    "__version__",
    "install",
    "install_script",
    "job",
]
