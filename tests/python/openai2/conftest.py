"""Fixtures of the tests of the clients on openai-python 2.x (run in .venv-openai2): ../conftest.py's, on
the same ../harness.py, and a guard that fails the run if any client here reaches past the loopback."""

from __future__ import annotations

import atexit
import importlib.util
import ipaddress
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PYTHON_TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PYTHON_TESTS))

# ../conftest.py's fixtures (harness, stack) and its check that ballast is built. pytest already knows this
# file by the module name "conftest", so that one is loaded under a name of its own.
_spec = importlib.util.spec_from_file_location("python_conftest", PYTHON_TESTS / "conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
pytest_configure, harness, stack = _shared.pytest_configure, _shared.harness, _shared.stack

# CrewAI, read when it is imported: no telemetry (an OpenTelemetry exporter to CrewAI's collector, off with
# either of the first two), no tracing of runs to CrewAI's service, and a HOME of its own, since it writes
# settings, a key and a task database under ~/.config and ~/.local/share.
os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["OTEL_SDK_DISABLED"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
_home = tempfile.TemporaryDirectory(prefix="crewai-home-")  # removed when the run ends
os.environ["HOME"] = _home.name

# Every connection and name lookup this process makes, the clients' and their telemetry's, is checked: one
# for anything but the loopback is refused, and fails the run, whether it comes during the tests or when
# the process exits (CrewAI flushes its telemetry then).
_reached_out: list[str] = []


def _is_loopback(host: object) -> bool:
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host)).is_loopback
    except ValueError:
        return False


def _loopback_only(event: str, args: tuple) -> None:
    if event == "socket.connect" and isinstance(args[1], tuple):  # (host, port, ...); a Unix socket is a path
        host = args[1][0]
    elif event == "socket.getaddrinfo":  # (host, port, family, type, proto)
        host = args[0]
    else:
        return
    if not _is_loopback(host):
        _reached_out.append(f"{event} {host!r}")
        raise ConnectionRefusedError(f"the tests reach 127.0.0.1 only, not {host!r}")


def _fail_if_reached_out() -> None:
    # Registered before any client is imported, so it runs after the exit handlers they register.
    if _reached_out:
        print(f"error: a client tried to reach past the loopback: {sorted(set(_reached_out))}", file=sys.stderr)
        sys.stderr.flush()
        _home.cleanup()  # os._exit skips it
        os._exit(1)


sys.addaudithook(_loopback_only)
atexit.register(_fail_if_reached_out)


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> Iterator[None]:
    yield
    assert not _reached_out, f"a client tried to reach past the loopback: {sorted(set(_reached_out))}"
