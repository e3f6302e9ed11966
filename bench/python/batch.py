"""Pattern (c): `Runnable.batch` of every input, with no `max_concurrency`.

A prompt | model | parser chain run over a list of inputs in one call. Without `max_concurrency`,
LangChain runs the batch on a thread pool of Python's default size, min(32, cores + 4), whatever the
model server can take. The client timeout is lowered to 10 s, as guides recommend; retries are the
library's default (2).

    python bench/python/batch.py [BASE_URL]

BASE_URL defaults to $OPENAI_BASE_URL, then http://127.0.0.1:4000/v1. CALLS (200), CLIENT_TIMEOUT
(10 s) and MODEL (gpt-4o-mini) may be set in the environment. Prints one JSON line.
"""

import collections
import json
import os
import sys
import time

import openai
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

BASE_URL = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:4000/v1")
CALLS = int(os.environ.get("CALLS", "200"))
CLIENT_TIMEOUT = float(os.environ.get("CLIENT_TIMEOUT", "10"))
MODEL = os.environ.get("MODEL", "gpt-4o-mini")

prompt = ChatPromptTemplate.from_messages([("user", "Question {n}: summarise {play} in three sentences.")])
llm = ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key="unused", timeout=CLIENT_TIMEOUT)
chain = prompt | llm | StrOutputParser()

started = time.monotonic()
# return_exceptions only so that one failure does not hide the others' outcomes.
results = chain.batch([{"n": i, "play": "Hamlet"} for i in range(CALLS)], return_exceptions=True)
wall = time.monotonic() - started

counts = collections.Counter(
    "ok" if not isinstance(r, Exception)
    else "client_timeout" if isinstance(r, openai.APITimeoutError)
    else type(r).__name__
    for r in results)
print(json.dumps({
    "pattern": "batch",
    "calls": CALLS,
    "ok": counts.pop("ok", 0),
    "client_timeouts": counts.pop("client_timeout", 0),
    "errors": dict(counts),
    "wall_s": round(wall, 2),
}))
