"""Pattern (e): 8 worker processes, each with its own client and 25 calls in flight.

The shape of an app served by gunicorn with 8 workers of 25 threads: each process builds its own
`OpenAI` client and none knows what the others send. The client timeout is lowered to 10 s, as guides
recommend; retries are the library's default (2).

    python bench/python/worker_processes.py [BASE_URL]

Settings as tally.py says (BASE_URL, CALLS, split evenly over the 8 workers, CLIENT_TIMEOUT,
MODEL). Prints one JSON line.
"""

import collections
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

from openai import OpenAI

from tally import BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL, Run, call

WORKERS = 8


def worker(n):
    """One worker process: its own client, its share of the calls, all of them at once."""
    client = OpenAI(base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)

    def ask(i):
        return call(client.chat.completions.create, model=MODEL,
                    messages=[{"role": "user", "content": f"Worker {n}, question {i}: summarise Hamlet."}])

    share = range(n, CALLS, WORKERS)
    with ThreadPoolExecutor(max_workers=max(1, len(share))) as pool:
        return collections.Counter(pool.map(ask, share))


if __name__ == "__main__":
    with Run("worker_processes") as run, multiprocessing.Pool(WORKERS) as pool:
        run.outcomes = list(sum(pool.map(worker, range(WORKERS)), collections.Counter()).elements())
