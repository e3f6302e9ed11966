"""Pattern (a): a new client per call, each call on its own thread.

What many apps do: a function builds an `OpenAI` client every time it is called, and the app fans its
questions out over threads. Every client has its own connection pool, so no connection is reused,
and nothing bounds how many calls are in flight. The client timeout is lowered to 10 s, as guides
recommend; retries are the library's default (2).

    python bench/python/client_per_call.py [BASE_URL]

BASE_URL defaults to $OPENAI_BASE_URL, then http://127.0.0.1:4000/v1. CALLS (200), CLIENT_TIMEOUT
(10 s) and MODEL (gpt-4o-mini) may be set in the environment. Prints one JSON line.
"""

import collections
import json
import os
import sys
import threading
import time

import openai
from openai import OpenAI

BASE_URL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:4000/v1")
CALLS = int(os.environ.get("CALLS", "200"))
CLIENT_TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "10"))
MODEL = os.environ.get("MODEL", "gpt-4o-mini")

outcomes = []  # one entry per call: "ok", "client_timeout" or the exception's class name


def ask(question):
    client = OpenAI(base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)  # a new client per call
    try:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}])
        outcomes.append("ok")
    except openai.APITimeoutError:
        outcomes.append("client_timeout")
    except Exception as e:  # noqa: BLE001 - every other failure is counted by its class
        outcomes.append(type(e).__name__)


started = time.monotonic()
threads = [threading.Thread(target=ask, args=(f"Question {i}: summarise Hamlet in three sentences.",))
           for i in range(CALLS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.monotonic() - started

counts = collections.Counter(outcomes)
print(json.dumps({
    "pattern": "client_per_call",
    "calls": CALLS,
    "ok": counts.pop("ok", 0),
    "client_timeouts": counts.pop("client_timeout", 0),
    "errors": dict(counts),
    "wall_s": round(wall, 2),
}))
