"""Pattern (d): AutoGen agent runs on a `ThreadPoolExecutor(max_workers=32)`.

Each task builds an `AssistantAgent` on an `OpenAIChatCompletionClient` (with `model_info`, as for
any model AutoGen does not know) and runs it to its answer in its own event loop, 32 tasks at a time.
The client timeout is lowered to 10 s, as guides recommend; retries are the library's default (2).

    python bench/python/autogen_threads.py [BASE_URL]

BASE_URL defaults to $OPENAI_BASE_URL, then http://127.0.0.1:4000/v1. CALLS (200), CLIENT_TIMEOUT
(10 s) and MODEL (gpt-4o-mini) may be set in the environment. Prints one JSON line.
"""

import asyncio
import collections
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai
from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient

BASE_URL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:4000/v1")
CALLS = int(os.environ.get("CALLS", "200"))
CLIENT_TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "10"))
MODEL = os.environ.get("MODEL", "gpt-4o-mini")

MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False,
              "family": "unknown", "structured_output": False}


async def run_agent(task):
    model_client = OpenAIChatCompletionClient(model=MODEL, base_url=BASE_URL, api_key="unused",
                                              timeout=CLIENT_TIMEOUT, model_info=MODEL_INFO)
    agent = AssistantAgent("summariser", model_client=model_client,
                           system_message="Answer in three sentences.")
    try:
        await agent.run(task=task)
    finally:
        await model_client.close()


def task(i):
    try:
        asyncio.run(run_agent(f"Question {i}: summarise Hamlet."))
        return "ok"
    except openai.APITimeoutError:
        return "client_timeout"
    except Exception as e:  # noqa: BLE001 - every other failure is counted by its class
        return type(e).__name__


started = time.monotonic()
with ThreadPoolExecutor(max_workers=32) as pool:
    outcomes = list(pool.map(task, range(CALLS)))
wall = time.monotonic() - started

counts = collections.Counter(outcomes)
print(json.dumps({
    "pattern": "autogen_threads",
    "calls": CALLS,
    "ok": counts.pop("ok", 0),
    "client_timeouts": counts.pop("client_timeout", 0),
    "errors": dict(counts),
    "wall_s": round(wall, 2),
}))
