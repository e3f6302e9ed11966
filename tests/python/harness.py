"""Real `ballast sim` and `ballast serve` processes on 127.0.0.1 for the Python clients' tests.

Each process is started on port 0 (the kernel picks), its address read from what it logs, and stopped
with SIGTERM when its test file is done — only the processes that file started, by their PID. A process
that ended in a way nobody declared fails the file, as tests/integration/lib/harness.mjs does for Node.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, TypeVar

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("BALLAST_BIN") or str(REPO / "build" / "ballast")

START_TIMEOUT_S = 10.0  # until a process logs "listening on ..."
STOP_TIMEOUT_S = 10.0  # after SIGTERM; then SIGKILL, and the file fails

# A sanitizer's report, whatever the exit code that follows it.
SANITIZER_REPORT = re.compile(r"^==\d+==ERROR: \w+Sanitizer|^\S+:\d+:\d+: runtime error: ", re.M)
LISTENING = re.compile(r"listening on (https?)://(\S+)")
# The machine's provider and proxy variables must reach neither ballast nor the clients under test.
LEAKY_VARIABLES = re.compile(r"^(OPENAI_|AZURE_OPENAI_)|_proxy$|_PROXY$")

# The clients of this process reach 127.0.0.1 only: no proxy, no base URL or key from the machine, and no
# tracing service (LangSmith) from LangChain.
for _name in list(os.environ):
    if LEAKY_VARIABLES.search(_name) or _name.startswith(("LANGCHAIN_", "LANGSMITH_")):
        del os.environ[_name]

# urllib for the simulator's own endpoints, never through a proxy.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

T = TypeVar("T")


def clean_env() -> dict[str, str]:
    """The environment ballast runs with. In a sanitizer build a report ends the process with SIGABRT,
    so it never passes for an expected exit code; options already set in the environment come after,
    and win."""
    env = {k: v for k, v in os.environ.items() if not LEAKY_VARIABLES.search(k)}
    env["ASAN_OPTIONS"] = ":".join(filter(None, ["abort_on_error=1", env.get("ASAN_OPTIONS")]))
    env["UBSAN_OPTIONS"] = ":".join(
        filter(None, ["abort_on_error=1:print_stacktrace=1", env.get("UBSAN_OPTIONS")])
    )
    return env


def eventually(fn: Callable[[], T], timeout_s: float = 5.0, every_s: float = 0.02) -> T:
    """Polls fn() until it returns something truthy: a bounded wait for state another process reports."""
    until = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > until:
            raise AssertionError(f"condition not met within {timeout_s:g} s")
        time.sleep(every_s)


def closed_port() -> int:
    """A loopback port nothing listens on, so a connect to it is refused at once: tcpmux's, which no
    server here uses. A port the kernel just handed out and took back could be given to the next
    process started."""
    return 1


_running: list["Process"] = []  # started and not yet stopped, for _kill_leftovers


class Process:
    """One `ballast ...` process, followed to its end: its output is kept, and how it ended is judged."""

    def __init__(self, args: list[str], *, expect_exit: tuple[int, ...] = (0,)) -> None:
        text = " ".join([os.path.basename(BIN), *args])
        self.name = text if len(text) <= 200 else text[:200] + "..."
        self.args = args
        self.expect_exit = expect_exit
        self.stopping = False
        self.hung = False
        self._out: list[str] = []
        self._err: list[str] = []
        self._open_pipes = 2
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [BIN, *args],
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _running.append(self)
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe: Any, into: list[str]) -> None:
        for line in iter(pipe.readline, b""):
            with self._changed:
                into.append(line.decode("utf-8", "replace"))
                self._changed.notify_all()
        with self._changed:
            self._open_pipes -= 1
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        with self._changed:
            return "".join(self._out)

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._err)

    def wait_listening(self) -> None:
        """Returns once the process logged "listening on SCHEME://ADDR"; raises if it exits first or
        says nothing of the kind within START_TIMEOUT_S."""
        until = time.monotonic() + START_TIMEOUT_S
        with self._changed:
            while True:
                found = LISTENING.search("".join(self._err))
                if found:
                    self.scheme, self.address = found.group(1), found.group(2)
                    self.url = f"{self.scheme}://{self.address}"
                    return
                left = until - time.monotonic()
                if self._open_pipes == 0 or left <= 0:
                    how = "exited" if self._open_pipes == 0 else f"said nothing within {START_TIMEOUT_S:g} s"
                    raise RuntimeError(f"ballast {self.args[0]} did not start ({how}):\n{''.join(self._err)}")
                self._changed.wait(left)

    def stop(self, sig: int = signal.SIGTERM) -> str | None:
        """SIGTERM (or `sig`), as an operator would, then up to STOP_TIMEOUT_S for the process to end by
        itself. Returns what was wrong with how it ended, if anything."""
        if self.proc.poll() is None:
            self.stopping = True
            self.proc.send_signal(sig)
            self.proc.send_signal(signal.SIGCONT)  # a paused process must see the signal too
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.hung = True
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(STOP_TIMEOUT_S)
        if self in _running:
            _running.remove(self)
        return self.problem()

    def problem(self) -> str | None:
        code = self.proc.returncode
        if self.hung:
            what = f"still running {STOP_TIMEOUT_S:g} s after SIGTERM; killed with SIGKILL"
        elif code < 0:
            what = f"killed by {signal.Signals(-code).name}"
        elif code not in self.expect_exit:
            what = f"exited with {code} (expected {' or '.join(map(str, self.expect_exit))})"
        elif SANITIZER_REPORT.search(self.stderr) or SANITIZER_REPORT.search(self.stdout):
            what = f"exited with {code} after a sanitizer report"
        else:
            return None
        when = "when stopped" if self.stopping else "on its own"
        return f"{self.name}\n  {what} ({when})\n{excerpt(self.stderr)}"


def excerpt(stderr: str) -> str:
    """What a failure report shows of a process's stderr: a sanitizer report from its start, else the
    last lines."""
    lines = stderr.rstrip().split("\n")
    at = next((i for i, line in enumerate(lines) if SANITIZER_REPORT.search(line)), -1)
    shown = lines[at : at + 60] if at >= 0 else lines[-30:]
    return "\n".join(f"    | {line}" for line in shown)


class Sim(Process):
    """`ballast sim`: an OpenAI-compatible upstream, counting what it sees from its own side."""

    @property
    def base(self) -> str:
        return f"{self.url}/v1"

    def stats(self) -> dict[str, Any]:
        """GET /sim/stats: requests (of those, model_listings: GET /models, as health checks ask it),
        connections, in_flight, max_in_flight, queued, completed, cancelled, wasted, by_status."""
        with _direct.open(f"{self.url}/sim/stats", timeout=5) as res:
            return json.load(res)

    def generations(self) -> int:
        """Requests for a generation or an embedding the sim has received: everything but /models."""
        s = self.stats()
        return s["requests"] - s["model_listings"]


class Gateway(Process):
    """`ballast serve` with a configuration of the test's own."""

    config_file: Path

    @property
    def base(self) -> str:
        return f"{self.url}/v1"

    def access_log(self) -> list[dict[str, Any]]:
        """The access log so far: one JSON object per request ballast answered, in order."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def log_mark(self) -> int:
        return len(self.access_log())

    def record(self, request_id: str) -> dict[str, Any]:
        """The access-log record of one request (its x-ballast-request-id), once it is written: ballast
        writes it just after the response."""
        return eventually(lambda: next((r for r in self.access_log() if r["id"] == request_id), None))

    def log_after(self, mark: int, count: int) -> list[dict[str, Any]]:
        """The access-log records after `mark`, once there are at least `count` of them. A request
        answered just before the mark may still be logged after it."""
        def enough() -> list[dict[str, Any]] | None:
            records = self.access_log()[mark:]
            return records if len(records) >= count else None

        return eventually(enough)


@atexit.register
def _kill_leftovers() -> None:
    # Only when the tests were cut short: a file's fixture stops its processes itself.
    for p in list(_running):
        if p.proc.poll() is None:
            print(f"{p.name} was still running when the tests ended; killed")
            p.proc.kill()


class Harness:
    """The processes one test file started; stop_all() stops them and says which ended badly."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: list[Process] = []

    def sim(self, *flags: str) -> Sim:
        sim = Sim(["sim", "--listen", "127.0.0.1:0", *flags])
        self.processes.append(sim)
        sim.wait_listening()
        return sim

    def serve(self, config: dict[str, Any], *args: str) -> Gateway:
        """`config` is written as JSON, which is YAML, with listen on a free port."""
        file = self.tmp / f"ballast-{len(self.processes)}.yaml"
        file.write_text(json.dumps({"listen": "127.0.0.1:0", **config}, indent=2))
        gateway = Gateway(["serve", "--config", str(file), *args])
        gateway.config_file = file
        self.processes.append(gateway)
        gateway.wait_listening()
        return gateway

    def stop_all(self) -> list[str]:
        problems = [p.stop() for p in reversed(self.processes)]
        return [p for p in problems if p]


# The models every test file's gateway (Stack) serves.
UPSTREAM_KEY = "sk-upstream-key-held-by-ballast"  # the apps send any key; ballast sends this one
CHAT_MODEL = "gpt-4o-mini"
OPEN_MODEL = "llama-3.1-8b"  # not an OpenAI name: AutoGen needs model_info for it
EMBEDDING_MODEL = "text-embedding-3-small"
RETIRED_MODEL = "gpt-4-retired"  # routed by ballast, unknown to the upstream: its 404 model_not_found
UNKNOWN_MODEL = "no-such-model"  # not configured in ballast: ballast's own 404 unknown_model
DEAD_MODEL = "dead"  # its endpoint is a closed loopback port: 502 connect_refused
FAILING_MODEL = "failing"  # its upstream answers every generation 503
SLOW_MODEL = "slow"  # its upstream's first token takes SLOW_TTFT_MS
SLOW_TTFT_MS = 3000
TOKENS = 6  # tokens in every answer of the healthy upstream


class Stack:
    """A gateway in front of three simulators: `sim` healthy, `failing` (503 to every generation), `slow`
    (first token after SLOW_TTFT_MS)."""

    def __init__(self, harness: Harness) -> None:
        served = [CHAT_MODEL, OPEN_MODEL, EMBEDDING_MODEL]
        self.sim = harness.sim("--tokens", str(TOKENS), "--api-key", UPSTREAM_KEY,
                               *[flag for m in served for flag in ("--model", m)])
        self.failing = harness.sim("--fault", "status=503")
        self.slow = harness.sim("--ttft", str(SLOW_TTFT_MS), "--tokens", str(TOKENS))

        def route(name: str, sim: Sim) -> dict[str, Any]:
            return {"name": name, "endpoints": [{"base_url": sim.base, "api_key": UPSTREAM_KEY}]}

        self.gateway = harness.serve({
            "models": [
                *(route(m, self.sim) for m in (*served, RETIRED_MODEL)),
                {"name": DEAD_MODEL, "endpoints": [{"base_url": f"http://127.0.0.1:{closed_port()}/v1"}]},
                route(FAILING_MODEL, self.failing),
                route(SLOW_MODEL, self.slow),
            ],
        })

    @property
    def base(self) -> str:
        """What an app sets as its base_url."""
        return self.gateway.base


class Stopwatch:
    """with Stopwatch() as t: ...; t.s is the wall time the block took, in seconds."""

    def __enter__(self) -> "Stopwatch":
        self.started = time.monotonic()
        self.s = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.monotonic() - self.started


def request_id(error: Any) -> str:
    """The x-ballast-request-id of the answer an SDK's APIStatusError carries."""
    return error.response.headers["x-ballast-request-id"]


def sdk_retries(error: Any) -> int:
    """How often openai-python had retried when it raised `error`: the x-stainless-retry-count of the
    last request it sent (0 when it sent one)."""
    return int(error.response.request.headers["x-stainless-retry-count"])
