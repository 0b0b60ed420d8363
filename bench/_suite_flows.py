"""The flows and jobs our real worker runs in ``python -m bench suite``.

The suite writes this text, after :data:`bench.worker.FLOWS` (the 3-step chain ``chain``), into
the module ``bench_flows`` of a temporary directory and starts ``pgflow worker bench_flows:NAME``
processes on it. Slugs and shapes match the flows :mod:`bench.core` creates with SQL
(``bench_fanin``: a, b, c -> d; ``bench_single``: job; ``bench_map``: a root map ``items``), so
the worker finds them as they are. Every handler is a no-op but for ``bench_sleepy``, which
sleeps a little so that one worker has many tasks in flight at once (the memory measurement).
"""

#: How long a ``bench_sleepy`` job takes.
SLEEPY_SECONDS = 0.05

EXTRA_FLOWS = f"""

import asyncio

from pgflow import job

fanin = Flow("bench_fanin")


@fanin.step(slug="a")
async def fanin_a(run: Any) -> int:
    return 1


@fanin.step(slug="b")
async def fanin_b(run: Any) -> int:
    return 1


@fanin.step(slug="c")
async def fanin_c(run: Any) -> int:
    return 1


@fanin.step(fanin_a, fanin_b, fanin_c, slug="d")
async def fanin_d(run: Any, a: int, b: int, c: int) -> int:
    return a + b + c


single = Flow("bench_single")


@single.step(slug="job")
async def single_job(run: Any) -> int:
    return 1


root_map = Flow("bench_map")


@root_map.map(slug="items")
async def items(item: Any) -> Any:
    return item


@job
async def bench_job(payload: Any) -> None:
    return None


@job
async def bench_sleepy(payload: Any) -> None:
    await asyncio.sleep({SLEEPY_SECONDS})
"""

#: Flow slug -> the module attribute a worker is started on.
WORKER_TARGETS = {
    "bench_chain": "chain",
    "bench_fanin": "fanin",
    "bench_single": "single",
    "bench_map": "root_map",
    "bench_job": "bench_job",
    "bench_sleepy": "bench_sleepy",
}
#: Jobs the suite creates beside bench.core's flows: (flow slug, its one step's slug).
JOB_FLOWS = ("bench_job", "bench_sleepy")
