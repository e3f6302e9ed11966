"""openai-python 2.x through ballast: the line many apps still run, beside 3.x in ../test_openai.py.

What differs is the exception text: 2.x prints the whole error body ("Error code: 502 - {'error':
{'message': ..., 'code': 'connect_refused', ...}}"), where 3.x prints its message alone. Both send the
headers ballast reads (x-stainless-read-timeout, x-stainless-retry-count) and obey x-should-retry."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from harness import (
    CHAT_MODEL,
    DEAD_MODEL,
    FAILING_MODEL,
    SLOW_MODEL,
    TOKENS,
    UNKNOWN_MODEL,
    Stack,
    Stopwatch,
    request_id,
    sdk_retries,
)

HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def exception_text(e: openai.APIStatusError) -> str:
    """What openai-python 2.x makes str(e) of an error answer: its status and the whole body, as a dict."""
    return f"Error code: {e.status_code} - {e.response.json()}"


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    # The SDK's defaults but for the timeout (600 s), bounded so that a hang fails the test instead.
    with openai.OpenAI(base_url=stack.base, api_key="sk-app-placeholder", timeout=20) as c:
        yield c


def test_it_is_the_2x_line() -> None:
    assert openai.__version__.startswith("2.")


def test_chat(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=CHAT_MODEL, messages=HI)
    r = raw.parse()
    assert r.choices[0].finish_reason == "stop"
    assert len(r.choices[0].message.content.split()) == TOKENS
    assert r.usage.completion_tokens == TOKENS
    assert raw.headers["x-ballast-model"] == CHAT_MODEL
    # What ballast bounds the request by: the SDK's read timeout, sent with every request.
    assert raw.http_request.headers["x-stainless-read-timeout"] == "20"
    assert raw.http_request.headers["x-stainless-retry-count"] == "0"


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


def test_a_tool_call_passes_through_and_its_result_gets_words(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=CHAT_MODEL, messages=HI, tools=[WEATHER])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sim"}

    after = client.chat.completions.create(
        model=CHAT_MODEL,
        tools=[WEATHER],
        messages=[
            *HI,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert after.choices[0].finish_reason == "stop"
    assert len(after.choices[0].message.content.split()) == TOKENS


def test_a_model_ballast_does_not_route_is_its_own_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=UNKNOWN_MODEL, messages=HI)
    e = caught.value
    assert e.status_code == 404
    assert e.code == "unknown_model"
    assert e.message == str(e) == exception_text(e)
    assert "'code': 'unknown_model'" in str(e)
    assert f"unknown_model: model '{UNKNOWN_MODEL}' is not configured" in str(e)


def test_a_dead_upstream_fails_at_once_named_and_the_sdk_does_not_retry(stack: Stack, client: openai.OpenAI) -> None:
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=DEAD_MODEL, messages=HI)  # the SDK's default max_retries, 2
    e = caught.value
    assert t.s < 1.0
    assert e.status_code == 502
    assert e.code == "connect_refused"
    assert str(e) == exception_text(e)
    assert "connect_refused: connect to 127.0.0.1:" in str(e)
    assert "refused (nothing listening)" in str(e)
    assert e.response.headers["x-should-retry"] == "false"
    assert sdk_retries(e) == 0, "the SDK obeyed x-should-retry"
    record = stack.gateway.record(request_id(e))
    assert {a["code"] for a in record["attempts"]} == {"connect_refused"}


async def test_a_dead_upstream_async(stack: Stack) -> None:
    async with openai.AsyncOpenAI(base_url=stack.base, api_key="sk-app-placeholder", timeout=20) as aclient:
        with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
            await aclient.chat.completions.create(model=DEAD_MODEL, messages=HI, stream=True)
    assert t.s < 1.0
    assert caught.value.code == "connect_refused"
    assert "connect_refused" in str(caught.value)
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


# ballast answers 5% before the read timeout the SDK sends (x-stainless-read-timeout: 1.5) runs out, naming
# the phase it cut, so the app reads ballast's cause instead of the SDK's own APITimeoutError.
@pytest.mark.parametrize(("stream", "codes"), [(True, {"first_token_timeout"}),
                                                (False, {"first_byte_timeout", "queue_timeout"})],
                         ids=["streamed", "plain"])
def test_a_read_timeout_below_a_slow_first_token_gets_ballasts_cause(stack: Stack, stream: bool, codes: set) -> None:
    with openai.OpenAI(base_url=stack.base, api_key="sk-app", timeout=1.5, max_retries=0) as impatient:
        with Stopwatch() as t, pytest.raises(openai.APIStatusError) as caught:
            impatient.chat.completions.create(model=SLOW_MODEL, messages=HI, stream=stream)
    e = caught.value
    assert t.s < 1.5, "raised before the client's own timeout"
    assert e.status_code == 504
    assert e.code in codes
    assert str(e) == exception_text(e)
    assert f"'code': '{e.code}'" in str(e)
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
