"""AG2 (`ag2`, its 1.x Agent) through ballast: its OpenAIConfig with base_url, as an app sets it.

AG2 1.x has no config_list: that is AG2 Classic (the `autogen` namespace), whose openai extra requires
openai<3, so it cannot share this environment with the current openai SDK; openai2/test_ag2_classic.py
drives it."""

from __future__ import annotations

import openai
import pytest
from ag2 import Agent, observer, tool
from ag2.config import OpenAIConfig
from ag2.events import ModelMessageChunk

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

called: list[str] = []


@tool
async def get_weather(city: str) -> str:
    """The weather in a city."""
    called.append(f"get_weather({city})")
    return f"sunny in {city}"


@tool
async def get_time(zone: str) -> str:
    """The time in a time zone."""
    called.append(f"get_time({zone})")
    return f"noon in {zone}"


def config(stack: Stack, model: str = OPEN_MODEL, **options: object) -> OpenAIConfig:
    return OpenAIConfig(model=model, base_url=stack.base, api_key="sk-app-placeholder", **{"timeout": 20, **options})


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streamed"])
async def test_ask(stack: Stack, streaming: bool) -> None:
    chunks: list[ModelMessageChunk] = []

    @observer(ModelMessageChunk)
    async def on_chunk(event: ModelMessageChunk) -> None:
        chunks.append(event)

    reply = await Agent("assistant", config=config(stack, streaming=streaming), observers=[on_chunk]).ask("hi")
    assert len(reply.body.split()) == TOKENS
    assert reply.response.finish_reason == "stop"
    assert len(chunks) == (TOKENS if streaming else 0)


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streamed"])
async def test_the_agent_runs_the_tool_the_model_calls_and_answers(stack: Stack, streaming: bool) -> None:
    called.clear()
    before = stack.sim.generations()
    agent = Agent("assistant", config=config(stack, streaming=streaming), tools=[get_weather, get_time])
    reply = await agent.ask("What is the weather?")
    assert called == ["get_weather(sim)"]
    assert len(reply.body.split()) == TOKENS
    # Two requests: the one answered with the call, the one carrying its result.
    assert stack.sim.generations() - before == 2


async def test_a_named_tool_choice(stack: Stack) -> None:
    called.clear()
    choice = {"type": "function", "function": {"name": "get_time"}}
    agent = Agent("assistant", config=config(stack, tool_choice=choice), tools=[get_weather, get_time])
    await agent.ask("What time is it?")
    assert called == ["get_time(sim)"]


async def test_unknown_model(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await Agent("assistant", config=config(stack, UNKNOWN_MODEL)).ask("hi")
    assert caught.value.code == "unknown_model"
    assert "is not configured" in str(caught.value)


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streamed"])
async def test_a_dead_upstream_fails_at_once_named(stack: Stack, streaming: bool) -> None:
    agent = Agent("assistant", config=config(stack, DEAD_MODEL, streaming=streaming))  # max_retries: 2
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        await agent.ask("hi")
    e = caught.value
    assert t.s < 1.0
    assert e.code == "connect_refused"
    assert "connect_refused" in str(e), "the exception text names the cause"
    assert "refused (nothing listening)" in str(e)
    assert sdk_retries(e) == 0


async def test_sdk_retries_do_not_stack_on_ballasts(stack: Stack) -> None:
    before = stack.failing.generations()
    with pytest.raises(openai.InternalServerError) as caught:
        await Agent("assistant", config=config(stack, FAILING_MODEL)).ask("hi")
    attempts = int(caught.value.response.headers["x-ballast-attempts"])
    assert attempts >= 2
    assert stack.failing.generations() - before == attempts
    assert sdk_retries(caught.value) == 0


@pytest.mark.parametrize(("streaming", "codes"), [(True, {"first_token_timeout"}),
                                                   (False, {"first_byte_timeout", "queue_timeout"})],
                         ids=["streamed", "plain"])
async def test_a_read_timeout_below_a_slow_first_token_gets_ballasts_cause(
    stack: Stack, streaming: bool, codes: set
) -> None:
    agent = Agent("assistant", config=config(stack, SLOW_MODEL, streaming=streaming, timeout=1.5, max_retries=0))
    with pytest.raises(openai.APIStatusError) as caught:  # not APITimeoutError, the SDK's own
        await agent.ask("hi")
    assert caught.value.code in codes
    assert caught.value.code in str(caught.value), "the exception text names the cause"
    assert stack.gateway.record(request_id(caught.value))["duration_ms"] < 1500
