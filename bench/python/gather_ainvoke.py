"""Pattern (b): `asyncio.gather` of every `ainvoke` at once, with no semaphore.

The shape of most async LangChain code: one `ChatOpenAI`, and all the questions awaited together.
Nothing bounds how many calls are in flight. The client timeout is lowered to 10 s, as guides
recommend; retries are the library's default (2).

    python bench/python/gather_ainvoke.py [BASE_URL]

BASE_URL defaults to $OPENAI_BASE_URL, then http://127.0.0.1:4000/v1. CALLS (200), CLIENT_TIMEOUT
(10 s) and MODEL (gpt-4o-mini) may be set in the environment. Prints one JSON line.
"""

import asyncio
import collections
import json
import os
import sys
import time

import openai
from langchain_openai import ChatOpenAI

BASE_URL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:4000/v1")
CALLS = int(os.environ.get("CALLS", "200"))
CLIENT_TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "10"))
MODEL = os.environ.get("MODEL", "gpt-4o-mini")

llm = ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)


async def ask(question):
    try:
        await llm.ainvoke(question)
        return "ok"
    except openai.APITimeoutError:
        return "client_timeout"
    except Exception as e:  # noqa: BLE001 - every other failure is counted by its class
        return type(e).__name__


async def main():
    questions = [f"Question {i}: summarise Hamlet in three sentences." for i in range(CALLS)]
    return await asyncio.gather(*(ask(q) for q in questions))  # all at once: no semaphore


started = time.monotonic()
outcomes = asyncio.run(main())
wall = time.monotonic() - started

counts = collections.Counter(outcomes)
print(json.dumps({
    "pattern": "gather_ainvoke",
    "calls": CALLS,
    "ok": counts.pop("ok", 0),
    "client_timeouts": counts.pop("client_timeout", 0),
    "errors": dict(counts),
    "wall_s": round(wall, 2),
}))
