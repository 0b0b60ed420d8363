"""Upstream's DSL compiler (``@pgflow/dsl@0.8.1`` from npm) run as a black box with node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from pgflow.testing._upstream import UpstreamUnavailable, default_cache_dir

DSL_PACKAGE = "@pgflow/dsl@0.8.1"


def _dsl_dir() -> Path:
    root = default_cache_dir().parent / "upstream-dsl-0.8.1"
    if (root / "node_modules" / "@pgflow" / "dsl" / "package.json").exists():
        return root
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise UpstreamUnavailable("node/npm are not on PATH")
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text('{"name": "pgflow-dsl-peer", "private": true}\n')
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", DSL_PACKAGE],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        raise UpstreamUnavailable(f"npm install {DSL_PACKAGE} failed: {exc}") from exc
    return root


def upstream_compile(flow_expressions: list[str]) -> list[list[str]]:
    """Compile each JavaScript flow expression (``new Flow(...)...``) with upstream's DSL."""
    root = _dsl_dir()
    body = ",\n".join(f"compileFlow({expr})" for expr in flow_expressions)
    script = (
        "import { Flow, compileFlow } from '@pgflow/dsl';\n"
        f"console.log(JSON.stringify([\n{body}\n]));\n"
    )
    path = root / "compile_peer.mjs"
    path.write_text(script)
    result = subprocess.run(
        ["node", str(path)], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"upstream DSL failed: {result.stderr}")
    compiled: list[list[str]] = json.loads(result.stdout)
    return compiled
