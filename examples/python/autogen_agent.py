"""AutoGen (autogen-agentchat): an AssistantAgent whose model calls go through ballast.

`OpenAIChatCompletionClient` takes ballast's base_url. For a model name AutoGen does not know (here the
simulator's "sim"; also any vLLM or Ollama model), it needs `model_info`: what the model can do.

    make run                                        # ballast on 127.0.0.1:4000, with the simulated model "sim"
    .venv/bin/python examples/python/autogen_agent.py
"""

import asyncio
import os

from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient

BASE_URL = os.environ.get("BALLAST_BASE_URL", "http://127.0.0.1:4000/v1")


async def main():
    model_client = OpenAIChatCompletionClient(
        model="sim",
        base_url=BASE_URL,
        api_key="unused",  # ballast holds the upstream's real key
        model_info={"vision": False, "function_calling": True, "json_output": False,
                    "family": "unknown", "structured_output": False},
    )
    agent = AssistantAgent("travel_planner", model_client=model_client,
                           system_message="You plan short trips. Answer in two sentences.")
    result = await agent.run(task="Plan a day in Lisbon.")
    await model_client.close()

    answer = result.messages[-1]  # the task first, then the agent's reply
    print(f"{answer.source}: {answer.content}")
    print(f"tokens: {answer.models_usage.prompt_tokens} in, {answer.models_usage.completion_tokens} out")


asyncio.run(main())
