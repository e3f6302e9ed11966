"""Pattern (b): `asyncio.gather` of every `ainvoke` at once, with no semaphore.

The shape of most async LangChain code: one `ChatOpenAI`, and all the questions awaited together.
Nothing bounds how many calls are in flight. The client timeout is lowered to 10 s, as guides
recommend; retries are the library's default (2).

    python bench/python/gather_ainvoke.py [BASE_URL]

Settings as tally.py says (BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL). Prints one JSON line.
"""

import asyncio

from langchain_openai import ChatOpenAI

from tally import BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL, Run, acall

llm = ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)


async def main():
    questions = [f"Question {i}: summarise Hamlet in three sentences." for i in range(CALLS)]
    return await asyncio.gather(*(acall(llm.ainvoke(q)) for q in questions))  # all at once: no semaphore


with Run("gather_ainvoke") as run:
    run.outcomes = asyncio.run(main())
