"""mypy --strict accepts the README's typed style and reports a wrong dependency type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests._helpers import ROOT, run_mypy

SAMPLES = Path(__file__).parent / "typing_samples"


@pytest.mark.slow
def test_typed_style_passes_mypy_strict() -> None:
    result = run_mypy(SAMPLES / "typed_flow.py")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_wrong_dependency_types_are_reported_by_mypy() -> None:
    sample = SAMPLES / "wrong_dependency_type.py"
    expected = {
        number
        for number, line in enumerate(sample.read_text().splitlines(), start=1)
        if "MYPY-ERROR" in line
    }
    result = run_mypy(sample)
    reported = {
        int(m.group(1))
        for m in re.finditer(rf"{re.escape(sample.name)}:(\d+): error:", result.stdout)
    }
    assert result.returncode == 1
    assert reported == expected, result.stdout


def test_typed_sample_also_runs() -> None:
    from tests.dsl.typing_samples import typed_flow

    assert [s.slug for s in typed_flow.flow.steps] == ["validate", "price", "charge", "notify"]
    assert typed_flow.flow["charge"].call.context == "positional"
    assert typed_flow.numbers["square"].step_type == "map"
    assert typed_flow.send_email.flow.slug == "send_email"


@pytest.mark.slow
def test_readme_flow_passes_mypy_strict_and_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "the README shows no Python code"
    for number, code in enumerate(blocks):
        sample = tmp_path / f"readme_block_{number}.py"
        sample.write_text(code)
        result = run_mypy(sample)
        assert result.returncode == 0, result.stdout + result.stderr
        exec(compile(code, str(sample), "exec"), {"__name__": f"readme_block_{number}"})
