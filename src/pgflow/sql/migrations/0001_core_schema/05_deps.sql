-- One row per DAG edge: dep_slug is the parent, step_slug the child.
CREATE TABLE pgflow.deps (
    flow_slug text NOT NULL,
    dep_slug text NOT NULL,
    step_slug text NOT NULL,
    created_at timestamptz DEFAULT now(),
    CONSTRAINT deps_pkey PRIMARY KEY (flow_slug, dep_slug, step_slug),
    CONSTRAINT deps_flow_slug_fkey FOREIGN KEY (flow_slug) REFERENCES pgflow.flows (flow_slug),
    CONSTRAINT deps_flow_slug_dep_slug_fkey FOREIGN KEY (flow_slug, dep_slug)
        REFERENCES pgflow.steps (flow_slug, step_slug),
    CONSTRAINT deps_flow_slug_step_slug_fkey FOREIGN KEY (flow_slug, step_slug)
        REFERENCES pgflow.steps (flow_slug, step_slug),
    CONSTRAINT deps_check CHECK (dep_slug <> step_slug)
);

-- Parents of a step: task input assembly in start_tasks.
CREATE INDEX idx_deps_by_flow_step ON pgflow.deps (flow_slug, step_slug);
-- Children of a step: releasing dependents on completion, leaf detection, type checks.
CREATE INDEX idx_deps_by_flow_dep ON pgflow.deps (flow_slug, dep_slug);
