"""Pattern (a): a new client per call, each call on its own thread.

What many apps do: a function builds an `OpenAI` client every time it is called, and the app fans its
questions out over threads. Every client has its own connection pool, so no connection is reused,
and nothing bounds how many calls are in flight. The client timeout is lowered to 10 s, as guides
recommend; retries are the library's default (2).

    python bench/python/client_per_call.py [BASE_URL]

Settings as tally.py says (BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL). Prints one JSON line.
"""

import threading

from openai import OpenAI

from tally import BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL, Run, call


def ask(question):
    client = OpenAI(base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)  # a new client per call
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}])


with Run("client_per_call") as run:
    threads = [threading.Thread(target=lambda i=i: run.outcomes.append(
        call(ask, f"Question {i}: summarise Hamlet in three sentences."))) for i in range(CALLS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
