"""Loading flows from code: one by path, a list, or every flow of a module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgflow import Flow, FlowDefinitionError
from pgflow.dsl import load_flows

MODULE = """
from pgflow import Flow, job

first = Flow("first")

@first.step
def a(run):
    return 1

@first.step("a")  # a dependency by name
def b(run, a_out):
    return a_out

@job
def second(payload):
    return None

both = [first, second]
not_a_flow = 42
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"flows_for_loading_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_one_flow_by_path(module: str) -> None:
    (flow,) = load_flows(f"{module}:first")
    assert isinstance(flow, Flow)
    assert [s.slug for s in flow.steps] == ["a", "b"]
    assert flow["b"].dependencies == ("a",)


def test_a_job_and_a_list(module: str) -> None:
    assert [f.slug for f in load_flows(f"{module}:second")] == ["second"]
    assert [f.slug for f in load_flows(f"{module}:both")] == ["first", "second"]


def test_every_flow_of_a_module(module: str) -> None:
    assert [f.slug for f in load_flows(module)] == ["first", "second"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{m}:missing", "module '{m}' has no attribute 'missing'"),
        ("{m}:not_a_flow", "'{m}:not_a_flow' is not a pgflow Flow or Job (got int)"),
        (
            "no_such_module_xyz:f",
            "cannot import 'no_such_module_xyz': No module named 'no_such_module_xyz'",
        ),
        (":f", "':f': expected 'package.module' or 'package.module:flow'"),
    ],
)
def test_errors_name_the_target(module: str, target: str, message: str) -> None:
    with pytest.raises(FlowDefinitionError) as caught:
        load_flows(target.format(m=module))
    assert str(caught.value) == message.format(m=module)


def test_module_without_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty_flows_mod.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FlowDefinitionError, match="defines no pgflow Flow or Job"):
        load_flows("empty_flows_mod")
    sys.modules.pop("empty_flows_mod", None)
