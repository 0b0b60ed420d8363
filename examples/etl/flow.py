"""``import_people``: CSV lines in, rows in a table out.

- ``extract`` (an array step) keeps the non-blank lines;
- ``transform`` (a map step) parses one line per task, so lines are parsed in parallel and a
  bad line fails (and retries) on its own;
- ``load`` (a fan-in step) gets both outputs and writes the rows. It is transactional: its
  inserts commit together with the task's completion, so a retry never loads a row twice.

Run it::

    pgflow worker examples.etl.flow
"""

from __future__ import annotations

from typing import TypedDict

from pgflow import Context, Flow

#: The table ``load`` writes to (an application would create it in a migration).
TABLE_SQL = """
CREATE TABLE IF NOT EXISTS people (
    run_id uuid NOT NULL,
    line_number int NOT NULL,
    name text NOT NULL,
    age int NOT NULL,
    PRIMARY KEY (run_id, line_number)
)
"""


class Source(TypedDict):
    lines: list[str]


class Person(TypedDict):
    name: str
    age: int


class Loaded(TypedDict):
    loaded: int
    skipped_lines: int
    oldest: str | None


import_people = Flow("import_people", input=Source, max_attempts=2, base_delay=1, timeout=30)


@import_people.array
def extract(run: Source) -> list[str]:
    return [line for line in run["lines"] if line.strip()]


@import_people.map(extract)
def transform(line: str) -> Person:
    name, age = line.split(",")
    return {"name": name.strip().title(), "age": int(age)}


@import_people.step(extract, transform, transactional=True)
def load(run: Source, lines: list[str], people: list[Person], ctx: Context) -> Loaded:
    with ctx.conn.cursor() as cur:
        cur.execute(TABLE_SQL)
        cur.executemany(
            "INSERT INTO people (run_id, line_number, name, age) VALUES (%s, %s, %s, %s)",
            [(ctx.run_id, n, p["name"], p["age"]) for n, p in enumerate(people)],
        )
    oldest = max(people, key=lambda p: p["age"])["name"] if people else None
    return {
        "loaded": len(people),
        "skipped_lines": len(run["lines"]) - len(lines),
        "oldest": oldest,
    }
