CREATE OR REPLACE FUNCTION pgflow.calculate_retry_delay(base_delay numeric, attempts_count int)
RETURNS int
LANGUAGE sql
IMMUTABLE
SET search_path = ''
AS $$
    -- numeric arithmetic keeps large attempt counts exact instead of drifting through float.
    SELECT floor(base_delay * power(2::numeric, attempts_count::numeric))::int;
$$;
