"""The documentation cannot rot: its code runs, its commands exist, its links resolve.

Conventions for the Markdown under docs/ and examples/:

- A ```python block is real code. The blocks of one file run in order in one namespace (a
  later block may use what an earlier one defined), against a fresh database with the pgflow
  schema whose URL is in ``PGFLOW_DATABASE_URL`` (so ``Client()`` and ``Worker([...])`` find
  it, as they would in an application). The file's blocks together must also pass
  ``mypy --strict``.
- A ```py block is an illustration (it needs a server, a framework or a deployment the tests do
  not have); it is neither run nor type-checked. Keep them few.
- Every line of a ```bash block that starts with ``pgflow`` must name a real command with real
  options, and so must every inline `` `pgflow …` `` in the text.
- Relative links, and their #anchors, must point at files and headings that exist.
"""

from __future__ import annotations

import ast
import inspect
import re
import shlex
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

import pgflow.errors
from pgflow.cli._app import app
from tests._helpers import ROOT, run_mypy

DOCS = ROOT / "docs"
MARKDOWN = sorted(
    [*DOCS.glob("*.md"), *(ROOT / "examples").rglob("*.md"), ROOT / "README.md"],
)
DOC_PAGES = sorted(DOCS.glob("*.md"))
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


@dataclass(frozen=True)
class CodeBlock:
    path: Path
    line: int  # line number of the first code line in the Markdown file
    language: str
    code: str


def code_blocks(path: Path, language: str) -> list[CodeBlock]:
    text = path.read_text()
    return [
        CodeBlock(path, text.count("\n", 0, m.start(2)) + 1, m.group(1), m.group(2))
        for m in _FENCE.finditer(text)
        if m.group(1) == language
    ]


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _as_module(path: Path) -> str:
    """The file's python blocks as one module whose line numbers are the Markdown's."""
    lines = [""] * path.read_text().count("\n")
    for block in code_blocks(path, "python"):
        for offset, line in enumerate(block.code.splitlines()):
            lines[block.line - 1 + offset] = line
    return "\n".join(lines) + "\n"


PYTHON_DOCS = [p for p in MARKDOWN if p != ROOT / "README.md" and code_blocks(p, "python")]


# -- python blocks -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", PYTHON_DOCS, ids=_relative)
def test_python_blocks_run(
    path: Path, pgflow_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGFLOW_DATABASE_URL", pgflow_database_url)
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    try:
        for block in code_blocks(path, "python"):
            padded = "\n" * (block.line - 1) + block.code
            exec(compile(padded, str(path), "exec"), namespace)
    finally:
        # A page that failed halfway must not leave its worker and clients running.
        for value in namespace.values():
            if isinstance(value, ExitStack):
                value.close()


@pytest.mark.slow
def test_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    modules = []
    for path in PYTHON_DOCS:
        module = tmp_path / f"docs_{_relative(path).replace('/', '_').replace('.', '_')}.py"
        module.write_text(_as_module(path))
        modules.append(module)
    result = run_mypy(*modules, ROOT / "examples")
    # Point each error at the Markdown file it comes from (the line numbers already match).
    report = result.stdout
    for path, module in zip(PYTHON_DOCS, modules, strict=True):
        report = report.replace(str(module), _relative(path))
    assert result.returncode == 0, report + result.stderr


def test_illustrations_are_few() -> None:
    illustrative = [b for p in MARKDOWN for b in code_blocks(p, "py")]
    runnable = [b for p in MARKDOWN for b in code_blocks(p, "python")]
    assert len(illustrative) * 3 <= len(runnable), [
        f"{_relative(b.path)}:{b.line}" for b in illustrative
    ]


# -- commands ------------------------------------------------------------------------------------


def check_command(words: list[str]) -> str | None:
    """Why ``pgflow <words>`` is not a real command line, or None when it is."""
    command: Any = typer.main.get_command(app)
    path = ["pgflow"]
    rest = list(words)
    # Typer brings its own click: tell groups by their sub-commands, not by class.
    while (subcommands := getattr(command, "commands", None)) and rest and rest[0][0] != "-":
        if rest[0] not in subcommands:
            return f"{' '.join(path)} has no sub-command {rest[0]!r}"
        path.append(rest.pop(0))
        command = subcommands[path[-1]]
    if (
        getattr(command, "commands", None)
        and not command.invoke_without_command
        and not any(w in ("-h", "--help") for w in rest)
    ):
        return f"{' '.join(path)} needs a sub-command"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    known |= {"-h", "--help"}
    for word in rest:
        option = word.split("=", 1)[0]
        if option.startswith("-") and option not in known:
            return f"{' '.join(path)} has no option {option!r}"
    return None


def _bash_commands() -> Iterator[tuple[str, list[str]]]:
    for path in MARKDOWN:
        for block in code_blocks(path, "bash"):
            for offset, line in enumerate(block.code.splitlines()):
                # A line may list several commands separated by " · ".
                for command in line.strip().removeprefix("$ ").split(" · "):
                    if command.startswith("pgflow "):
                        words = shlex.split(command, comments=True)
                        where = f"{_relative(path)}:{block.line + offset}"
                        # Only the pgflow part of a pipeline or redirection.
                        cut = next(
                            (i for i, w in enumerate(words) if w in ("|", ">", "&&", "||", ";")),
                            len(words),
                        )
                        yield where, words[1:cut]


def _inline_commands() -> Iterator[tuple[str, list[str]]]:
    # Not the README's prose: it quotes command output too (`pgflow schema is up to date`).
    for path in [p for p in MARKDOWN if p != ROOT / "README.md"]:
        prose = _FENCE.sub("", path.read_text())
        for match in re.finditer(r"`pgflow ([^`]+)`", prose):
            words = [w for w in match.group(1).split() if not w.isupper() and w != "…"]
            yield f"{_relative(path)}: `pgflow {match.group(1)}`", words


def test_documented_commands_exist() -> None:
    problems = [
        f"{where}: {problem}"
        for where, words in [*_bash_commands(), *_inline_commands()]
        if (problem := check_command(words)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_the_worker_options_table_lists_real_options() -> None:
    page = (DOCS / "worker.md").read_text()
    table = page.split("## Running a worker", 1)[1].split("\n## ", 1)[0]
    options = [
        word
        for row in table.splitlines()
        if row.startswith("| `-")
        for word in re.findall(r"`(--?[a-z-]+)`", row.split("|")[1])
    ]
    assert len(options) >= 10
    problems = [p for o in options if (p := check_command(["worker", "app", o])) is not None]
    assert not problems


def test_the_command_check_can_fail() -> None:
    assert check_command(["worker", "app.flows", "--pooler"]) is None
    assert check_command(["db", "start"]) is None
    assert check_command(["frobnicate"]) == "pgflow has no sub-command 'frobnicate'"
    assert check_command(["db"]) == "pgflow db needs a sub-command"
    assert check_command(["runs", "--colour"]) == "pgflow runs has no option '--colour'"


# -- links ---------------------------------------------------------------------------------------


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub derives from the file's headings."""
    prose = _FENCE.sub("", path.read_text())
    return {
        re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        for m in re.finditer(r"^#{1,6} (.+)$", prose, re.M)
    }


def broken_links(path: Path) -> list[str]:
    prose = _FENCE.sub("", path.read_text())
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{_relative(path)}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
            problems.append(f"{_relative(path)}: {target} (no such heading)")
    return problems


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A title\n\n[ok](#a-title) [gone](missing.md) [bad](#no-such) [web](https://x.y)\n"
    )
    problems = broken_links(page)
    assert len(problems) == 2
    assert problems[0].endswith("missing.md (no such file)")
    assert problems[1].endswith("#no-such (no such heading)")


def test_links_resolve() -> None:
    problems = [problem for path in MARKDOWN for problem in broken_links(path)]
    assert not problems, "\n".join(problems)


def test_the_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text()
    missing = [p.name for p in DOC_PAGES if p.name != "index.md" and f"({p.name}" not in index]
    assert not missing


# -- troubleshooting -----------------------------------------------------------------------------


def _error_classes() -> list[str]:
    return [
        name
        for name, obj in vars(pgflow.errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, Exception)
        and obj.__module__ == pgflow.errors.__name__
    ]


def _sql_exception_texts() -> list[str]:
    """The longest fixed part of every RAISE EXCEPTION text of the SQL core."""
    texts: list[str] = []
    for path in sorted((ROOT / "src" / "pgflow" / "sql").rglob("*.sql")):
        messages: list[str] = re.findall(r"RAISE EXCEPTION\s+'([^']*)'", path.read_text())
        texts.extend(max(message.split("%"), key=len).strip() for message in messages)
    return texts


def _cli_failure_texts() -> list[str]:
    """The longest fixed part of every ``fail(...)`` message of the CLI."""
    texts: list[str] = []
    for path in sorted((ROOT / "src" / "pgflow" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "fail"
                and node.args
            ):
                message = node.args[0]
                # Only literal parts: a message passed through (an error's text) has none.
                parts = [
                    str(v.value)
                    for v in (message.values if isinstance(message, ast.JoinedStr) else [message])
                    if isinstance(v, ast.Constant)
                ]
                fixed = max(parts, key=len, default="").strip()
                if fixed:
                    texts.append(fixed)
    return texts


def test_troubleshooting_covers_every_error() -> None:
    page = " ".join((DOCS / "troubleshooting.md").read_text().split())  # lines may wrap
    expected = [*_error_classes(), *_sql_exception_texts(), *_cli_failure_texts()]
    assert len(_error_classes()) >= 10
    assert _sql_exception_texts()
    missing = [text for text in expected if text not in page]
    assert not missing, f"docs/troubleshooting.md does not mention: {missing}"
