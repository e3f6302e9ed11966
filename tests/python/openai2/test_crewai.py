"""CrewAI through ballast: its LLM with an "openai/" model and base_url, as an app points it at an
OpenAI-compatible server, and a crew of one agent and one task. conftest.py switches its telemetry and
tracing off and keeps it to 127.0.0.1."""

from __future__ import annotations

import openai
import pytest
from crewai import LLM, Agent, Crew, Task
from crewai.llms.providers.openai.completion import OpenAICompletion

from harness import CHAT_MODEL, DEAD_MODEL, OPEN_MODEL, TOKENS, Stack, Stopwatch, sdk_retries


def llm(stack: Stack, model: str = CHAT_MODEL) -> LLM:
    # The timeout (600 s by default) bounded so that a hang fails the test instead.
    return LLM(model=f"openai/{model}", base_url=stack.base, api_key="sk-app-placeholder", timeout=20)


# An OpenAI name and one that is not: with a base_url, either goes to CrewAI's own OpenAI client (on
# openai-python), never to LiteLLM, which is not installed.
@pytest.mark.parametrize("model", [CHAT_MODEL, OPEN_MODEL])
def test_a_call(stack: Stack, model: str) -> None:
    mark = stack.gateway.log_mark()
    client = llm(stack, model)
    assert isinstance(client, OpenAICompletion)
    answer = client.call("hi")
    assert len(answer.split()) == TOKENS
    [record] = stack.gateway.log_after(mark, 1)
    assert (record["model"], record["status"]) == (model, 200)
    assert record["client_timeout_ms"] == 20000, "the LLM's timeout reached ballast as the SDK's read timeout"


def test_a_crew_of_one_agent_and_one_task(stack: Stack) -> None:
    writer = Agent(role="writer", goal="Answer in one line", backstory="Brief.", llm=llm(stack))
    task = Task(description="Say hello.", expected_output="A greeting.", agent=writer)
    before = stack.sim.generations()
    out = Crew(agents=[writer], tasks=[task]).kickoff()
    # One request; its answer, in no format the agent asked for ("Final Answer: ..."), is the task's output.
    assert stack.sim.generations() - before == 1
    assert len(out.raw.split()) == TOKENS
    assert out.tasks_output[0].raw == out.raw
    assert out.token_usage.successful_requests == 1


def test_a_dead_upstream_fails_at_once_named(stack: Stack) -> None:
    with Stopwatch() as t, pytest.raises(openai.InternalServerError) as caught:
        llm(stack, DEAD_MODEL).call("hi")  # max_retries: 2, the SDK's default
    e = caught.value
    assert t.s < 1.0
    assert e.code == "connect_refused"
    assert "connect_refused: connect to 127.0.0.1:" in str(e), "the exception text names the cause"
    assert sdk_retries(e) == 0, "the SDK obeyed x-should-retry"
