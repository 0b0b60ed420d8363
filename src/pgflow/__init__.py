"""pgflow for Python: a Postgres-first workflow engine, wire-compatible with pgflow core 0.8.1."""

from __future__ import annotations

from pgflow._version import __version__
from pgflow.context import Context
from pgflow.dsl import Flow, Job, Step, job
from pgflow.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    EmbeddedServerError,
    FlowDefinitionError,
    FlowShapeMismatchError,
    IncompatiblePgmqError,
    InstallError,
    PgflowError,
)
from pgflow.installer import InstallReport, install, install_script

__all__ = [
    "ConfigurationError",
    "Context",
    "DatabaseUnavailableError",
    "EmbeddedServerError",
    "Flow",
    "FlowDefinitionError",
    "FlowShapeMismatchError",
    "IncompatiblePgmqError",
    "InstallError",
    "InstallReport",
    "Job",
    "PgflowError",
    "Step",
    "__version__",
    "install",
    "install_script",
    "job",
]
