"""examples/python/: each script runs once, unchanged, against `ballast serve` started with no configuration
(its built-in simulated model "sim", as `make run` serves it), and must exit 0 and print what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO, Gateway, Harness, eventually

EXAMPLES = REPO / "examples" / "python"
RUN_TIMEOUT_S = 60  # one example's whole run, its imports included (LangChain's take seconds on a busy machine)
ANSWER = r"\w+( \w+)+"  # the simulator's text: words

# The model calls each example makes.
CALLS = {"openai_async_fanout.py": 20, "langchain_batch.py": 5, "autogen_agent.py": 1, "ag2_agent.py": 1,
         "azure_langchain.py": 1}
# What each example must print, line by line (re.search each, in order).
EXPECTED = {
    "openai_async_fanout.py": [r"^20 answers in [\d.]+ s, answered by endpoint\(s\): sim$", rf"^first answer: {ANSWER}"],
    "langchain_batch.py": [rf"^a volcano: {ANSWER}", rf"^photosynthesis: {ANSWER}", r"^5 answers$"],
    "autogen_agent.py": [rf"^travel_planner: {ANSWER}", r"^tokens: \d+ in, [1-9]\d* out$"],
    "ag2_agent.py": [rf"^librarian: {ANSWER}", r"^tokens: \d+ in, [1-9]\d* out$"],
    "azure_langchain.py": [rf"^deployment sim: {ANSWER}", r"^tokens: \d+ in, [1-9]\d* out$"],
}


@pytest.fixture(scope="module")
def gateway(harness: Harness) -> Gateway:
    """`ballast serve` with no configuration: the built-in model "sim", as `make run` starts it (the harness
    keeps the machine's provider variables from it)."""
    gw = Gateway(["serve", "--listen", "127.0.0.1:0"])
    harness.processes.append(gw)
    gw.wait_listening()
    assert "serving the built-in simulated model 'sim'" in gw.stderr
    return gw


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example(gateway: Gateway, script: str) -> None:
    mark = gateway.log_mark()
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env={**os.environ, "BALLAST_BASE_URL": gateway.base},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert run.returncode == 0, f"{script} exited with {run.returncode}:\n{run.stderr}"
    lines = run.stdout.splitlines()
    at = 0
    for pattern in EXPECTED[script]:
        found = next((i for i in range(at, len(lines)) if re.search(pattern, lines[i])), None)
        assert found is not None, f"{script}: no line matching {pattern!r} in order in:\n{run.stdout}"
        at = found + 1

    # Every call went through ballast, and was answered (the access log is written as the answer ends).
    calls = eventually(lambda: len(gateway.access_log()) - mark >= CALLS[script] and gateway.access_log()[mark:])
    assert len(calls) == CALLS[script], calls
    assert all(c["status"] == 200 and c["model"] == "sim" for c in calls), calls
    if script == "azure_langchain.py":
        assert all(c["path"].startswith("/openai/deployments/sim/chat/completions") for c in calls), calls
