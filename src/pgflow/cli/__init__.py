"""The ``pgflow`` command line: thin typer commands over the library."""

from __future__ import annotations

from pgflow.cli._app import app, main

__all__ = ["app", "main"]
