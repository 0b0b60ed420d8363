"""Import a few CSV lines with ``import_people`` and print the run's output (a worker must be
running: ``pgflow worker examples.etl.flow``)."""

from __future__ import annotations

import sys

from examples.etl.flow import import_people
from pgflow import Client

SAMPLE = ["ada, 36", "grace,85", "", "alan ,41"]


def main(lines: list[str]) -> None:
    with Client() as client:
        run = client.start_flow_sync(import_people, {"lines": lines or SAMPLE}, timeout=60)
    print(run.status, run.output if run.status == "completed" else run.error_message)


if __name__ == "__main__":
    main(sys.argv[1:])
