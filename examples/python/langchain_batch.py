"""LangChain: a prompt | model | parser chain run over several inputs with `batch`.

`ChatOpenAI` only needs ballast's base_url. The batch can be as large as the app likes: ballast queues
the calls the model server cannot take yet, instead of letting them time out at the client.

    make run                                        # ballast on 127.0.0.1:4000, with the simulated model "sim"
    .venv/bin/python examples/python/langchain_batch.py
"""

import os

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

BASE_URL = os.environ.get("BALLAST_BASE_URL", "http://127.0.0.1:4000/v1")

prompt = ChatPromptTemplate.from_messages([
    ("system", "You explain things to a ten-year-old in one sentence."),
    ("user", "What is {topic}?"),
])
# ballast holds the upstream's real key, so the app's key can be any placeholder.
llm = ChatOpenAI(model="sim", base_url=BASE_URL, api_key="unused", timeout=30)
chain = prompt | llm | StrOutputParser()

topics = ["a volcano", "a rainbow", "gravity", "a black hole", "photosynthesis"]
answers = chain.batch([{"topic": t} for t in topics])  # one call per topic, run concurrently

for topic, answer in zip(topics, answers):
    print(f"{topic}: {answer[:60]}...")
print(f"{len(answers)} answers")
