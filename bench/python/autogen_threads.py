"""Pattern (d): AutoGen agent runs on a `ThreadPoolExecutor(max_workers=32)`.

Each task builds an `AssistantAgent` on an `OpenAIChatCompletionClient` (with `model_info`, as for
any model AutoGen does not know) and runs it to its answer in its own event loop, 32 tasks at a time.
The client timeout is lowered to 10 s, as guides recommend; retries are the library's default (2).

    python bench/python/autogen_threads.py [BASE_URL]

Settings as tally.py says (BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL). Prints one JSON line.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient

from tally import BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL, Run, call

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
    return call(asyncio.run, run_agent(f"Question {i}: summarise Hamlet."))


with Run("autogen_threads") as run, ThreadPoolExecutor(max_workers=32) as pool:
    run.outcomes = list(pool.map(task, range(CALLS)))
