"""AutoGen (autogen-ext's OpenAIChatCompletionClient, autogen-agentchat's AssistantAgent) through ballast,
for a model whose name is not OpenAI's, so AutoGen is told what it can do (model_info)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import TextMessage, ToolCallExecutionEvent, ToolCallRequestEvent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, ModelFamily, ModelInfo, UserMessage
from autogen_core.tools import FunctionTool
from autogen_ext.models.openai import OpenAIChatCompletionClient

from harness import (
    DEAD_MODEL,
    FAILING_MODEL,
    OPEN_MODEL,
    SLOW_MODEL,
    TOKENS,
    UNKNOWN_MODEL,
    Stack,
    Stopwatch,
    request_id,
    sdk_retries,
)

MODEL_INFO = ModelInfo(
    vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN, structured_output=False
)
HI = [UserMessage(content="hi", source="user")]


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def get_time(zone: str) -> str:
    """The time in a time zone."""
    return f"noon in {zone}"


WEATHER = FunctionTool(get_weather, description="The weather in a city.")
TIME = FunctionTool(get_time, description="The time in a time zone.")


def client(stack: Stack, model: str = OPEN_MODEL, **options: object) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(
        model=model, base_url=stack.base, api_key="sk-app-placeholder", model_info=MODEL_INFO,
        **{"timeout": 20, **options},
    )


@pytest.fixture
async def llm(stack: Stack) -> AsyncIterator[OpenAIChatCompletionClient]:
    c = client(stack)
    yield c
    await c.close()


async def test_create(llm: OpenAIChatCompletionClient) -> None:
    r = await llm.create(HI)
    assert r.finish_reason == "stop"
    assert len(r.content.split()) == TOKENS
    assert r.usage.completion_tokens == TOKENS


async def test_create_stream(llm: OpenAIChatCompletionClient) -> None:
    pieces = [p async for p in llm.create_stream(HI, include_usage=True)]
    *tokens, result = pieces
    assert isinstance(result, CreateResult)
    assert result.finish_reason == "stop"
    assert len([t for t in tokens if t]) == TOKENS
    assert result.usage.completion_tokens == TOKENS


@pytest.mark.parametrize("stream", [False, True], ids=["create", "create_stream"])
async def test_tool_calls_pass_through(llm: OpenAIChatCompletionClient, stream: bool) -> None:
    async def ask(**options: object) -> CreateResult:
        if not stream:
            return await llm.create(HI, tools=[WEATHER, TIME], **options)
        return [p async for p in llm.create_stream(HI, tools=[WEATHER, TIME], **options)][-1]

    first = await ask()
    assert first.finish_reason == "function_calls"
    (call,) = first.content
    assert isinstance(call, FunctionCall)
    assert call.id and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "sim"}
    named = await ask(tool_choice=TIME)
    assert [c.name for c in named.content] == ["get_time"]


async def test_assistant_agent_runs_the_tool_and_answers(llm: OpenAIChatCompletionClient) -> None:
    agent = AssistantAgent("assistant", model_client=llm, tools=[get_weather], reflect_on_tool_use=True)
    result = await agent.run(task="What is the weather?")
    kinds = [type(m) for m in result.messages]
    assert kinds == [TextMessage, ToolCallRequestEvent, ToolCallExecutionEvent, TextMessage]
    assert result.messages[2].content[0].content == "sunny in sim"
    assert len(result.messages[-1].content.split()) == TOKENS


async def test_assistant_agent_streams(llm: OpenAIChatCompletionClient) -> None:
    agent = AssistantAgent("assistant", model_client=llm, model_client_stream=True)
    items = [item async for item in agent.run_stream(task="hi")]
    chunks = [i for i in items if type(i).__name__ == "ModelClientStreamingChunkEvent"]
    assert len(chunks) == TOKENS
    assert len(items[-1].messages[-1].content.split()) == TOKENS


async def test_unknown_model(stack: Stack) -> None:
    c = client(stack, UNKNOWN_MODEL)
    with pytest.raises(openai.NotFoundError) as caught:
        await c.create(HI)
    assert caught.value.code == "unknown_model"
    assert "is not configured" in str(caught.value)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "create_stream"])
async def test_a_dead_upstream_fails_at_once_named(stack: Stack, stream: bool) -> None:
    c = client(stack, DEAD_MODEL)  # the SDK's default max_retries, 2
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        if stream:
            [p async for p in c.create_stream(HI)]
        else:
            await c.create(HI)
    e = caught.value
    assert t.s < 1.0
    assert e.code == "connect_refused"
    assert "connect_refused" in str(e), "the exception text names the cause"
    assert "refused (nothing listening)" in str(e)
    assert sdk_retries(e) == 0


async def test_the_agent_surfaces_a_dead_upstream(stack: Stack) -> None:
    agent = AssistantAgent("assistant", model_client=client(stack, DEAD_MODEL))
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        await agent.run(task="hi")
    assert t.s < 1.0
    assert caught.value.code == "connect_refused"
    assert "connect_refused" in str(caught.value), "the exception text names the cause"


async def test_sdk_retries_do_not_stack_on_ballasts(stack: Stack) -> None:
    before = stack.failing.generations()
    with pytest.raises(openai.InternalServerError) as caught:
        await client(stack, FAILING_MODEL).create(HI)
    attempts = int(caught.value.response.headers["x-ballast-attempts"])
    assert attempts >= 2
    assert stack.failing.generations() - before == attempts
    assert sdk_retries(caught.value) == 0


@pytest.mark.parametrize(("stream", "codes"), [(True, {"first_token_timeout"}),
                                                (False, {"first_byte_timeout", "queue_timeout"})],
                         ids=["create_stream", "create"])
async def test_a_read_timeout_below_a_slow_first_token_gets_ballasts_cause(
    stack: Stack, stream: bool, codes: set
) -> None:
    c = client(stack, SLOW_MODEL, timeout=1.5, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:  # not APITimeoutError, the SDK's own
        if stream:
            [p async for p in c.create_stream(HI)]
        else:
            await c.create(HI)
    assert caught.value.code in codes
    assert caught.value.code in str(caught.value), "the exception text names the cause"
    assert stack.gateway.record(request_id(caught.value))["duration_ms"] < 1500
