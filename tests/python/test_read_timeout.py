"""openai-python's read timeout (x-stainless-read-timeout, sent on every request) is a deadline on silence:
ballast answers before it runs out, 5% early, with the cause of the phase it cut, so that the SDK raises
ballast's named error and never its own generic APITimeoutError."""

from __future__ import annotations

import http.client
import json
import re
import socketserver
import threading
import time
from collections.abc import Iterator

import openai
import pytest

from harness import Harness, Stopwatch, eventually

HI = [{"role": "user", "content": "hi"}]
READ_TIMEOUT_S = 1.5
ANSWER_BY_S = READ_TIMEOUT_S * 0.95  # met 5% early
# What the SDK itself adds around ballast's answer (sending, parsing, a first call's lazy imports), on a
# busy machine. That the SDK raised ballast's error and not its own APITimeoutError is the proof that
# the answer came in time; the access log's duration is ballast's own, exact measure.
CLIENT_SLACK_S = 0.5


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
    assert ANSWER_BY_S - 0.05 <= t.s < READ_TIMEOUT_S + CLIENT_SLACK_S
    [record] = gateway["gw"].log_after(mark, 1)
    assert record["client_timeout_source"] == "read"
    assert record["client_timeout_ms"] == 1500
    assert ANSWER_BY_S * 1000 <= record["duration_ms"] < READ_TIMEOUT_S * 1000


def test_a_slow_first_token_is_first_token_timeout_before_the_read_timeout(gateway: dict) -> None:
    with client(gateway["gw"].base) as c, Stopwatch() as t:
        with pytest.raises(openai.APIStatusError) as raised:
            for _ in c.chat.completions.create(model="slow", messages=HI, stream=True):
                pass
    assert raised.value.status_code == 504
    assert raised.value.code == "first_token_timeout"
    assert ANSWER_BY_S - 0.05 <= t.s < READ_TIMEOUT_S + CLIENT_SLACK_S


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
    assert ANSWER_BY_S - 0.05 <= t.s < READ_TIMEOUT_S + CLIENT_SLACK_S


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
        assert t.s < READ_TIMEOUT_S + CLIENT_SLACK_S
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


class EvilUpstream:
    """An upstream that begins a stream with one token, then never sends another whole event: `trickle`
    sends the first bytes of one, a byte every 200 ms; `comments` sends SSE keep-alive comments. Neither
    is progress: the client must get ballast's stream_idle_timeout, not wait on forever."""

    TOKEN = 'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'

    def __init__(self) -> None:
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self) -> type:
        token = self.TOKEN

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))
                body = head.split(b"\r\n\r\n", 1)[1]
                while len(body) < length:
                    body += self.request.recv(65536)
                model = json.loads(body)["model"]
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                self.wfile.write(token.encode())
                self.wfile.flush()
                piece = b": ping\n\n" if model == "comments" else None
                partial = b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'
                try:
                    for i in range(100):  # 20 s at the most
                        time.sleep(0.2)
                        self.wfile.write(piece or partial[i : i + 1] or b"x")
                        self.wfile.flush()
                except OSError:
                    return  # ballast gave up on it: as it should

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def evil(harness: Harness) -> Iterator[dict]:
    upstream = EvilUpstream()
    gw = harness.serve({
        "models": [{"name": name, "endpoints": [{"base_url": upstream.base}]} for name in ("trickle", "comments")],
    })
    yield {"gw": gw}
    upstream.stop()


@pytest.mark.parametrize("model", ["trickle", "comments"])
def test_only_whole_events_with_data_are_progress_in_a_begun_stream(evil: dict, model: str) -> None:
    text = ""
    with client(evil["gw"].base) as c, Stopwatch() as t:
        with pytest.raises(openai.APIError) as raised:
            for chunk in c.chat.completions.create(model=model, messages=HI, stream=True):
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
    assert text == "Hi"
    assert raised.value.code == "stream_idle_timeout"
    assert t.s < READ_TIMEOUT_S + CLIENT_SLACK_S


def test_a_sent_deadline_does_not_switch_the_read_timeout_off(gateway: dict) -> None:
    # The README's own advice, x-ballast-timeout for the whole call, beside the SDK's read timeout.
    with openai.OpenAI(base_url=gateway["gw"].base, api_key="unused", timeout=READ_TIMEOUT_S, max_retries=0,
                       default_headers={"x-ballast-timeout": "30"}) as c, Stopwatch() as t:
        with pytest.raises(openai.APIStatusError) as raised:
            c.chat.completions.create(model="slow", messages=HI)
    assert raised.value.code == "first_byte_timeout"
    assert t.s < READ_TIMEOUT_S + CLIENT_SLACK_S


def test_of_repeated_or_joined_read_timeouts_the_shortest_applies(gateway: dict) -> None:
    address = gateway["gw"].address.rsplit(":", 1)
    body = json.dumps({"model": "slow", "messages": HI})
    for values in (["4", "1"], ["4, 1"]):
        conn = http.client.HTTPConnection(address[0], int(address[1]), timeout=10)
        conn.putrequest("POST", "/v1/chat/completions")
        for v in values:
            conn.putheader("x-stainless-read-timeout", v)
        conn.putheader("content-type", "application/json")
        conn.putheader("content-length", str(len(body)))
        conn.endheaders(body.encode())
        with Stopwatch() as t:
            res = conn.getresponse()
            answer = json.loads(res.read())
        conn.close()
        assert answer["error"]["code"] == "first_byte_timeout", values
        assert t.s < 1.0 + CLIENT_SLACK_S, values


def test_an_azure_clients_escaped_deployment_name_is_the_model(harness: Harness) -> None:
    sim = harness.sim()
    name = "meta-llama/Llama 3.1"
    gw = harness.serve({"models": [{"name": name, "endpoints": [{"base_url": sim.base}]}]})
    azure = openai.AzureOpenAI(azure_endpoint=gw.url, api_version="2024-10-21", api_key="unused", max_retries=0)
    raw = azure.chat.completions.with_raw_response.create(model=name, messages=HI)
    assert raw.headers["x-ballast-model"] == name
    assert raw.parse().model == name  # the upstream was asked for the name, not its escaped form
