"""What the pattern scripts share: their settings, and how each counts and reports its calls' outcomes.
The patterns themselves (the code teams write) stay in their own files.

BASE_URL is the first argument, else $OPENAI_BASE_URL, else http://127.0.0.1:4000/v1. CALLS (200),
CLIENT_TIMEOUT (10 s) and MODEL (gpt-4o-mini) may be set in the environment.
"""

import collections
import json
import os
import sys
import time

import openai

BASE_URL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:4000/v1")
CALLS = int(os.environ.get("CALLS", "200"))
CLIENT_TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "10"))
MODEL = os.environ.get("MODEL", "gpt-4o-mini")


def outcome(error=None):
    """"ok", "client_timeout" (the library's own timeout fired) or the failure's class name."""
    if error is None:
        return "ok"
    if isinstance(error, openai.APITimeoutError):
        return "client_timeout"
    return type(error).__name__


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs)'s outcome: every failure is counted by its class, none ends the run."""
    try:
        fn(*args, **kwargs)
        return outcome()
    except Exception as e:  # noqa: BLE001
        return outcome(e)


async def acall(coroutine):
    try:
        await coroutine
        return outcome()
    except Exception as e:  # noqa: BLE001
        return outcome(e)


class Run:
    """with Run("pattern") as run: run.outcomes = [...] — prints one JSON line when the block ends."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.outcomes = []

    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            return
        counts = collections.Counter(self.outcomes)
        print(json.dumps({
            "pattern": self.pattern,
            "calls": CALLS,
            "ok": counts.pop("ok", 0),
            "client_timeouts": counts.pop("client_timeout", 0),
            "errors": dict(counts),
            "wall_s": round(time.monotonic() - self.started, 2),
        }))
