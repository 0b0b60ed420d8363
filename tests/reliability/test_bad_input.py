"""The bad-input catalogue: each entry refused with its exact error, through the Python API and
the SQL API where both exist, and nothing written (every pgflow and pgmq row compared).

Size limit: run inputs and step outputs are refused above ``PGFLOW_MAX_JSON_BYTES`` (64 MB of
JSON text by default, well under PostgreSQL's 255 MB jsonb limit); see ``pgflow._limits``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from pgflow import AsyncClient, Client, Flow, job
from pgflow._limits import DEFAULT_MAX_JSON_BYTES, MAX_JSON_BYTES_VARIABLE, max_json_bytes
from pgflow.errors import (
    FlowDefinitionError,
    FlowNotFoundError,
    InstallError,
    InvalidInputError,
    RunNotFoundError,
    StepOutputUnavailableError,
)
from pgflow.flows import delete_flow, ensure_flow, upsert_flow
from pgflow.testing._worker import running_worker
from tests._helpers import run_cli
from tests.reliability._state import database_state

ONLY_ASCII = "a slug may contain only ASCII letters, digits and underscores"
#: slug -> why it is refused (the DSL's and the client's words)
HOSTILE_SLUGS = {
    "x'; DROP TABLE pgflow.runs; --": ONLY_ASCII,
    "Robert'); --": ONLY_ASCII,
    "café": ONLY_ASCII,
    "rocket_🚀": ONLY_ASCII,
    "\u05e9\u05dc\u05d5\u05dd": ONLY_ASCII,  # right-to-left (Hebrew)
    "\u202eabc": ONLY_ASCII,  # right-to-left override
    "a" * 129: "a slug must be at most 128 characters (this one has 129)",
    "run": "'run' is reserved (task inputs carry the run input under that key)",
    "1st_step": "a slug must not start with a digit",
    "": "a slug must not be empty",
    "a\x00b": ONLY_ASCII,
}
SLUG_IDS = [repr(slug)[:24] for slug in HOSTILE_SLUGS]
#: The SQL core refuses them with a check constraint; a NUL never reaches it (the driver
#: refuses text with NUL bytes before sending it).
NUL_REFUSAL = "PostgreSQL text fields cannot contain NUL (0x00) bytes"

orders = Flow("orders", max_attempts=1)


@orders.step
def validate(run: dict[str, Any]) -> list[int]:
    return [int(item) for item in run["items"]]


@orders.step(validate)
def total(run: dict[str, Any], validate: list[int]) -> int:
    return sum(validate)


batch = Flow[list[int]]("batch")


@batch.map()
def double(item: int) -> int:
    return item * 2


@pytest.fixture
def db(pgflow_conn: psycopg.Connection[DictRow]) -> psycopg.Connection[DictRow]:
    """A database with two flows and a run in it, so 'nothing changed' has rows to compare."""
    ensure_flow(pgflow_conn, orders)
    ensure_flow(pgflow_conn, batch)
    pgflow_conn.execute("SELECT pgflow.start_flow('orders', %s)", (Jsonb({"items": ["1"]}),))
    return pgflow_conn


@contextlib.contextmanager
def unchanged(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """The block must leave every pgflow and pgmq row as it found it."""
    before = database_state(conn)
    yield
    assert database_state(conn) == before


def sql_error(conn: psycopg.Connection[Any], query: str, params: Any) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(query, params)
    return raised.value


# -- slugs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("slug", "problem"), HOSTILE_SLUGS.items(), ids=SLUG_IDS)
def test_hostile_slug_refused_by_the_python_api(
    db: psycopg.Connection[DictRow], slug: str, problem: str
) -> None:
    with pytest.raises(FlowDefinitionError) as as_flow:
        Flow(slug)
    assert str(as_flow.value) == f"flow {slug!r}: invalid flow slug: {problem}"
    with unchanged(db):
        with pytest.raises(FlowDefinitionError) as as_data_flow:
            upsert_flow(db, slug, [{"slug": "only"}])
        assert str(as_data_flow.value) == f"flow {slug!r}: invalid flow slug: {problem}"
        with pytest.raises(FlowDefinitionError) as as_data_step:
            upsert_flow(db, "tenant_flow", [{"slug": slug}])
        assert str(as_data_step.value) == (
            f"flow 'tenant_flow', step {slug!r}: invalid step slug: {problem}"
        )
        with Client(conn=db) as client, pytest.raises(FlowNotFoundError) as as_start:
            client.start_flow(slug, {})
        assert str(as_start.value) == f"flow {slug!r} does not exist: {problem}"


@pytest.mark.parametrize("slug", HOSTILE_SLUGS, ids=SLUG_IDS)
def test_hostile_slug_refused_by_the_sql_api(db: psycopg.Connection[DictRow], slug: str) -> None:
    with unchanged(db):
        created = sql_error(db, "SELECT pgflow.create_flow(%s)", (slug,))
        added = sql_error(db, "SELECT pgflow.add_step('orders', %s)", (slug,))
        started = sql_error(db, "SELECT pgflow.start_flow(%s, '{}')", (slug,))
    if "\x00" in slug:
        assert {str(created), str(added), str(started)} == {NUL_REFUSAL}
        return
    assert isinstance(created, psycopg.errors.CheckViolation)
    assert created.diag.constraint_name == "slug_is_valid"
    assert isinstance(added, psycopg.errors.CheckViolation)
    assert added.diag.constraint_name == "steps_step_slug_check"
    assert isinstance(started, psycopg.errors.ForeignKeyViolation)
    assert started.diag.constraint_name == "runs_flow_slug_fkey"


# -- flow shapes -------------------------------------------------------------------------------


def test_cycle_refused(db: psycopg.Connection[DictRow]) -> None:
    with unchanged(db):
        with pytest.raises(FlowDefinitionError) as raised:
            upsert_flow(
                db, "loop", [{"slug": "a", "depends_on": ["b"]}, {"slug": "b", "depends_on": ["a"]}]
            )
        assert str(raised.value) == (
            "flow 'loop': the dependencies form a cycle: 'a' depends on 'b', which depends on 'a'"
        )
        # In SQL a step can depend only on steps that exist already, so the only cycle left to
        # try is a step depending on itself, which a check on pgflow.deps refuses.
        error = sql_error(db, "SELECT pgflow.add_step('orders', 'selfish', ARRAY['selfish'])", None)
    assert isinstance(error, psycopg.errors.CheckViolation)
    assert error.diag.constraint_name == "deps_check"


def test_unknown_dependency_refused(db: psycopg.Connection[DictRow]) -> None:
    flow = Flow("needs_ghost")
    with pytest.raises(FlowDefinitionError) as in_dsl:

        @flow.step("ghost")
        def haunted(run: Any, ghost: Any) -> None: ...

    assert str(in_dsl.value) == (
        "flow 'needs_ghost', step 'haunted': unknown dependency 'ghost' "
        "(a step can only depend on steps defined before it)"
    )
    with unchanged(db):
        with pytest.raises(FlowDefinitionError) as in_data:
            upsert_flow(db, "needs_ghost", [{"slug": "a", "depends_on": ["ghost"]}])
        assert str(in_data.value) == (
            "flow 'needs_ghost', step 'a': unknown dependency 'ghost' "
            "(a step can only depend on steps defined before it)"
        )
        error = sql_error(db, "SELECT pgflow.add_step('orders', 'late', ARRAY['ghost'])", None)
    assert isinstance(error, psycopg.errors.ForeignKeyViolation)
    assert error.diag.constraint_name == "deps_flow_slug_dep_slug_fkey"


# -- run input ---------------------------------------------------------------------------------


def test_map_input_that_is_not_an_array_refused(db: psycopg.Connection[DictRow]) -> None:
    core_words = "Flow batch has root map steps but input is not an array (got object)"
    with unchanged(db), Client(conn=db) as client:
        with pytest.raises(InvalidInputError) as typed:
            client.start_flow(batch, {"items": [1]})  # type: ignore[arg-type]
        assert str(typed.value) == (
            "flow 'batch' has root map steps (double), so its input must be an array, got dict"
        )
        with pytest.raises(InvalidInputError) as by_slug:
            client.start_flow("batch", {"items": [1]})
        assert str(by_slug.value) == core_words
        error = sql_error(db, "SELECT pgflow.start_flow('batch', '{\"items\": [1]}')", None)
    assert isinstance(error, psycopg.errors.RaiseException)
    assert error.diag.message_primary == core_words


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


NOT_JSON = [
    (float("nan"), "input is nan, which JSON cannot represent"),
    (float("-inf"), "input is -inf, which JSON cannot represent"),
    ({"blob": b"\x00"}, "input['blob'] is a bytes, which is not JSON-serialisable"),
    ([object()], "input[0] is a object, which is not JSON-serialisable"),
    ({1, 2}, "input is a set, which is not JSON-serialisable"),
    ({"ok": {1: "x"}}, "input['ok'] has a non-string key 1"),
    (_circular(), "input[0] contains itself (a circular reference)"),
    ({"name": "a\x00b"}, "input['name'] contains a NUL character, which PostgreSQL cannot store"),
]


@pytest.mark.parametrize(("payload", "problem"), NOT_JSON, ids=[p for _, p in NOT_JSON])
def test_input_that_is_not_json_refused(
    db: psycopg.Connection[DictRow], payload: Any, problem: str
) -> None:
    with unchanged(db), Client(conn=db) as client, pytest.raises(InvalidInputError) as raised:
        client.start_flow(orders, payload)
    assert str(raised.value) == f"input of flow 'orders' is not JSON-serialisable: {problem}"


def test_input_that_is_not_json_refused_by_sql(db: psycopg.Connection[DictRow]) -> None:
    with unchanged(db):
        error = sql_error(db, "SELECT pgflow.start_flow('orders', %s::jsonb)", ("{NaN}",))
    assert isinstance(error, psycopg.errors.InvalidTextRepresentation)
    assert error.diag.message_primary == "invalid input syntax for type json"


def test_size_limit_defaults_to_64_mb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_JSON_BYTES_VARIABLE, raising=False)
    assert max_json_bytes() == DEFAULT_MAX_JSON_BYTES == 64 * 1024 * 1024


def test_oversize_input_refused(
    db: psycopg.Connection[DictRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_JSON_BYTES_VARIABLE, "1000")
    payload = {"items": ["1" * 1000]}  # 1015 bytes of JSON text
    with unchanged(db), Client(conn=db) as client:
        with pytest.raises(InvalidInputError) as raised:
            client.start_flow(orders, payload)
        with pytest.raises(InvalidInputError) as in_batch:
            client.start_flows(orders, [{"items": ["1"]}, payload])
    expected = (
        "input of flow 'orders' is 1015 bytes of JSON, over the limit of 1000 bytes "
        "(set PGFLOW_MAX_JSON_BYTES to change it)"
    )
    assert str(raised.value) == str(in_batch.value) == expected


# -- unknown run ids and dropped flows -------------------------------------------------------


def test_unknown_run_id_refused_by_the_python_api(
    db: psycopg.Connection[DictRow], pgflow_database_url: str
) -> None:
    run_id = uuid.uuid4()
    missing = f"run {run_id} does not exist"
    with unchanged(db), Client(pgflow_database_url) as client:
        for call in (
            client.get_run,
            client.get_run_with_states,
            client.get_flow_input,
            client.cancel_run,
            client.retry_run,
            client.resume_run,
        ):
            with pytest.raises(RunNotFoundError, match=f"^{missing}$"):
                call(run_id)
        with pytest.raises(RunNotFoundError, match=f"^{missing}$"):
            client.wait(run_id, timeout=1)
        with pytest.raises(RunNotFoundError, match=f"^{missing}$"):
            list(client.events(run_id, timeout=1))
        with pytest.raises(StepOutputUnavailableError, match=f"^run {run_id} has no step 'total'$"):
            client.get_step_output(run_id, "total")


async def test_unknown_run_id_refused_by_the_async_api(
    db: psycopg.Connection[DictRow], pgflow_database_url: str
) -> None:
    run_id = uuid.uuid4()
    missing = f"^run {run_id} does not exist$"
    with unchanged(db):
        async with AsyncClient(pgflow_database_url) as client:
            for call in (client.get_run, client.get_run_with_states, client.cancel_run):
                with pytest.raises(RunNotFoundError, match=missing):
                    await call(run_id)
            with pytest.raises(RunNotFoundError, match=missing):
                await client.wait(run_id, timeout=1)


async def test_async_client_refuses_bad_input_alike(
    db: psycopg.Connection[DictRow], pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_JSON_BYTES_VARIABLE, "1000")
    slug = "x'; DROP TABLE pgflow.runs; --"
    with unchanged(db):
        async with AsyncClient(pgflow_database_url) as client:
            with pytest.raises(FlowNotFoundError) as hostile:
                await client.start_flow(slug, {})
            with pytest.raises(InvalidInputError) as not_json:
                await client.start_flow(orders, {"ok": {1: "x"}})
            with pytest.raises(InvalidInputError) as oversize:
                await client.start_flows(orders, [{"items": ["1" * 1000]}])
            with pytest.raises(InvalidInputError) as not_array:
                await client.start_flow(batch, {"items": [1]})  # type: ignore[arg-type]
    assert str(hostile.value) == f"flow {slug!r} does not exist: {ONLY_ASCII}"
    assert str(not_json.value) == (
        "input of flow 'orders' is not JSON-serialisable: input['ok'] has a non-string key 1"
    )
    assert str(oversize.value).startswith("input of flow 'orders' is 1015 bytes of JSON")
    assert str(not_array.value).startswith("flow 'batch' has root map steps (double)")


def test_unknown_run_id_through_the_sql_api(db: psycopg.Connection[DictRow]) -> None:
    run_id = uuid.uuid4()
    with unchanged(db):
        # The 0.8.1 calls answer "nothing" (a worker's late report for a pruned run is no error).
        assert db.execute("SELECT pgflow.get_run_with_states(%s) AS r", (run_id,)).fetchone() == {
            "r": None
        }
        for call in ("complete_task(%s, 'total', 0, '1')", "fail_task(%s, 'total', 0, 'x')"):
            assert db.execute(f"SELECT * FROM pgflow.{call}", (run_id,)).fetchall() == []
        error = sql_error(db, "SELECT * FROM pgflow.cancel_run(%s)", (run_id,))
    assert isinstance(error, psycopg.errors.NoDataFound)
    assert error.diag.message_primary == f"run {run_id} does not exist"


def test_start_on_a_dropped_flow_refused(db: psycopg.Connection[DictRow]) -> None:
    assert delete_flow(db, "batch")
    with unchanged(db), Client(conn=db) as client:
        with pytest.raises(FlowNotFoundError) as raised:
            client.start_flow(batch, [1])
        assert str(raised.value) == "flow 'batch' does not exist (define it, or run ensure_flow)"
        error = sql_error(db, "SELECT pgflow.start_flow('batch', '[1]')", None)
    assert isinstance(error, psycopg.errors.ForeignKeyViolation)
    assert error.diag.constraint_name == "runs_flow_slug_fkey"


def test_worker_survives_its_flow_being_dropped(
    db: psycopg.Connection[DictRow], pgflow_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with running_worker([batch], pgflow_database_url) as worker, Client(conn=db) as client:
        assert delete_flow(db, "batch")  # its queue goes too: polls fail, and are retried
        time.sleep(1)  # several polls (every 0.2 s) against the missing queue
        ensure_flow(db, batch)
        run = client.start_flow_sync(batch, [1, 2], timeout=30)
        assert not worker.shutdown.is_set()
    assert (run.status, run.output) == ("completed", {"double": [2, 4]})
    assert any(
        record.getMessage().startswith("flow batch: database error while polling")
        for record in caplog.records
    )


# -- outputs -----------------------------------------------------------------------------------


def test_worker_fails_tasks_with_bad_outputs_and_keeps_working(
    db: psycopg.Connection[DictRow], pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAX_JSON_BYTES_VARIABLE, "1000")
    outputs: dict[str, Any] = {
        "infinite": float("inf"),
        "a_set": {1},
        "circular": _circular(),
        "an_object": {"when": object()},
        "oversize": "x" * 1000,  # 1002 bytes of JSON text
        "nul": ["a\x00b"],
    }
    expected = {
        "infinite": "OutputError: output is inf, which JSON cannot represent",
        "a_set": "OutputError: output is a set, which is not JSON-serialisable",
        "circular": "OutputError: output[0] contains itself (a circular reference)",
        "an_object": "OutputError: output['when'] is a object, which is not JSON-serialisable",
        "oversize": "OutputError: output is 1002 bytes of JSON, over the limit of 1000 bytes "
        "(set PGFLOW_MAX_JSON_BYTES to change it)",
        "nul": "OutputError: output[0] contains a NUL character, which PostgreSQL cannot store",
    }
    jobs = [
        job(max_attempts=2, base_delay=1, slug=f"bad_{name}")(lambda _payload, value=value: value)
        for name, value in outputs.items()
    ]
    fine = job(slug="fine")(lambda payload: payload)
    with running_worker([*jobs, fine], pgflow_database_url), Client(conn=db) as client:
        handles = {name: client.start_flow(f"bad_{name}", {}) for name in outputs}
        runs = {name: handle.wait(timeout=30) for name, handle in handles.items()}
        after = client.start_flow_sync("fine", {"still": "working"}, timeout=30)
    assert {name: run.status for name, run in runs.items()} == dict.fromkeys(outputs, "failed")
    tasks = {
        row["flow_slug"]: (row["attempts_count"], row["error_message"])
        for row in db.execute(
            "SELECT flow_slug, attempts_count, error_message FROM pgflow.step_tasks "
            "WHERE flow_slug LIKE 'bad\\_%'"
        )
    }
    assert tasks == {f"bad_{name}": (2, message) for name, message in expected.items()}
    assert after.output == {"fine": {"still": "working"}}


# -- environment -------------------------------------------------------------------------------


def test_worker_on_a_database_without_the_schema(pgflow_empty_database_url: str) -> None:
    result = run_cli("worker", "pgflow.demo:flow", "--database-url", pgflow_empty_database_url)
    assert result.returncode == 1
    assert result.stderr == (
        "error: the pgflow schema is not installed in this database: run `pgflow install`\n"
    )
    with (
        pytest.raises(InstallError, match=r"^the pgflow schema is not installed"),
        running_worker([orders], pgflow_empty_database_url),
    ):
        pass
