"""Benchmarks of pgflow for Python, run as ``python -m bench <name>`` from the repository root.

Sub-benchmarks:

* ``core``: the SQL core driven through its public SQL API by worker processes, our core
  against the upstream pgflow 0.8.1 core and against raw pgmq, on one server in one invocation
  (:mod:`bench.core`).
* ``suite``: ours (real worker processes) against upstream pgflow, PgQueuer, Procrastinate, raw
  pgmq and pgbench, alternately, with every target of issue #10 marked met or unmet
  (:mod:`bench.suite`).
* ``ab``: a change judged against a git revision: the two trees' workers and SQL cores on one
  server, alternately (:mod:`bench.ab`).

See ``bench/README.md``.
"""
