-- The slug checks on flows and steps call this function, so it has to exist before those
-- tables. functions/is_valid_slug.sql is the living definition and replaces this one right
-- after the migrations; keep the two identical.
CREATE FUNCTION pgflow.is_valid_slug(slug text)
RETURNS boolean
LANGUAGE plpgsql
IMMUTABLE
SET search_path = ''
AS $$
BEGIN
    -- "run" is reserved because task inputs carry the run input under that key.
    RETURN slug IS NOT NULL
       AND slug <> ''
       AND length(slug) <= 128
       AND slug ~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
       AND slug <> 'run';
END;
$$;
