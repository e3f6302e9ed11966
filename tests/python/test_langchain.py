"""LangChain (langchain-openai's ChatOpenAI and OpenAIEmbeddings) through ballast: only base_url changes."""

from __future__ import annotations

import math

import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from harness import (
    CHAT_MODEL,
    DEAD_MODEL,
    EMBEDDING_MODEL,
    FAILING_MODEL,
    RETIRED_MODEL,
    SLOW_MODEL,
    TOKENS,
    UNKNOWN_MODEL,
    Stack,
    Stopwatch,
    request_id,
    sdk_retries,
)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@tool
def get_time(zone: str) -> str:
    """The time in a time zone."""
    return f"noon in {zone}"


def chat(stack: Stack, model: str = CHAT_MODEL, **options: object) -> ChatOpenAI:
    # ChatOpenAI's own default is no timeout at all; a test bounds it so that a hang fails.
    return ChatOpenAI(model=model, base_url=stack.base, api_key="sk-app-placeholder", **{"timeout": 20, **options})


def test_invoke(stack: Stack) -> None:
    m = chat(stack).invoke("hi")
    assert len(m.content.split()) == TOKENS
    assert m.response_metadata["finish_reason"] == "stop"
    assert m.usage_metadata["output_tokens"] == TOKENS


def test_stream(stack: Stack) -> None:
    # With a base_url of its own, ChatOpenAI asks for no usage in a stream unless stream_usage=True.
    chunks = list(chat(stack, stream_usage=True).stream("hi"))
    assert sum(1 for c in chunks if c.content) == TOKENS
    whole = sum(chunks[1:], chunks[0])
    assert whole.response_metadata["finish_reason"] == "stop"
    assert whole.usage_metadata["output_tokens"] == TOKENS


async def test_async_batch(stack: Stack) -> None:
    answers = await chat(stack).abatch(["a", "b", "c", "d"], config={"max_concurrency": 2})
    assert [len(a.content.split()) for a in answers] == [TOKENS] * 4


def test_tool_calls_pass_through(stack: Stack) -> None:
    llm = chat(stack).bind_tools([get_weather, get_time])
    m = llm.invoke("weather?")
    assert m.response_metadata["finish_reason"] == "tool_calls"
    assert [(c["name"], c["args"]) for c in m.tool_calls] == [("get_weather", {"city": "sim"})]

    named = chat(stack).bind_tools([get_weather, get_time], tool_choice="get_time").invoke("time?")
    assert [c["name"] for c in named.tool_calls] == ["get_time"]

    # The tool's result sent back: the answer is text.
    result = get_weather.invoke(m.tool_calls[0])
    assert isinstance(result, ToolMessage)
    after = llm.invoke([HumanMessage("weather?"), m, result])
    assert not after.tool_calls
    assert len(after.content.split()) == TOKENS


def test_streamed_tool_call(stack: Stack) -> None:
    whole: AIMessageChunk | None = None
    for chunk in chat(stack).bind_tools([get_weather]).stream("weather?"):
        whole = chunk if whole is None else whole + chunk
    assert whole.response_metadata["finish_reason"] == "tool_calls"
    assert [(c["name"], c["args"]) for c in whole.tool_calls] == [("get_weather", {"city": "sim"})]
    assert whole.tool_calls[0]["id"]


def test_embeddings(stack: Stack) -> None:
    # check_embedding_ctx_length=False, as for any server that is not OpenAI's: by default LangChain
    # counts tokens with tiktoken first (whose encodings are downloaded on first use) and sends token ids.
    emb = OpenAIEmbeddings(
        model=EMBEDDING_MODEL, base_url=stack.base, api_key="sk-app", check_embedding_ctx_length=False
    )
    vectors = emb.embed_documents(["one", "two"])
    assert [len(v) for v in vectors] == [8, 8]
    assert math.isclose(math.hypot(*vectors[0]), 1, abs_tol=1e-3)
    assert emb.embed_query("one") == vectors[0]


def test_unknown_models(stack: Stack) -> None:
    # langchain-openai re-raises the SDK's errors as its own subclasses of them, body and code kept.
    with pytest.raises(openai.NotFoundError) as caught:
        chat(stack, UNKNOWN_MODEL).invoke("hi")
    assert caught.value.code == "unknown_model"
    assert "is not configured" in str(caught.value)
    with pytest.raises(openai.NotFoundError) as caught:
        chat(stack, RETIRED_MODEL).invoke("hi")
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_a_dead_upstream_fails_at_once_named(stack: Stack, stream: bool) -> None:
    llm = chat(stack, DEAD_MODEL)  # the SDK's default max_retries, 2
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        if stream:
            list(llm.stream("hi"))
        else:
            llm.invoke("hi")
    e = caught.value
    assert t.s < 1.0
    assert e.code == "connect_refused"
    assert "connect_refused" in str(e), "the exception text names the cause"
    assert "refused (nothing listening)" in str(e)
    assert sdk_retries(e) == 0


def test_sdk_retries_do_not_stack_on_ballasts(stack: Stack) -> None:
    before = stack.failing.generations()
    with pytest.raises(openai.InternalServerError) as caught:
        chat(stack, FAILING_MODEL).invoke("hi")
    attempts = int(caught.value.response.headers["x-ballast-attempts"])
    assert attempts >= 2
    assert stack.failing.generations() - before == attempts
    assert sdk_retries(caught.value) == 0


@pytest.mark.parametrize(("stream", "codes"), [(True, {"first_token_timeout"}),
                                                (False, {"first_byte_timeout", "queue_timeout"})],
                         ids=["stream", "invoke"])
def test_a_read_timeout_below_a_slow_first_token_gets_ballasts_cause(stack: Stack, stream: bool, codes: set) -> None:
    # ChatOpenAI sends x-stainless-read-timeout only when given a timeout: its default is none at all.
    llm = chat(stack, SLOW_MODEL, timeout=1.5, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:  # not APITimeoutError, the SDK's own
        if stream:
            list(llm.stream("hi"))
        else:
            llm.invoke("hi")
    assert caught.value.code in codes
    assert caught.value.code in str(caught.value), "the exception text names the cause"
    assert stack.gateway.record(request_id(caught.value))["duration_ms"] < 1500
