"""Runs the browser client's own tests (tests/sdk/*.test.mjs) under Node's test runner.

Node is part of the machine: a missing ``node`` fails this test rather than skipping it, so
the client can never ship untested.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SDK_TESTS = Path(__file__).resolve().parent
ROOT = SDK_TESTS.parent.parent


def test_the_browser_client_passes_its_node_tests() -> None:
    node = shutil.which("node")
    assert node is not None, "node (>= 20) is required to test authsvc/sdk/authsvc.js"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    assert int(version.stdout.strip().lstrip("v").split(".")[0]) >= 20, version.stdout
    result = subprocess.run(
        [node, "--test", str(SDK_TESTS.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    assert "# pass 0" not in result.stdout
