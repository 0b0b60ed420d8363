-- The payload of a step:started event (upstream's keys and order), one definition for every
-- function that starts steps. Plain SQL with no settings of its own, so that the planner
-- inlines it into the calling statement and the hot paths pay no function call; it names
-- pg_catalog itself instead of setting search_path.
CREATE OR REPLACE FUNCTION pgflow._step_started_event(
    p_run_id uuid,
    p_step_slug text,
    p_started_at timestamptz,
    p_remaining_tasks int,
    p_remaining_deps int
)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    SELECT pg_catalog.jsonb_build_object(
        'event_type', 'step:started',
        'run_id', p_run_id,
        'step_slug', p_step_slug,
        'status', 'started',
        'started_at', p_started_at,
        'remaining_tasks', p_remaining_tasks,
        'remaining_deps', p_remaining_deps
    )
$$;
