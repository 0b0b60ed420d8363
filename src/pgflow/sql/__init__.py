"""The SQL core as files, loaded by name.

Layout (see the architecture notes):

* ``migrations/NNNN_name/*.sql`` (or ``migrations/NNNN_name.sql``): numbered, immutable once
  released; a directory holds one object per file, applied in file-name order, all in one
  transaction.
* ``functions/*.sql``: one function per file, ``CREATE OR REPLACE``; the whole set is re-applied
  whenever its checksum changes, so each function has exactly one source.
* ``queries/*.sql``: named statements used from Python.
* ``testing/*.sql``: fixtures for tests (for example a stub of Supabase's ``realtime``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)(\.sql)?$")


def _root() -> Traversable:
    return files(__name__)


def _checksum(parts: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, text in parts:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class SqlFile:
    name: str
    text: str


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # e.g. "0001_core_schema"
    files: tuple[SqlFile, ...]

    @property
    def text(self) -> str:
        return "\n".join(f"-- {self.name}/{f.name}\n{f.text.rstrip()}\n" for f in self.files)

    @property
    def checksum(self) -> str:
        return _checksum([(f.name, f.text) for f in self.files])


def _sql_files(folder: Traversable) -> tuple[SqlFile, ...]:
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return tuple(SqlFile(entry.name, entry.read_text(encoding="utf-8")) for entry in entries)


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this package, in version order."""
    found: list[Migration] = []
    folder = _root() / "migrations"
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            continue
        version, stem = int(match.group(1)), f"{match.group(1)}_{match.group(2)}"
        if entry.is_dir():
            parts = _sql_files(entry)
        else:
            parts = (SqlFile(entry.name, entry.read_text(encoding="utf-8")),)
        if parts:
            found.append(Migration(version, stem, parts))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):  # pragma: no cover - a packaging mistake
        raise RuntimeError(f"duplicate migration numbers in {folder}: {versions}")
    return tuple(found)


@functools.cache
def functions() -> tuple[SqlFile, ...]:
    """Every function definition, one per file, in file-name order."""
    return _sql_files(_root() / "functions")


def functions_checksum() -> str:
    return _checksum([(f.name, f.text) for f in functions()])


@functools.cache
def query(name: str) -> str:
    """The named statement ``queries/<name>.sql``."""
    return (_root() / "queries" / f"{name}.sql").read_text(encoding="utf-8")


def testing_sql(name: str) -> str:
    """A test fixture script, ``testing/<name>.sql``."""
    return (_root() / "testing" / f"{name}.sql").read_text(encoding="utf-8")
