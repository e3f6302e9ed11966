"""Pattern (e): 8 worker processes, each with its own client and 25 calls in flight.

The shape of an app served by gunicorn with 8 workers of 25 threads: each process builds its own
`OpenAI` client and none knows what the others send. The client timeout is lowered to 10 s, as guides
recommend; retries are the library's default (2).

    python bench/python/worker_processes.py [BASE_URL]

BASE_URL defaults to $OPENAI_BASE_URL, then http://127.0.0.1:4000/v1. CALLS (200, split evenly over
the 8 workers), CLIENT_TIMEOUT (10 s) and MODEL (gpt-4o-mini) may be set in the environment. Prints
one JSON line.
"""

import collections
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai
from openai import OpenAI

BASE_URL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:4000/v1")
CALLS = int(os.environ.get("CALLS", "200"))
CLIENT_TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "10"))
MODEL = os.environ.get("MODEL", "gpt-4o-mini")
WORKERS = 8


def worker(n):
    """One worker process: its own client, its share of the calls, all of them at once."""
    client = OpenAI(base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)

    def ask(i):
        try:
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Worker {n}, question {i}: summarise Hamlet."}])
            return "ok"
        except openai.APITimeoutError:
            return "client_timeout"
        except Exception as e:  # noqa: BLE001 - every other failure is counted by its class
            return type(e).__name__

    share = range(n, CALLS, WORKERS)
    with ThreadPoolExecutor(max_workers=max(1, len(share))) as pool:
        return collections.Counter(pool.map(ask, share))


if __name__ == "__main__":
    started = time.monotonic()
    with multiprocessing.Pool(WORKERS) as pool:
        counts = sum(pool.map(worker, range(WORKERS)), collections.Counter())
    wall = time.monotonic() - started
    print(json.dumps({
        "pattern": "worker_processes",
        "calls": CALLS,
        "ok": counts.pop("ok", 0),
        "client_timeouts": counts.pop("client_timeout", 0),
        "errors": dict(counts),
        "wall_s": round(wall, 2),
    }))
