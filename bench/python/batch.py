"""Pattern (c): `Runnable.batch` of every input, with no `max_concurrency`.

A prompt | model | parser chain run over a list of inputs in one call. Without `max_concurrency`,
LangChain runs the batch on a thread pool of Python's default size, min(32, cores + 4), whatever the
model server can take. The client timeout is lowered to 10 s, as guides recommend; retries are the
library's default (2).

    python bench/python/batch.py [BASE_URL]

Settings as tally.py says (BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL). Prints one JSON line.
"""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from tally import BASE_URL, CALLS, CLIENT_TIMEOUT, MODEL, Run, outcome

prompt = ChatPromptTemplate.from_messages([("user", "Question {n}: summarise {play} in three sentences.")])
llm = ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)
chain = prompt | llm | StrOutputParser()

with Run("batch") as run:
    # return_exceptions only so that one failure does not hide the others' outcomes.
    results = chain.batch([{"n": i, "play": "Hamlet"} for i in range(CALLS)], return_exceptions=True)
    run.outcomes = [outcome(r if isinstance(r, Exception) else None) for r in results]
