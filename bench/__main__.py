"""``python -m bench <benchmark> [options]``: dispatch to a sub-benchmark."""

from __future__ import annotations

import importlib
import sys

#: Sub-benchmark name -> module with a ``main(argv) -> int``.
BENCHMARKS = {
    "core": "bench.core",
    "worker": "bench.worker",
    "monitor": "bench.monitor",
    "suite": "bench.suite",
    "ab": "bench.ab",
}

USAGE = "usage: python -m bench {" + ",".join(BENCHMARKS) + "} [options]  (-h for options)"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE)
        for name, module in BENCHMARKS.items():
            doc = (importlib.import_module(module).__doc__ or "").strip().splitlines()
            print(f"  {name:8} {doc[0] if doc else ''}")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name])
    return int(module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
