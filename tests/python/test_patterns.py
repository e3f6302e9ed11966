"""The overload patterns of bench/python/, scaled down, through ballast: a new client per call on a thread
each (a), and `asyncio.gather` of every `ainvoke` (b). The scripts run unchanged; only their base URL,
call count and client timeout differ from the benchmark's. The upstream serves 2 answers at a time,
~0.15 s each: 40 calls take ~3 s, more than the clients' 2 s timeout, so reached directly the last ones
would time out. Through ballast (max_in_flight 2) every call must succeed with no client timeout,
counted by the client and by the simulator."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import pytest

from harness import REPO, Gateway, Harness, Sim, eventually

CAPACITY = 2
TTFT_MS, ITL_MS, TOKENS = 50, 10, 10  # 0.15 s per answer
CALLS = 40
CLIENT_TIMEOUT_S = 2
RUN_TIMEOUT_S = 60  # one script's run: its imports, and the clients' retries if ballast failed them
MODEL = "gpt-4o-mini"

# The scaled-down load must still be more than the upstream can serve within the client's timeout.
assert CALLS * (TTFT_MS + TOKENS * ITL_MS) / 1000 / CAPACITY > CLIENT_TIMEOUT_S


@pytest.fixture(scope="module")
def sim(harness: Harness) -> Sim:
    return harness.sim("--capacity", str(CAPACITY), "--ttft", str(TTFT_MS), "--itl", str(ITL_MS),
                       "--tokens", str(TOKENS))


@pytest.fixture(scope="module")
def gateway(harness: Harness, sim: Sim) -> Gateway:
    return harness.serve({"models": [{"name": MODEL, "endpoints": [{"base_url": sim.base,
                                                                    "max_in_flight": CAPACITY}]}]})


@pytest.mark.parametrize("pattern", ["client_per_call", "gather_ainvoke"])
def test_through_ballast_every_call_succeeds(sim: Sim, gateway: Gateway, pattern: str) -> None:
    before = sim.stats()
    mark = gateway.log_mark()
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "python" / f"{pattern}.py"), gateway.base],
        env={**os.environ, "CALLS": str(CALLS), "CLIENT_TIMEOUT": str(CLIENT_TIMEOUT_S), "MODEL": MODEL},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert run.returncode == 0, f"{pattern} exited with {run.returncode}:\n{run.stderr}"
    result = json.loads(run.stdout.splitlines()[-1])

    after = eventually(lambda: (s := sim.stats())["in_flight"] + s["queued"] == 0 and s)

    # What ballast answered, for the failure messages: every attempt the SDKs made, refusals included.
    log = gateway.access_log()[mark:]
    answered = collections.Counter(f'{r["status"]} {r["code"]}' for r in log)
    unusual = "\n".join(json.dumps(r) for r in log if r["code"] not in ("ok", "queue_timeout"))
    seen = f"ballast answered {dict(answered)}; the answers other than ok and queue_timeout:\n{unusual}"

    assert (result["ok"], result["client_timeouts"], result["errors"]) == (CALLS, 0, {}), f"{result}\n{seen}"
    # The simulator answered each call once, to a client still there.
    assert after["completed"] - before["completed"] == CALLS, f"sim before: {before}\nsim after: {after}\n{seen}"
    # ...and nothing for nobody: no slot went to a request that could no longer be answered in time.
    assert after["wasted"] - before["wasted"] == 0, f"sim before: {before}\nsim after: {after}\n{seen}"
    assert after["cancelled"] - before["cancelled"] == 0, f"sim before: {before}\nsim after: {after}\n{seen}"
