"""AG2: an agent whose model configuration points at ballast.

AG2's model configuration takes the OpenAI client's own settings: base_url and api_key are all that
change. (Before AG2 1.0 the same two keys went into an entry of `config_list`:
`LLMConfig(config_list=[{"model": "sim", "base_url": BASE_URL, "api_key": "unused"}])`.)

    make run                                        # ballast on 127.0.0.1:4000, with the simulated model "sim"
    .venv/bin/python examples/python/ag2_agent.py
"""

import asyncio
import os

from ag2 import Agent
from ag2.config import OpenAIConfig

BASE_URL = os.environ.get("BALLAST_BASE_URL", "http://127.0.0.1:4000/v1")

# ballast holds the upstream's real key, so the app's key can be any placeholder.
config = OpenAIConfig(model="sim", base_url=BASE_URL, api_key="unused", timeout=30)


async def main():
    agent = Agent("librarian", "You recommend one book, in one sentence.", config=config)
    reply = await agent.ask("A novel for a long train journey?")
    usage = await reply.usage()
    print(f"librarian: {reply.body}")
    print(f"tokens: {usage.total.prompt_tokens} in, {usage.total.completion_tokens} out")


asyncio.run(main())
