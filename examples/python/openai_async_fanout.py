"""openai-python, async: many questions at once through ballast.

The app changes only its base_url. It may fire every call at once: ballast queues what the model server
cannot take yet, and answers within the client's timeout (openai-python tells ballast its timeout on
every request). No semaphore is needed in the app.

    make run                                        # ballast on 127.0.0.1:4000, with the simulated model "sim"
    .venv/bin/python examples/python/openai_async_fanout.py
"""

import asyncio
import os
import time

from openai import AsyncOpenAI

BASE_URL = os.environ.get("BALLAST_BASE_URL", "http://127.0.0.1:4000/v1")

# ballast holds the upstream's real key, so the app's key can be any placeholder.
client = AsyncOpenAI(base_url=BASE_URL, api_key="unused", timeout=30)


async def ask(question):
    # with_raw_response gives the headers too: ballast says which endpoint answered.
    raw = await client.chat.completions.with_raw_response.create(
        model="sim", messages=[{"role": "user", "content": question}])
    return raw.headers.get("x-ballast-endpoint"), raw.parse().choices[0].message.content


async def main():
    questions = [f"Give me fact number {i} about the Moon." for i in range(20)]
    started = time.monotonic()
    answers = await asyncio.gather(*(ask(q) for q in questions))  # all 20 at once
    took = time.monotonic() - started
    endpoints = sorted({endpoint for endpoint, _ in answers})
    print(f"{len(answers)} answers in {took:.1f} s, answered by endpoint(s): {', '.join(endpoints)}")
    print(f"first answer: {answers[0][1][:80]}...")


asyncio.run(main())
