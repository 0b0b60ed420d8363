-- The installer bootstraps this schema too; repeating it keeps the migration self-sufficient
-- when applied by an external migration tool.
CREATE SCHEMA IF NOT EXISTS pgflow;

-- Browser clients reach pgflow only through explicit grants (see the docs), never by default.
REVOKE ALL ON SCHEMA pgflow FROM public;
