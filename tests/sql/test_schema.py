"""The 0.8.1 schema: names, columns, defaults, constraints, indexes, type and signatures."""

from __future__ import annotations

import json

import pytest

from .conftest import Conn, q, scalar

COLUMNS = {
    "flows": [
        ("flow_slug", "text", True, None),
        ("opt_max_attempts", "integer", True, "3"),
        ("opt_base_delay", "integer", True, "1"),
        ("opt_timeout", "integer", True, "60"),
        ("created_at", "timestamp with time zone", True, "now()"),
    ],
    "steps": [
        ("flow_slug", "text", True, None),
        ("step_slug", "text", True, None),
        ("step_type", "text", True, "'single'::text"),
        ("step_index", "integer", True, "0"),
        ("deps_count", "integer", True, "0"),
        ("opt_max_attempts", "integer", False, None),
        ("opt_base_delay", "integer", False, None),
        ("opt_timeout", "integer", False, None),
        ("opt_start_delay", "integer", False, None),
        ("created_at", "timestamp with time zone", True, "now()"),
    ],
    "deps": [
        ("flow_slug", "text", True, None),
        ("dep_slug", "text", True, None),
        ("step_slug", "text", True, None),
        ("created_at", "timestamp with time zone", False, "now()"),
    ],
    "workers": [
        ("worker_id", "uuid", True, None),
        ("queue_name", "text", True, None),
        ("function_name", "text", True, None),
        ("started_at", "timestamp with time zone", True, "now()"),
        ("deprecated_at", "timestamp with time zone", False, None),
        ("last_heartbeat_at", "timestamp with time zone", True, "now()"),
    ],
    "runs": [
        ("run_id", "uuid", True, "gen_random_uuid()"),
        ("flow_slug", "text", True, None),
        ("status", "text", True, "'started'::text"),
        ("input", "jsonb", True, None),
        ("output", "jsonb", False, None),
        ("remaining_steps", "integer", True, "0"),
        ("started_at", "timestamp with time zone", True, "now()"),
        ("completed_at", "timestamp with time zone", False, None),
        ("failed_at", "timestamp with time zone", False, None),
    ],
    "step_states": [
        ("flow_slug", "text", True, None),
        ("run_id", "uuid", True, None),
        ("step_slug", "text", True, None),
        ("status", "text", True, "'created'::text"),
        ("remaining_tasks", "integer", False, None),
        ("initial_tasks", "integer", False, None),
        ("remaining_deps", "integer", True, "0"),
        ("error_message", "text", False, None),
        ("created_at", "timestamp with time zone", True, "now()"),
        ("started_at", "timestamp with time zone", False, None),
        ("completed_at", "timestamp with time zone", False, None),
        ("failed_at", "timestamp with time zone", False, None),
    ],
    "step_tasks": [
        ("flow_slug", "text", True, None),
        ("run_id", "uuid", True, None),
        ("step_slug", "text", True, None),
        ("message_id", "bigint", False, None),
        ("task_index", "integer", True, "0"),
        ("status", "text", True, "'queued'::text"),
        ("attempts_count", "integer", True, "0"),
        ("error_message", "text", False, None),
        ("output", "jsonb", False, None),
        ("queued_at", "timestamp with time zone", True, "now()"),
        ("started_at", "timestamp with time zone", False, None),
        ("completed_at", "timestamp with time zone", False, None),
        ("failed_at", "timestamp with time zone", False, None),
        ("last_worker_id", "uuid", False, None),
    ],
}

CONSTRAINTS = {
    "flows": {
        "flows_pkey",
        "slug_is_valid",
        "opt_max_attempts_is_nonnegative",
        "opt_base_delay_is_nonnegative",
        "opt_timeout_is_positive",
    },
    "steps": {
        "steps_pkey",
        "steps_flow_slug_step_index_key",
        "steps_flow_slug_fkey",
        "steps_step_slug_check",
        "steps_step_type_check",
        "steps_deps_count_check",
        "opt_max_attempts_is_nonnegative",
        "opt_base_delay_is_nonnegative",
        "opt_timeout_is_positive",
        "opt_start_delay_is_nonnegative",
    },
    "deps": {
        "deps_pkey",
        "deps_flow_slug_fkey",
        "deps_flow_slug_dep_slug_fkey",
        "deps_flow_slug_step_slug_fkey",
        "deps_check",
    },
    "workers": {"workers_pkey"},
    "runs": {
        "runs_pkey",
        "runs_flow_slug_fkey",
        "runs_remaining_steps_check",
        "status_is_valid",
        "completed_at_or_failed_at",
        "completed_at_is_after_started_at",
        "failed_at_is_after_started_at",
    },
    "step_states": {
        "step_states_pkey",
        "step_states_flow_slug_fkey",
        "step_states_run_id_fkey",
        "step_states_flow_slug_step_slug_fkey",
        "step_states_initial_tasks_check",
        "step_states_remaining_deps_check",
        "status_is_valid",
        "status_and_remaining_tasks_match",
        "remaining_tasks_state_consistency",
        "initial_tasks_known_when_started",
        "completed_at_or_failed_at",
        "started_at_is_after_created_at",
        "completed_at_is_after_started_at",
        "failed_at_is_after_started_at",
    },
    "step_tasks": {
        "step_tasks_pkey",
        "step_tasks_flow_slug_fkey",
        "step_tasks_run_id_fkey",
        "step_tasks_run_id_step_slug_fkey",
        "step_tasks_last_worker_id_fkey",
        "valid_status",
        "output_valid_only_for_completed",
        "attempts_count_nonnegative",
        "completed_at_or_failed_at",
        "completed_at_is_after_queued_at",
        "failed_at_is_after_queued_at",
        "started_at_is_after_queued_at",
        "completed_at_is_after_started_at",
        "failed_at_is_after_started_at",
    },
}

INDEXES = {
    "flows_pkey",
    "steps_pkey",
    "steps_flow_slug_step_index_key",
    "deps_pkey",
    "workers_pkey",
    "runs_pkey",
    "step_states_pkey",
    "step_tasks_pkey",
    "idx_deps_by_flow_step",
    "idx_deps_by_flow_dep",
    "idx_runs_flow_slug",
    "idx_runs_status",
    "idx_step_states_ready",
    "idx_step_states_failed",
    "idx_step_states_flow_slug",
    "idx_step_states_run_id",
    "idx_step_tasks_message_id",
    "idx_step_tasks_queued",
    "idx_step_tasks_completed",
    "idx_step_tasks_failed",
    "idx_step_tasks_flow_run_step",
    "idx_step_tasks_started",
    "idx_step_tasks_queued_msg",
    "idx_step_tasks_last_worker",
    "idx_workers_queue_name",
    "idx_workers_heartbeat",
}

# name -> (argument list as pg_get_function_arguments prints it, result type)
SIGNATURES = {
    "is_valid_slug": ("slug text", "boolean"),
    "calculate_retry_delay": ("base_delay numeric, attempts_count integer", "integer"),
    "create_flow": (
        "flow_slug text, max_attempts integer DEFAULT 3, base_delay integer DEFAULT 5, "
        "timeout integer DEFAULT 60",
        "pgflow.flows",
    ),
    # The 0.8.1 parameters, then the four upstream 0.14 appended for conditional steps (the
    # 0.8.1 overload is gone, as upstream's: calls written for it reach this one unchanged).
    "add_step": (
        "flow_slug text, step_slug text, deps_slugs text[] DEFAULT '{}'::text[], "
        "max_attempts integer DEFAULT NULL::integer, base_delay integer DEFAULT NULL::integer, "
        "timeout integer DEFAULT NULL::integer, start_delay integer DEFAULT NULL::integer, "
        "step_type text DEFAULT 'single'::text, required_input_pattern jsonb DEFAULT NULL::jsonb, "
        "forbidden_input_pattern jsonb DEFAULT NULL::jsonb, when_unmet text DEFAULT 'skip'::text, "
        "when_exhausted text DEFAULT 'fail'::text",
        "pgflow.steps",
    ),
    "start_flow": (
        "flow_slug text, input jsonb, run_id uuid DEFAULT NULL::uuid",
        "SETOF pgflow.runs",
    ),
    "start_ready_steps": ("run_id uuid", "void"),
    "cascade_complete_taskless_steps": ("run_id uuid", "integer"),
    "start_tasks": (
        "flow_slug text, msg_ids bigint[], worker_id uuid",
        "SETOF pgflow.step_task_record",
    ),
    "complete_task": (
        "run_id uuid, step_slug text, task_index integer, output jsonb",
        "SETOF pgflow.step_tasks",
    ),
    "fail_task": (
        "run_id uuid, step_slug text, task_index integer, error_message text",
        "SETOF pgflow.step_tasks",
    ),
    "maybe_complete_run": ("run_id uuid", "void"),
    "poll_for_tasks": (
        "queue_name text, vt integer, qty integer, max_poll_seconds integer DEFAULT 5, "
        "poll_interval_ms integer DEFAULT 100",
        "SETOF pgflow.step_task_record",
    ),
    "set_vt_batch": (
        "queue_name text, msg_ids bigint[], vt_offsets integer[]",
        "TABLE(msg_id bigint, read_ct integer, enqueued_at timestamp with time zone, "
        "vt timestamp with time zone, message jsonb, headers jsonb)",
    ),
    "get_run_with_states": ("run_id uuid", "jsonb"),
    "start_flow_with_states": (
        "flow_slug text, input jsonb, run_id uuid DEFAULT NULL::uuid",
        "jsonb",
    ),
    "prune_data_older_than": ("retention_interval interval", "void"),
}


def test_core_tables_exist(pgflow_conn: Conn) -> None:
    rows = q(
        pgflow_conn,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'pgflow'"
        " AND tablename <> 'schema_migrations'",
    )
    assert set(COLUMNS) <= {r["tablename"] for r in rows}


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_columns_types_nullability_defaults_in_order(pgflow_conn: Conn, table: str) -> None:
    rows = q(
        pgflow_conn,
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid) AS dflt
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        f"pgflow.{table}",
    )
    got = [(r["attname"], r["type"], r["attnotnull"], r["dflt"]) for r in rows]
    # The 0.8.1 columns come first, in order; later migrations may only append nullable or
    # defaulted columns (additive, invisible to 0.8.1 callers).
    assert got[: len(COLUMNS[table])] == COLUMNS[table]
    for name, _type, notnull, default in got[len(COLUMNS[table]) :]:
        assert not notnull or default is not None, name


@pytest.mark.parametrize("table", sorted(CONSTRAINTS))
def test_constraint_names(pgflow_conn: Conn, table: str) -> None:
    rows = q(
        pgflow_conn,
        # PostgreSQL 18 also records NOT NULL as constraints (contype 'n'); columns cover those.
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype <> 'n'",
        f"pgflow.{table}",
    )
    assert CONSTRAINTS[table] <= {r["conname"] for r in rows}


def test_contract_indexes_exist(pgflow_conn: Conn) -> None:
    rows = q(pgflow_conn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'pgflow'")
    assert {r["indexname"] for r in rows} >= INDEXES


def test_partial_indexes_have_their_predicates(pgflow_conn: Conn) -> None:
    defs = {
        r["indexname"]: r["indexdef"]
        for r in q(
            pgflow_conn, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'pgflow'"
        )
    }
    assert "(run_id, status, remaining_deps)" in defs["idx_step_states_ready"]
    assert "status = 'created'" in defs["idx_step_states_ready"]
    assert "remaining_deps = 0" in defs["idx_step_states_ready"]
    assert "status = 'queued'" in defs["idx_step_tasks_queued_msg"]
    assert "(message_id)" in defs["idx_step_tasks_queued_msg"]
    assert "status = 'started'" in defs["idx_step_tasks_started"]


def test_last_worker_fk_sets_null_on_delete(pgflow_conn: Conn) -> None:
    rows = q(
        pgflow_conn,
        "SELECT confdeltype FROM pg_constraint WHERE conname = 'step_tasks_last_worker_id_fkey'",
    )
    assert rows == [{"confdeltype": "n"}]


def test_payload_columns_use_lz4_where_the_server_has_it(pgflow_conn: Conn) -> None:
    has_lz4 = scalar(
        pgflow_conn,
        "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    )
    rows = q(
        pgflow_conn,
        "SELECT c.relname || '.' || a.attname AS col, a.attcompression::text AS method "
        "FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
        "WHERE c.relnamespace = 'pgflow'::regnamespace AND a.attcompression <> '' "
        "ORDER BY 1",
    )
    expected = ["runs.input", "runs.output", "step_tasks.output"] if has_lz4 else []
    assert [r["col"] for r in rows] == expected
    assert {r["method"] for r in rows} <= {"l"}

    # A large input is stored compressed by that method and read back unchanged.
    pgflow_conn.execute("SELECT pgflow.create_flow('lz4_flow')")
    pgflow_conn.execute("SELECT pgflow.add_step('lz4_flow', 'items', step_type => 'map')")
    items = list(range(10_000))
    run_id = scalar(
        pgflow_conn,
        "SELECT run_id FROM pgflow.start_flow('lz4_flow', %s::jsonb)",
        json.dumps(items),
    )
    stored = q(
        pgflow_conn,
        "SELECT input, pg_column_compression(input) AS method FROM pgflow.runs WHERE run_id = %s",
        run_id,
    )
    assert stored[0]["input"] == items
    assert stored[0]["method"] == ("lz4" if has_lz4 else "pglz")


def test_step_task_record_attribute_order(pgflow_conn: Conn) -> None:
    rows = q(
        pgflow_conn,
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a WHERE a.attrelid = 'pgflow.step_task_record'::regclass
          AND a.attnum > 0 ORDER BY a.attnum
        """,
    )
    assert [(r["attname"], r["type"]) for r in rows] == [
        ("flow_slug", "text"),
        ("run_id", "uuid"),
        ("step_slug", "text"),
        ("input", "jsonb"),
        ("msg_id", "bigint"),
        ("task_index", "integer"),
    ]


def _functions(conn: Conn) -> dict[str, dict[str, object]]:
    rows = q(
        conn,
        """
        SELECT p.proname, pg_get_function_arguments(p.oid) AS args,
               pg_get_function_result(p.oid) AS result, l.lanname, p.prosecdef,
               p.provolatile, coalesce(p.proconfig, '{}') AS config
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = 'pgflow'
        """,
    )
    return {r["proname"]: r for r in rows}


def test_function_set_has_one_overload_each(pgflow_conn: Conn) -> None:
    names = [
        r["proname"]
        for r in q(
            pgflow_conn,
            "SELECT proname FROM pg_proc WHERE pronamespace = 'pgflow'::regnamespace",
        )
    ]
    assert len(names) == len(set(names))
    # Additive functions (later upstream names, our own) may sit beside the 0.8.1 set.
    assert set(SIGNATURES) <= set(names)


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_function_signature(pgflow_conn: Conn, name: str) -> None:
    fn = _functions(pgflow_conn)[name]
    assert (fn["args"], fn["result"]) == SIGNATURES[name]


def test_function_languages_security_and_search_path(pgflow_conn: Conn) -> None:
    fns = _functions(pgflow_conn)
    # start_tasks is PL/pgSQL here, not SQL as upstream's: a deliberate, measured deviation
    # (its plan is then cached; 1.29 -> 0.37 ms of server time per call on PostgreSQL 15).
    sql_language = {"calculate_retry_delay", "create_flow", "get_run_with_states"}
    for name in SIGNATURES:
        expected = "sql" if name in sql_language else "plpgsql"
        assert fns[name]["lanname"] == expected, name
    definers = {n for n in SIGNATURES if fns[n]["prosecdef"]}
    assert definers == {"get_run_with_states", "start_flow_with_states"}
    without_search_path = {n for n in SIGNATURES if fns[n]["config"] == []}
    assert without_search_path == {"cascade_complete_taskless_steps", "set_vt_batch"}
    # start_tasks also keeps a generic plan (see its source): another measured deviation.
    generic_plan = {"start_tasks"}
    for name in [*SIGNATURES, "_emit_event", "_archive_run_messages"]:
        if name in generic_plan:
            expected = ['search_path=""', "plan_cache_mode=force_generic_plan"]
            assert fns[name]["config"] == expected, name
        elif name not in without_search_path:
            assert fns[name]["config"] == ['search_path=""'], name
    assert fns["is_valid_slug"]["provolatile"] == "i"
    assert fns["calculate_retry_delay"]["provolatile"] == "i"


def test_schema_is_not_open_to_public(pgflow_conn: Conn) -> None:
    assert (
        scalar(pgflow_conn, "SELECT has_schema_privilege('public', 'pgflow', 'USAGE') AS usage")
        is False
    )
