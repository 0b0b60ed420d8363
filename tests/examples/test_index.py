"""Every example is listed in examples/README.md and run by a test module of its own."""

from __future__ import annotations

from pathlib import Path

from tests._helpers import ROOT

EXAMPLES = ROOT / "examples"
TESTS = Path(__file__).parent


def _examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and p.name != "__pycache__")


def test_every_example_is_in_the_index() -> None:
    index = (EXAMPLES / "README.md").read_text()
    assert len(_examples()) >= 5
    assert [name for name in _examples() if f"[{name}]" not in index] == []


def test_every_runnable_example_has_its_test() -> None:
    runnable = [name for name in _examples() if (EXAMPLES / name / "__init__.py").exists()]
    assert len(runnable) >= 4
    assert [name for name in runnable if not (TESTS / f"test_{name}.py").exists()] == []
