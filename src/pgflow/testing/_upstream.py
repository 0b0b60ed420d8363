"""The upstream pgflow core (``@pgflow/core@0.8.1`` from npm), as a black-box peer for tests.

Nothing of upstream lives in this repository: the package is fetched with ``npm pack`` into a
cache directory when first needed and its SQL migrations are read straight from the tarball.
Differential tests and benchmarks install it into a database of their own with
:func:`install_upstream` and drive it through the same public SQL API as our core.

Upstream's migrations are written for Supabase, where pgmq is an extension and ``realtime`` is
present. On plain PostgreSQL they need, and get, exactly this (applied at run time only):

* pgmq is installed beforehand from the SQL shipped by the ``pgmq`` PyPI package (when the
  database has none), and upstream's ``CREATE EXTENSION ... pgmq`` statement is skipped unless
  pgmq is a real extension here: a SQL-installed pgmq has no control file, so the statement
  would fail even though everything it is meant to provide is there.
* Supabase's ``realtime`` schema is stood in for by our test stub (``realtime.send`` recording
  events in ``realtime.messages``), created before the migrations because two of them create
  ``LANGUAGE sql`` functions whose bodies call ``realtime.send``.

No other statement is changed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import psycopg

from pgflow.installer import bundled_pgmq_sql

#: The upstream package and version this project is wire-compatible with.
UPSTREAM_PACKAGE = "@pgflow/core"
UPSTREAM_VERSION = "0.8.1"
#: Subresource integrity of the registry tarball (``npm view @pgflow/core@0.8.1 dist.integrity``).
UPSTREAM_INTEGRITY = (
    "sha512-ElLPkKGPjttBsjlLJfn4CcMeiFwtuUhUNuFADwhQjdrg+"
    "netkeONY12oxcbPSBMqBWXVAuKriLq+1T1dCPEWPQ=="
)
#: Where the SQL migrations sit inside the tarball.
MIGRATIONS_PREFIX = "package/dist/supabase/migrations/"

ENV_CACHE_DIR = "PGFLOW_CACHE_DIR"
_TARBALL = f"pgflow-core-{UPSTREAM_VERSION}.tgz"
_NPM_TIMEOUT_SECONDS = 180

# Upstream's initial migration enables pgmq as an extension; see the module docstring.
_CREATE_PGMQ_EXTENSION = re.compile(
    r'CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?"?pgmq"?(?:\s+WITH\s+SCHEMA\s+"?pgmq"?)?\s*;',
    re.IGNORECASE,
)


class UpstreamUnavailable(RuntimeError):
    """The upstream package could not be obtained (no npm, no registry, a bad download)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def default_cache_dir() -> Path:
    """``$PGFLOW_CACHE_DIR/upstream-core-0.8.1``, else ``~/.cache/pgflow-py/`` + the same."""
    root = os.environ.get(ENV_CACHE_DIR)
    base = Path(root) if root else Path.home() / ".cache" / "pgflow-py"
    return base / f"upstream-core-{UPSTREAM_VERSION}"


def _integrity_ok(path: Path) -> bool:
    algorithm, _, expected = UPSTREAM_INTEGRITY.partition("-")
    digest = hashlib.new(algorithm, path.read_bytes()).digest()
    return base64.b64encode(digest).decode() == expected


def _npm_error_summary(output: str) -> str:
    """npm's error code and message lines, without its stack trace."""
    lines = [line.strip() for line in output.splitlines()]
    errors = [
        line.removeprefix("npm error").strip()
        for line in lines
        if line.startswith("npm error") and " at " not in line
    ]
    picked = [line for line in errors if line][:4] or lines[-3:]
    return " | ".join(picked) or "no output"


def _download(cache_dir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise UpstreamUnavailable(
            f"npm is not on PATH, so {UPSTREAM_PACKAGE}@{UPSTREAM_VERSION} cannot be fetched"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / _TARBALL
    # Pack into a private directory, then rename: concurrent test workers never see half a file.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".npm-pack-") as scratch:
        try:
            done = subprocess.run(
                [
                    npm,
                    "pack",
                    f"{UPSTREAM_PACKAGE}@{UPSTREAM_VERSION}",
                    "--ignore-scripts",
                    "--pack-destination",
                    scratch,
                ],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=_NPM_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UpstreamUnavailable(f"npm pack failed: {exc}") from exc
        packed = Path(scratch) / _TARBALL
        if done.returncode != 0 or not packed.is_file():
            raise UpstreamUnavailable(
                f"npm pack {UPSTREAM_PACKAGE}@{UPSTREAM_VERSION} failed "
                f"(exit {done.returncode}): {_npm_error_summary(done.stderr or done.stdout)}"
            )
        if not _integrity_ok(packed):
            raise UpstreamUnavailable(
                f"the downloaded {_TARBALL} does not match the pinned integrity "
                f"{UPSTREAM_INTEGRITY}"
            )
        os.replace(packed, target)
    return target


def upstream_tarball(cache_dir: Path | None = None) -> Path:
    """The cached tarball of the upstream package, downloaded with ``npm pack`` when missing."""
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    cached = folder / _TARBALL
    if cached.is_file() and _integrity_ok(cached):
        return cached
    return _download(folder)


def upstream_migrations(cache_dir: Path | None = None) -> list[tuple[str, str]]:
    """Upstream's SQL migrations as ``(file name, text)``, sorted by file name.

    Raises :class:`UpstreamUnavailable` when the package cannot be fetched.
    """
    tarball = upstream_tarball(cache_dir)
    found: list[tuple[str, str]] = []
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive.getmembers():
                name = member.name
                if not (member.isfile() and name.startswith(MIGRATIONS_PREFIX)):
                    continue
                filename = name[len(MIGRATIONS_PREFIX) :]
                if "/" in filename or not filename.endswith(".sql"):
                    continue
                stream = archive.extractfile(member)
                if stream is None:  # pragma: no cover - regular files always have a stream
                    continue
                with stream:
                    found.append((filename, stream.read().decode("utf-8")))
    except (tarfile.TarError, OSError) as exc:
        with contextlib.suppress(OSError):
            tarball.unlink()
        raise UpstreamUnavailable(f"cannot read {tarball}: {exc}") from exc
    if not found:
        raise UpstreamUnavailable(f"{tarball} holds no SQL migrations under {MIGRATIONS_PREFIX}")
    found.sort()
    return found


def _scalar(conn: psycopg.Connection, query: str) -> object:
    row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def _pgmq_is_extension(conn: psycopg.Connection) -> bool:
    return bool(_scalar(conn, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')"))


def adapt_migration(text: str, *, pgmq_is_extension: bool) -> str:
    """Upstream migration text as it must run here (see the module docstring)."""
    if pgmq_is_extension:
        return text
    return _CREATE_PGMQ_EXTENSION.sub(
        "-- [pgflow-py] CREATE EXTENSION pgmq skipped: pgmq is installed from SQL", text
    )


def install_upstream(
    conn: psycopg.Connection, migrations: list[tuple[str, str]] | None = None
) -> None:
    """Install the upstream core into the (empty) database of ``conn``.

    Order: pgmq (from the ``pgmq`` package's SQL, unless the database has pgmq), the realtime
    stub (unless ``realtime.send`` exists), then every upstream migration, each in its own
    transaction. ``migrations`` defaults to :func:`upstream_migrations`.
    """
    if migrations is None:
        migrations = upstream_migrations()
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("install_upstream needs a connection that is not inside a transaction")
    previous_autocommit = conn.autocommit
    conn.autocommit = True  # so that each transaction below commits on its own
    try:
        _install(conn, migrations)
    finally:
        if not conn.closed:
            conn.autocommit = previous_autocommit


def _install(conn: psycopg.Connection, migrations: list[tuple[str, str]]) -> None:
    from pgflow.testing import install_realtime_stub

    if _scalar(conn, "SELECT to_regclass('pgmq.meta') IS NULL"):
        with conn.transaction():
            conn.execute(bundled_pgmq_sql())
    if _scalar(conn, "SELECT to_regprocedure('realtime.send(jsonb, text, text, boolean)') IS NULL"):
        with conn.transaction():
            install_realtime_stub(conn)
    pgmq_is_extension = _pgmq_is_extension(conn)
    for filename, text in migrations:
        try:
            with conn.transaction():
                conn.execute(adapt_migration(text, pgmq_is_extension=pgmq_is_extension))
        except psycopg.Error as exc:
            raise RuntimeError(f"upstream migration {filename} failed: {exc}") from exc
