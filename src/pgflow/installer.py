"""Installing pgmq and the pgflow schema into a database, safely and idempotently.

* pgmq: an existing pgmq (extension or plain SQL, version >= 1.5) is accepted as is and never
  reinstalled; otherwise ``CREATE EXTENSION pgmq`` when the server offers it, else the SQL that
  the ``pgmq`` PyPI package ships.
* pgflow: the numbered migrations under ``pgflow/sql/migrations`` not yet recorded in
  ``pgflow.schema_migrations``, each in its own transaction, then the function set when its
  checksum changed. Everything runs under one session advisory lock, so two installers started
  at once serialise and the second one finds the work done.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg import sql as pgsql

from pgflow import sql as core_sql
from pgflow._db import connect
from pgflow._version import __version__
from pgflow.errors import IncompatiblePgmqError, InstallError, first_line

#: pgflow core 0.8 needs pgmq's message headers, added in pgmq 1.5.0.
MIN_PGMQ_VERSION = (1, 5, 0)
#: Session advisory lock taken for the whole install ("pgflow" in ASCII).
INSTALL_LOCK_KEY = 0x7067666C6F77

PgmqMethod = Literal["present", "extension", "sql"]
PgmqMode = Literal["check", "extension", "sql"]

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS pgflow;
CREATE TABLE IF NOT EXISTS pgflow.schema_migrations (
    name text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('migration', 'functions')),
    checksum text NOT NULL,
    installed_by text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pgflow.schema_migrations IS
    'pgflow-py installer bookkeeping: applied migrations and the checksum of the function set';
"""

_RECORD = """
INSERT INTO pgflow.schema_migrations (name, kind, checksum, installed_by)
VALUES (%(name)s, %(kind)s, %(checksum)s, %(installed_by)s)
ON CONFLICT (name) DO UPDATE
SET checksum = excluded.checksum, installed_by = excluded.installed_by, applied_at = now()
"""

FUNCTIONS_RECORD = "functions"


@dataclass
class InstallReport:
    """What an install found and did."""

    pgmq_method: PgmqMethod
    pgmq_version: str
    applied_migrations: list[str] = field(default_factory=list)
    functions_updated: bool = False
    realtime: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """True when nothing had to be done (the database already had this version)."""
        return (
            self.pgmq_method == "present"
            and not self.applied_migrations
            and not self.functions_updated
        )

    def summary(self) -> str:
        if self.up_to_date:
            return "pgflow schema is up to date"
        done = [f"migration {name}" for name in self.applied_migrations]
        if self.functions_updated:
            done.append("functions")
        if self.pgmq_method != "present":
            done.insert(0, f"pgmq {self.pgmq_version} ({self.pgmq_method})")
        return "installed " + ", ".join(done)


# -- pgmq ------------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...]:
    """``'1.5.1'`` -> ``(1, 5, 1)``; suffixes such as ``-rc1`` are ignored."""
    numbers = re.findall(r"\d+", text.split("-")[0])
    if not numbers:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(n) for n in numbers[:3])


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(n) for n in version)


_MIN_TEXT = _version_text(MIN_PGMQ_VERSION)
_PGMQ_COMMENT_PREFIX = "pgmq installed from SQL by pgflow-py, version "


def _installed_pgmq(conn: psycopg.Connection) -> tuple[str, str] | None:
    """(how, version) of the pgmq already in the database, or None."""
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pgmq'").fetchone()
    if row is not None:
        return "extension", str(row[0])
    row = conn.execute("SELECT to_regclass('pgmq.meta') IS NOT NULL").fetchone()
    if row is not None and row[0]:
        # A plain-SQL pgmq records no version; 1.5 is the release that gave messages headers.
        has_headers = conn.execute(
            """
            SELECT EXISTS (
                SELECT 1 FROM pg_attribute a
                JOIN pg_type t ON t.typrelid = a.attrelid
                JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = 'pgmq' AND t.typname = 'message_record'
                  AND a.attname = 'headers' AND NOT a.attisdropped)
            """
        ).fetchone()
        if not (has_headers and has_headers[0]):
            return "sql", "<1.5"
        comment = conn.execute("SELECT obj_description('pgmq'::regnamespace, 'pg_namespace')")
        text = (comment.fetchone() or (None,))[0]
        if isinstance(text, str) and text.startswith(_PGMQ_COMMENT_PREFIX):
            return "sql", text.removeprefix(_PGMQ_COMMENT_PREFIX)
        return "sql", f">={_MIN_TEXT}"
    return None


def _check_installed_pgmq(how: str, version: str) -> None:
    if how == "sql":
        if version.startswith("<"):
            raise IncompatiblePgmqError(
                f"pgmq installed from SQL in this database is older than {_MIN_TEXT} "
                "(pgmq.message_record has no 'headers' column); pgflow needs pgmq >= "
                f"{_MIN_TEXT}: upgrade pgmq in this database (re-run a newer pgmq.sql), then retry"
            )
        return
    if parse_version(version) < MIN_PGMQ_VERSION:
        raise IncompatiblePgmqError(
            f"pgmq extension {version} is installed; pgflow needs pgmq >= {_MIN_TEXT}: "
            "run ALTER EXTENSION pgmq UPDATE (after installing a newer pgmq package on the "
            "server), then retry"
        )


def _offered_pgmq_versions(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT version FROM pg_available_extension_versions WHERE name = 'pgmq'"
    ).fetchall()
    return [str(r[0]) for r in rows]


def bundled_pgmq_version() -> str:
    """The version of the pgmq SQL shipped by the ``pgmq`` PyPI package."""
    from pgmq.install import get_embedded_sql_version

    return str(get_embedded_sql_version())


def bundled_pgmq_sql() -> str:
    from pgmq.install import get_embedded_install_sql

    return str(get_embedded_install_sql())


def _install_pgmq(conn: psycopg.Connection) -> tuple[PgmqMethod, str]:
    installed = _installed_pgmq(conn)
    if installed is not None:
        _check_installed_pgmq(*installed)
        return "present", installed[1]
    offered = _offered_pgmq_versions(conn)
    if offered:
        usable = [v for v in offered if parse_version(v) >= MIN_PGMQ_VERSION]
        if not usable:
            raise IncompatiblePgmqError(
                f"this server offers pgmq {', '.join(sorted(offered))} only; pgflow needs pgmq "
                f">= {_MIN_TEXT}: install a newer pgmq package on the server, or pre-install "
                "pgmq from SQL in this database, then retry"
            )
        best = max(usable, key=parse_version)
        with conn.transaction():
            conn.execute("CREATE SCHEMA IF NOT EXISTS pgmq")
            conn.execute(
                pgsql.SQL("CREATE EXTENSION IF NOT EXISTS pgmq WITH SCHEMA pgmq VERSION {}").format(
                    pgsql.Literal(best)
                )
            )
        return "extension", best
    version = bundled_pgmq_version()
    if parse_version(version) < MIN_PGMQ_VERSION:  # pragma: no cover - pinned by our deps
        raise IncompatiblePgmqError(
            f"the pgmq package ships pgmq {version}; pgflow needs >= {_MIN_TEXT}: "
            "pip install -U pgmq"
        )
    with conn.transaction():
        conn.execute(bundled_pgmq_sql())
        # A plain-SQL pgmq records no version of its own; leave one where `status` finds it.
        conn.execute(
            pgsql.SQL("COMMENT ON SCHEMA pgmq IS {}").format(
                pgsql.Literal(f"{_PGMQ_COMMENT_PREFIX}{version}")
            )
        )
    return "sql", version


# -- pgflow schema ---------------------------------------------------------------------------


def _recorded(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT name, checksum FROM pgflow.schema_migrations").fetchall()
    return {str(name): str(checksum) for name, checksum in rows}


def _foreign_pgflow_schema(conn: psycopg.Connection) -> bool:
    """True when schema pgflow has tables but no record of ours: another installer put it there."""
    row = conn.execute(
        """
        SELECT to_regclass('pgflow.flows') IS NOT NULL
           AND to_regclass('pgflow.schema_migrations') IS NULL
        """
    ).fetchone()
    return bool(row and row[0])


#: After the functions: each flow's queue statements written again (their generator, or the
#: installed pgmq's tables, may have changed; see _create_queue_statements.sql). The SQL
#: script needs none: it installs into a database without flows.
_QUEUE_STATEMENTS = (
    "SELECT pgflow._create_queue_statements(f.flow_slug, p_replace => true) "
    "FROM pgflow.flows AS f ORDER BY f.flow_slug"
)


def _apply_functions(conn: psycopg.Connection) -> None:
    # Bodies reference each other; deferring body checks makes file order irrelevant.
    conn.execute("SET LOCAL check_function_bodies = off")
    for fn in core_sql.functions():
        conn.execute(fn.text)


def _install_schema(
    conn: psycopg.Connection, report: InstallReport, *, up_to: int | None = None
) -> None:
    if _foreign_pgflow_schema(conn):
        raise InstallError(
            "schema pgflow already holds a pgflow core that pgflow-py did not install (for "
            "example one from Supabase migrations); pgflow-py's worker and client work with it "
            "as it is, so there is nothing to install"
        )
    with conn.transaction():
        conn.execute(_BOOTSTRAP)
    recorded = _recorded(conn)
    known = {m.name for m in core_sql.migrations()}
    newer = sorted(name for name in recorded if name != FUNCTIONS_RECORD and name not in known)
    if newer:
        raise InstallError(
            f"this database has pgflow migrations this pgflow-py {__version__} does not know "
            f"({', '.join(newer)}); it was installed by a newer version: upgrade pgflow-py"
        )
    for migration in core_sql.migrations():
        if up_to is not None and migration.version > up_to:
            break
        if migration.name in recorded:
            if recorded[migration.name] != migration.checksum:
                report.warnings.append(
                    f"migration {migration.name} differs from the one applied to this database"
                )
            continue
        with conn.transaction():
            for part in migration.files:
                try:
                    conn.execute(part.text)
                except psycopg.Error as exc:
                    raise _explain(exc, f"{migration.name}/{part.name}") from None
            conn.execute(
                _RECORD,
                {
                    "name": migration.name,
                    "kind": "migration",
                    "checksum": migration.checksum,
                    "installed_by": __version__,
                },
            )
        report.applied_migrations.append(migration.name)
    if up_to is not None:
        return  # a partial install (tests of the upgrade path) leaves functions to the end
    checksum = core_sql.functions_checksum()
    if recorded.get(FUNCTIONS_RECORD) != checksum and core_sql.functions():
        with conn.transaction():
            _apply_functions(conn)
            conn.execute(_QUEUE_STATEMENTS)
            conn.execute(
                _RECORD,
                {
                    "name": FUNCTIONS_RECORD,
                    "kind": "functions",
                    "checksum": checksum,
                    "installed_by": __version__,
                },
            )
        report.functions_updated = True


def _has_realtime(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT to_regprocedure('realtime.send(jsonb, text, text, boolean)') IS NOT NULL"
    ).fetchone()
    return bool(row and row[0])


def _explain(exc: psycopg.Error, where: str) -> InstallError:
    first = first_line(exc)
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return InstallError(
            f"permission denied while installing ({first}); connect as a role that may create "
            "schemas in this database (its owner or a superuser), or have one run `pgflow "
            "install`, or apply `pgflow install --sql` with your own migration tool"
        )
    return InstallError(f"install failed in {where}: {first}")


def install_on(conn: psycopg.Connection, *, up_to: int | None = None) -> InstallReport:
    """Install into the database of ``conn`` (an autocommit connection is not required)."""
    previous_autocommit = conn.autocommit
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise InstallError("install needs a connection that is not inside a transaction")
    conn.autocommit = True
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (INSTALL_LOCK_KEY,))
        try:
            try:
                method, version = _install_pgmq(conn)
            except psycopg.Error as exc:
                raise _explain(exc, "pgmq") from None
            report = InstallReport(pgmq_method=method, pgmq_version=version)
            try:
                _install_schema(conn, report, up_to=up_to)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise _explain(exc, "schema") from None
            report.realtime = _has_realtime(conn)
            return report
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (INSTALL_LOCK_KEY,))
    finally:
        if not conn.closed:
            conn.autocommit = previous_autocommit


def install(
    conninfo: str | None = None,
    *,
    on_embedded: Callable[[object, str], None] | None = None,
) -> InstallReport:
    """Install pgmq (if needed) and the pgflow schema into the configured database.

    ``conninfo`` defaults to the configured database (``PGFLOW_DATABASE_URL``, ``DATABASE_URL``,
    else the embedded server, started on demand). Safe to run repeatedly and concurrently.
    """
    from pgflow._db import resolve_url
    from pgflow.config import choose_database

    url = resolve_url(choose_database(conninfo), on_embedded=on_embedded)
    with connect(url, autocommit=True) as conn:
        return install_on(conn)


# -- SQL script for external migration tools ---------------------------------------------------

_PGMQ_CHECK = f"""
DO $pgflow_pgmq_check$
BEGIN
    IF to_regclass('pgmq.meta') IS NULL THEN
        RAISE EXCEPTION 'pgflow needs pgmq >= {_MIN_TEXT} in this database, and there is none'
            USING HINT = 'CREATE EXTENSION pgmq, or use: pgflow install --sql --pgmq sql';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute a
        JOIN pg_type t ON t.typrelid = a.attrelid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'pgmq' AND t.typname = 'message_record'
          AND a.attname = 'headers' AND NOT a.attisdropped
    ) THEN
        RAISE EXCEPTION 'pgflow needs pgmq >= {_MIN_TEXT}, and this database has an older one'
            USING HINT = 'run ALTER EXTENSION pgmq UPDATE, then apply this script again';
    END IF;
END
$pgflow_pgmq_check$;
"""


def _dollar_quote(text: str, tag: str) -> str:
    delimiter = f"${tag}$"
    if delimiter in text:  # pragma: no cover - would need a pgmq release quoting our tag
        raise InstallError(f"cannot quote the pgmq SQL: it contains {delimiter}")
    return f"{delimiter}{text}{delimiter}"


def install_script(*, pgmq: PgmqMode = "check") -> str:
    """The full install as one SQL script, for users who run their own migration tool.

    ``pgmq``: ``check`` only verifies that pgmq >= 1.5 is there; ``extension`` adds
    ``CREATE EXTENSION IF NOT EXISTS pgmq``; ``sql`` embeds the pgmq SQL shipped by the pgmq
    package, run only when the database has no pgmq yet. The script is one transaction and
    records what it applied, so a later ``pgflow install`` finds the database up to date.
    """
    out: list[str] = [
        f"-- pgflow-py {__version__}: full install script (generated by `pgflow install --sql`)",
        "BEGIN;",
    ]
    if pgmq == "extension":
        out.append("CREATE SCHEMA IF NOT EXISTS pgmq;")
        out.append("CREATE EXTENSION IF NOT EXISTS pgmq WITH SCHEMA pgmq;")
    elif pgmq == "sql":
        out.append(f"-- pgmq {bundled_pgmq_version()}, from the pgmq package, when absent")
        out.append(
            "DO $pgflow_pgmq_install$\nBEGIN\n    IF to_regclass('pgmq.meta') IS NULL THEN\n"
            f"        EXECUTE {_dollar_quote(bundled_pgmq_sql(), 'pgmq_sql')};\n"
            "    END IF;\nEND\n$pgflow_pgmq_install$;"
        )
    out.append(_PGMQ_CHECK.strip())
    out.append(_BOOTSTRAP.strip())
    for migration in core_sql.migrations():
        out.append(f"-- migration {migration.name}")
        out.append(migration.text.rstrip())
        out.append(
            "INSERT INTO pgflow.schema_migrations (name, kind, checksum, installed_by) VALUES "
            f"('{migration.name}', 'migration', '{migration.checksum}', '{__version__}');"
        )
    if core_sql.functions():
        out.append("-- functions (bodies reference each other: checked when first called)")
        out.append("SET LOCAL check_function_bodies = off;")
        out.extend(fn.text.rstrip() for fn in core_sql.functions())
        out.append(
            "INSERT INTO pgflow.schema_migrations (name, kind, checksum, installed_by) VALUES "
            f"('{FUNCTIONS_RECORD}', 'functions', '{core_sql.functions_checksum()}', "
            f"'{__version__}');"
        )
    out.append("COMMIT;")
    return "\n\n".join(out) + "\n"


# -- status ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaStatus:
    """What is installed in a database, compared with what this package ships."""

    server_version: str
    database: str
    pgmq: tuple[str, str] | None  # (how, version)
    applied_migrations: tuple[str, ...]
    pending_migrations: tuple[str, ...]
    functions_current: bool
    realtime: bool
    flows: int

    @property
    def installed(self) -> bool:
        return bool(self.applied_migrations)

    @property
    def up_to_date(self) -> bool:
        return (
            self.pgmq is not None
            and self.installed
            and not self.pending_migrations
            and self.functions_current
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "server_version": self.server_version,
            "database": self.database,
            "pgmq": None if self.pgmq is None else {"how": self.pgmq[0], "version": self.pgmq[1]},
            "applied_migrations": list(self.applied_migrations),
            "pending_migrations": list(self.pending_migrations),
            "functions_current": self.functions_current,
            "realtime": self.realtime,
            "flows": self.flows,
            "up_to_date": self.up_to_date,
        }


def compare_with_shipped(
    recorded: Mapping[str, str],
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(applied, pending) migrations of this package and whether the functions are current,
    given what ``pgflow.schema_migrations`` records (name -> checksum)."""
    shipped = [m.name for m in core_sql.migrations()]
    applied = tuple(n for n in shipped if n in recorded)
    pending = tuple(n for n in shipped if n not in recorded)
    current = recorded.get(FUNCTIONS_RECORD) == core_sql.functions_checksum() or not (
        core_sql.functions()
    )
    return applied, pending, current


def schema_status(conn: psycopg.Connection) -> SchemaStatus:
    """Inspect a database without changing it."""
    version_row = conn.execute("SELECT current_setting('server_version'), current_database()")
    server_version, database = version_row.fetchone() or ("?", "?")
    has_bookkeeping = conn.execute(
        "SELECT to_regclass('pgflow.schema_migrations') IS NOT NULL"
    ).fetchone()
    recorded = _recorded(conn) if has_bookkeeping and has_bookkeeping[0] else {}
    applied, pending, functions_current = compare_with_shipped(recorded)
    flows_row = (
        conn.execute("SELECT count(*) FROM pgflow.flows").fetchone()
        if conn.execute("SELECT to_regclass('pgflow.flows') IS NOT NULL").fetchone() == (True,)
        else (0,)
    )
    return SchemaStatus(
        server_version=str(server_version),
        database=str(database),
        pgmq=_installed_pgmq(conn),
        applied_migrations=applied,
        pending_migrations=pending,
        functions_current=functions_current,
        realtime=_has_realtime(conn),
        flows=int(flows_row[0]) if flows_row else 0,
    )
