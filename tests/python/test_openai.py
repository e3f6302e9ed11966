"""openai-python through ballast, sync (OpenAI) and async (AsyncOpenAI): only base_url changes, and the
app's key is a placeholder, since ballast holds the upstream's."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator

import openai
import pytest

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

HI = [{"role": "user", "content": "hi"}]


def function_tool(name: str, argument: str) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} of a place",
            "parameters": {"type": "object", "properties": {argument: {"type": "string"}}, "required": [argument]},
        },
    }


WEATHER = function_tool("get_weather", "city")
TIME = function_tool("get_time", "zone")


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    # The SDK's defaults but for the timeout (600 s), bounded so that a hang fails the test instead.
    with openai.OpenAI(base_url=stack.base, api_key="sk-app-placeholder", timeout=20) as c:
        yield c


@pytest.fixture
async def aclient(stack: Stack) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=stack.base, api_key="sk-app-placeholder", timeout=20) as c:
        yield c


def test_chat(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=HI)
    r = raw.parse()
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content
    assert r.usage.completion_tokens == TOKENS
    assert raw.headers["x-ballast-model"] == CHAT_MODEL
    assert raw.headers["x-ballast-request-id"]


def test_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL, messages=HI, stream=True, stream_options={"include_usage": True}
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage
    assert finish == "stop"
    assert len(text.split()) == TOKENS
    assert usage.completion_tokens == TOKENS


async def test_async_chat_and_stream_side_by_side(aclient: openai.AsyncOpenAI) -> None:
    async def streamed() -> str:
        stream = await aclient.chat.completions.create(model=CHAT_MODEL, messages=HI, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def plain() -> str:
        r = await aclient.chat.completions.create(model=CHAT_MODEL, messages=HI)
        return r.choices[0].message.content

    answers = await asyncio.gather(*(streamed() if i % 2 else plain() for i in range(6)))
    assert [len(a.split()) for a in answers] == [TOKENS] * 6


def test_tool_calls_pass_through(client: openai.OpenAI) -> None:
    # No tool_choice: the upstream calls the first tool.
    r = client.chat.completions.create(model=CHAT_MODEL, messages=HI, tools=[WEATHER, TIME])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sim"}

    # A named tool_choice is the one called; "none" gets text.
    named = client.chat.completions.create(
        model=CHAT_MODEL, messages=HI, tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    none = client.chat.completions.create(model=CHAT_MODEL, messages=HI, tools=[WEATHER, TIME], tool_choice="none")
    assert none.choices[0].finish_reason == "stop"
    assert not none.choices[0].message.tool_calls

    # The tool's result sent back: the answer is text.
    after = client.chat.completions.create(
        model=CHAT_MODEL,
        tools=[WEATHER, TIME],
        messages=[
            *HI,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert after.choices[0].finish_reason == "stop"
    assert after.choices[0].message.content


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=HI, tools=[WEATHER], stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function and delta.function.name) or ""
            call["arguments"] += (delta.function and delta.function.arguments) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "sim"}


async def test_streamed_tool_call_through_the_sdks_stream_helper(aclient: openai.AsyncOpenAI) -> None:
    async with aclient.chat.completions.stream(model=CHAT_MODEL, messages=HI, tools=[WEATHER, TIME]) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.choices[0].message.tool_calls[0].function.name == "get_weather"
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"city": "sim"}


def test_embeddings(client: openai.OpenAI) -> None:
    # The SDK asks for base64 unless told otherwise, and decodes it.
    for fmt in (openai.omit, "float"):
        e = client.embeddings.create(model=EMBEDDING_MODEL, input=["a", "b", "c"], encoding_format=fmt)
        assert len(e.data) == 3
        vector = e.data[0].embedding
        assert len(vector) == 8
        assert math.isclose(math.hypot(*vector), 1, abs_tol=1e-3)


def test_models_lists_what_ballast_routes(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert CHAT_MODEL in ids and DEAD_MODEL in ids


def test_a_model_ballast_does_not_route_is_its_own_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=UNKNOWN_MODEL, messages=HI)
    e = caught.value
    assert e.status_code == 404
    assert e.code == "unknown_model"
    assert f"model '{UNKNOWN_MODEL}' is not configured" in str(e)


def test_a_model_the_upstream_does_not_know_is_its_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=RETIRED_MODEL, messages=HI)
    e = caught.value
    assert e.code == "model_not_found"
    assert f"The model `{RETIRED_MODEL}` does not exist" in str(e)
    assert e.response.headers["x-ballast-endpoint"]


def test_a_dead_upstream_fails_at_once_named_and_the_sdk_does_not_retry(stack: Stack, client: openai.OpenAI) -> None:
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=DEAD_MODEL, messages=HI)  # the SDK's default max_retries, 2
    e = caught.value
    assert t.s < 1.0
    assert e.status_code == 502
    assert e.code == "connect_refused"
    assert "connect_refused" in str(e), "the exception text names the cause"
    assert "refused (nothing listening)" in str(e)
    assert e.response.headers["x-should-retry"] == "false"
    assert sdk_retries(e) == 0, "the SDK obeyed x-should-retry"
    record = stack.gateway.record(request_id(e))
    assert len(record["attempts"]) == int(e.response.headers["x-ballast-attempts"])
    assert {a["code"] for a in record["attempts"]} == {"connect_refused"}


async def test_a_dead_upstream_async(aclient: openai.AsyncOpenAI) -> None:
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        await aclient.chat.completions.create(model=DEAD_MODEL, messages=HI, stream=True)
    assert t.s < 1.0
    assert caught.value.code == "connect_refused"
    assert "connect_refused" in str(caught.value), "the exception text names the cause"
    assert sdk_retries(caught.value) == 0


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_sdk_retries_do_not_stack_on_ballasts(stack: Stack, client: openai.OpenAI, stream: bool) -> None:
    before = stack.failing.generations()
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=FAILING_MODEL, messages=HI, stream=stream)
    e = caught.value
    assert e.status_code == 503
    attempts = int(e.response.headers["x-ballast-attempts"])
    assert attempts >= 2, "ballast retried the 503"
    assert e.response.headers["x-should-retry"] == "false"
    # The upstream saw ballast's attempts for one client call, not attempts x (max_retries + 1).
    assert stack.failing.generations() - before == attempts
    assert sdk_retries(e) == 0


# openai-python sends its read timeout (x-stainless-read-timeout: 1.5) on every request; ballast answers
# 5% before it runs out (at most 500 ms early), naming the phase that was cut, so the app reads ballast's
# cause instead of the SDK's generic APITimeoutError (which it would raise had ballast been late).
@pytest.mark.parametrize(("stream", "codes"), [(True, {"first_token_timeout"}),
                                                (False, {"first_byte_timeout", "queue_timeout"})],
                         ids=["streamed", "plain"])
def test_a_read_timeout_below_a_slow_first_token_gets_ballasts_cause(stack: Stack, stream: bool, codes: set) -> None:
    with openai.OpenAI(base_url=stack.base, api_key="sk-app", timeout=1.5, max_retries=0) as impatient:
        with pytest.raises(openai.APIStatusError) as caught:
            impatient.chat.completions.create(model=SLOW_MODEL, messages=HI, stream=stream)
    e = caught.value
    assert e.status_code == 504
    assert e.code in codes
    assert e.code in str(e), "the exception text names the cause"
    assert "read timeout of 1500ms" in str(e)
    assert stack.gateway.record(request_id(e))["duration_ms"] < 1500


def test_each_sdk_retry_of_a_read_timeout_is_one_upstream_attempt(stack: Stack) -> None:
    # ballast had no time to retry, so it leaves the retry to the SDK (no x-should-retry): its default
    # 2 retries, each of them cut by ballast and named.
    before = stack.slow.generations()
    with openai.OpenAI(base_url=stack.base, api_key="sk-app", timeout=1.5) as impatient:
        with pytest.raises(openai.APIStatusError) as caught:
            impatient.chat.completions.create(model=SLOW_MODEL, messages=HI, stream=True)
    e = caught.value
    assert e.code == "first_token_timeout"
    assert "x-should-retry" not in e.response.headers
    assert sdk_retries(e) == 2
    assert stack.slow.generations() - before == 3
    assert len(stack.gateway.record(request_id(e))["attempts"]) == 1
