"""AG2 Classic (the `autogen` package, ConversableAgent and friends) through ballast: an llm_config whose
config_list entry sets base_url, as the apps written for it do. It runs on openai-python 2.x, which its
openai extra requires, so it is here rather than beside AG2 1.x in ../test_ag2.py."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from autogen import AssistantAgent, UserProxyAgent, register_function

from harness import CHAT_MODEL, DEAD_MODEL, TOKENS, Stack, Stopwatch, request_id, sdk_retries

HI = [{"role": "user", "content": "hi"}]

called: list[str] = []


def get_weather(city: str) -> str:
    called.append(f"get_weather({city})")
    return f"sunny in {city}"


def get_time(zone: str) -> str:
    called.append(f"get_time({zone})")
    return f"noon in {zone}"


def entry(stack: Stack, model: str = CHAT_MODEL, **options: Any) -> dict[str, Any]:
    """One config_list entry, as an app writes it: ballast's base_url, a placeholder key; the timeout
    (600 s by default) bounded so that a hang fails the test instead."""
    return {"model": model, "base_url": stack.base, "api_key": "sk-app-placeholder", "timeout": 20, **options}


def assistant(*config_list: dict[str, Any]) -> AssistantAgent:
    return AssistantAgent("assistant", llm_config={"config_list": list(config_list)})


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_reply(stack: Stack, stream: bool) -> None:
    mark = stack.gateway.log_mark()
    reply = assistant(entry(stack, stream=stream)).generate_reply(messages=HI)
    assert isinstance(reply, str)
    assert len(reply.split()) == TOKENS
    [record] = stack.gateway.log_after(mark, 1)
    assert record["stream"] is stream
    assert record["client_timeout_ms"] == 20000, "the entry's timeout reached ballast as the SDK's read timeout"


def test_the_executor_runs_the_tool_the_model_calls_and_the_model_answers(stack: Stack) -> None:
    called.clear()
    model = assistant(entry(stack))
    executor = UserProxyAgent("user", human_input_mode="NEVER", code_execution_config=False)
    register_function(get_weather, caller=model, executor=executor, description="The weather in a city.")
    register_function(get_time, caller=model, executor=executor, description="The time in a time zone.")
    before = stack.sim.generations()

    # Turn 1: the question, answered with a call; turn 2: the call's result, answered in words.
    chat = executor.initiate_chat(model, message="What is the weather?", max_turns=2, silent=True)

    assert called == ["get_weather(sim)"]
    asked, call, result, answer = chat.chat_history
    (tool_call,) = call["tool_calls"]
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == {"city": "sim"}
    assert result["role"] == "tool" and result["content"] == "sunny in sim"
    assert len(answer["content"].split()) == TOKENS
    assert stack.sim.generations() - before == 2


def test_a_dead_upstream_fails_at_once_named(stack: Stack) -> None:
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        assistant(entry(stack, DEAD_MODEL)).generate_reply(messages=HI)  # the SDK's default max_retries, 2
    e = caught.value
    assert t.s < 1.0
    assert e.code == "connect_refused"
    assert "connect_refused: connect to 127.0.0.1:" in str(e), "the exception text names the cause"
    assert sdk_retries(e) == 0, "the SDK obeyed x-should-retry"
    # Waiting for its record also keeps it from landing in the next test's part of the log.
    assert {a["code"] for a in stack.gateway.record(request_id(e))["attempts"]} == {"connect_refused"}


def test_the_config_list_moves_on_from_a_dead_upstream(stack: Stack) -> None:
    # What config_list is for: an entry that fails is followed by the next.
    mark = stack.gateway.log_mark()
    reply = assistant(entry(stack, DEAD_MODEL), entry(stack)).generate_reply(messages=HI)
    assert len(reply.split()) == TOKENS
    dead, healthy = stack.gateway.log_after(mark, 2)
    assert (dead["model"], dead["code"]) == (DEAD_MODEL, "connect_refused")
    assert (healthy["model"], healthy["status"]) == (CHAT_MODEL, 200)
