"""Start one ``greet_user`` run and print its output (a worker must be running)."""

from __future__ import annotations

import sys

from examples.greeting.flow import greet_user
from pgflow import Client


def main(argv: list[str]) -> None:
    first, last = argv if len(argv) == 2 else ("Ada", "Lovelace")
    with Client() as client:
        run = client.start_flow_sync(greet_user, {"first": first, "last": last}, timeout=60)
    print(run.status, run.output)


if __name__ == "__main__":
    main(sys.argv[1:])
