"""openai-python's read timeout (x-stainless-read-timeout, sent on every request) is a deadline on silence:
ballast answers before it runs out, 5% early, with the cause of the phase it cut, so that the SDK raises
ballast's named error and never its own generic APITimeoutError."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import openai
import pytest

from harness import Harness, Stopwatch, eventually

HI = [{"role": "user", "content": "hi"}]
READ_TIMEOUT_S = 1.5
ANSWER_BY_S = READ_TIMEOUT_S * 0.95  # met 5% early


@pytest.fixture(scope="module")
def gateway(harness: Harness) -> Iterator[dict]:
    slow = harness.sim("--ttft", "4000", "--tokens", "4")
    stalling = harness.sim("--ttft", "10", "--itl", "10", "--tokens", "8", "--fault", "stall-after=3")
    busy = harness.sim("--capacity", "1", "--ttft", "3000", "--tokens", "2")
    gw = harness.serve({
        "models": [
            {"name": "slow", "endpoints": [{"base_url": slow.base}]},
            {"name": "stalling", "endpoints": [{"base_url": stalling.base}]},
            {"name": "busy", "endpoints": [{"base_url": busy.base, "max_in_flight": 1}]},
        ],
    })
    yield {"gw": gw, "slow": slow, "stalling": stalling, "busy": busy}


def client(base: str) -> openai.OpenAI:
    # timeout=1.5 is what the SDK turns into x-stainless-read-timeout: 1.5; no retries, so that each
    # test sees one answer.
    return openai.OpenAI(base_url=base, api_key="unused", timeout=READ_TIMEOUT_S, max_retries=0)


def test_a_slow_non_streamed_answer_is_first_byte_timeout_before_the_read_timeout(gateway: dict) -> None:
    mark = gateway["gw"].log_mark()
    with client(gateway["gw"].base) as c, Stopwatch() as t:
        with pytest.raises(openai.APIStatusError) as raised:
            c.chat.completions.create(model="slow", messages=HI)
    assert raised.value.status_code == 504
    assert raised.value.code == "first_byte_timeout"
    assert "read timeout of 1500ms" in raised.value.message
    assert ANSWER_BY_S - 0.05 <= t.s < READ_TIMEOUT_S
    [record] = gateway["gw"].log_after(mark, 1)
    assert record["client_timeout_source"] == "read"
    assert record["client_timeout_ms"] == 1500


def test_a_slow_first_token_is_first_token_timeout_before_the_read_timeout(gateway: dict) -> None:
    with client(gateway["gw"].base) as c, Stopwatch() as t:
        with pytest.raises(openai.APIStatusError) as raised:
            for _ in c.chat.completions.create(model="slow", messages=HI, stream=True):
                pass
    assert raised.value.status_code == 504
    assert raised.value.code == "first_token_timeout"
    assert ANSWER_BY_S - 0.05 <= t.s < READ_TIMEOUT_S


def test_a_stalled_stream_ends_with_stream_idle_timeout_before_the_read_timeout(gateway: dict) -> None:
    text = ""
    with client(gateway["gw"].base) as c, Stopwatch() as t:
        with pytest.raises(openai.APIError) as raised:
            for chunk in c.chat.completions.create(model="stalling", messages=HI, stream=True):
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
    # The tokens before the stall arrived; then, a gap of the read timeout is never left.
    assert len(text.split()) == 3
    assert raised.value.code == "stream_idle_timeout"
    assert "went silent" in raised.value.message
    assert ANSWER_BY_S - 0.05 <= t.s < READ_TIMEOUT_S + 0.2


@pytest.mark.parametrize("stream", [False, True])
def test_no_slot_in_time_is_queue_timeout_at_once_with_retry_after(gateway: dict, stream: bool) -> None:
    base = gateway["gw"].base
    # One request holds the only slot for 3 s, longer than the read timeout of the next.
    holder = threading.Thread(
        target=lambda: openai.OpenAI(base_url=base, api_key="unused", timeout=20, max_retries=0)
        .chat.completions.create(model="busy", messages=HI)
    )
    holder.start()
    try:
        eventually(lambda: gateway["busy"].stats()["in_flight"] == 1)
        with client(base) as c, Stopwatch() as t:
            with pytest.raises(openai.APIStatusError) as raised:
                r = c.chat.completions.create(model="busy", messages=HI, stream=stream)
                if stream:
                    for _ in r:
                        pass
        assert raised.value.status_code == 503
        assert raised.value.code == "queue_timeout"
        assert float(raised.value.response.headers["retry-after-ms"]) > 0
        assert t.s < READ_TIMEOUT_S
    finally:
        holder.join(10)


def test_the_sdks_retries_after_a_read_timeout_cut_get_the_same_named_answer(gateway: dict) -> None:
    # The SDK's own default: two retries of a 504. Each is cut before the read timeout; the last answer
    # the app sees is still ballast's, and the upstream saw exactly one request per SDK attempt.
    slow = gateway["slow"]
    before = slow.generations()
    with openai.OpenAI(base_url=gateway["gw"].base, api_key="unused", timeout=1.0) as c:
        with pytest.raises(openai.APIStatusError) as raised:
            c.chat.completions.create(model="slow", messages=HI)
    assert raised.value.code == "first_byte_timeout"
    assert slow.generations() - before == 3
