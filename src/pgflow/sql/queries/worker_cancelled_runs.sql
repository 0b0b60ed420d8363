-- Which of the runs a worker has handlers running for were cancelled (the check that stands in
-- for the run:cancelled event when the worker cannot LISTEN).
SELECT r.run_id FROM pgflow.runs AS r
WHERE r.run_id = ANY (%(run_ids)s) AND r.status = 'cancelled'
