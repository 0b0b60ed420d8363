"""pgflow for Python: a Postgres-first workflow engine, wire-compatible with pgflow core 0.8.1."""

from __future__ import annotations

from pgflow._version import __version__
from pgflow.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    EmbeddedServerError,
    IncompatiblePgmqError,
    InstallError,
    PgflowError,
)
from pgflow.installer import InstallReport, install, install_script

__all__ = [
    "ConfigurationError",
    "DatabaseUnavailableError",
    "EmbeddedServerError",
    "IncompatiblePgmqError",
    "InstallError",
    "InstallReport",
    "PgflowError",
    "__version__",
    "install",
    "install_script",
]
