-- Also created by migration 0001 (table checks need it); this file is the living definition.
CREATE OR REPLACE FUNCTION pgflow.is_valid_slug(slug text)
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
