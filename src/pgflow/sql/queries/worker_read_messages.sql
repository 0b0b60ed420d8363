-- The classic protocol, for a core without claim_tasks (upstream pgflow): phase one.
-- Phase one of polling: hide up to qty visible messages for a short while (vt seconds);
-- start_tasks then extends the visibility of the ones it claims to the step's timeout.
SELECT msg_id FROM pgmq.read(%(queue)s, %(vt)s, %(qty)s)
