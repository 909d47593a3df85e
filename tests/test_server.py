"""``causette serve``: the OpenAI-compatible API against a live uvicorn server on a tiny checkpoint,
driven with the official ``openai`` client (streaming and not) and raw HTTP for the errors."""

from __future__ import annotations

import argparse
import concurrent.futures
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from helpers import REPO as ROOT  # noqa: E402
from server_helpers import make_checkpoints  # noqa: E402

from causette.checkpoint.load import load_checkpoint  # noqa: E402
from causette.data.chat_template import render_chat  # noqa: E402
from causette.inference.engine import Engine  # noqa: E402
from causette.inference.sampling import SamplingParams  # noqa: E402
from causette.inference.server import Limits, ServerThread, create_app  # noqa: E402


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return make_checkpoints(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def loaded(checkpoints):
    return load_checkpoint(checkpoints["sft"], device="cpu")


@pytest.fixture(scope="module")
def server(loaded):
    limits = Limits(max_body_bytes=20_000, max_messages=8, max_queue=64)
    with ServerThread(create_app(loaded, limits=limits)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def post(server, path: str, body=None, content: bytes | None = None, timeout: float = 60, **kw) -> httpx.Response:
    return httpx.post(server.url + path, json=body, content=content, timeout=timeout, **kw)


def assert_error(r: httpx.Response, status: int, fragment: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert {"message", "type", "param", "code"} <= set(err)
    assert fragment in err["message"], err["message"]
    return err


# ------------------------------------------------------------------ the openai client


def test_chat_completion_with_openai_client(client):
    messages = [{"role": "system", "content": "Tu es bref."}, {"role": "user", "content": "Bonjour !"}]
    r = client.chat.completions.create(model="causette", messages=messages, max_tokens=8, temperature=0,
                                       seed=1)
    assert r.object == "chat.completion" and r.model == "causette" and r.id.startswith("chatcmpl-")
    [choice] = r.choices
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    again = client.chat.completions.create(model="causette", messages=messages, max_tokens=8, temperature=0)
    assert again.choices[0].message.content == choice.message.content  # greedy: the same reply


def test_chat_streaming_with_openai_client(client):
    kwargs = dict(model="causette", messages=[{"role": "user", "content": "Raconte une histoire."}],
                  max_tokens=12, temperature=0.8, seed=3)
    stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals in (["stop"], ["length"])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2  # streamed, piece by piece
    whole = client.chat.completions.create(**kwargs)
    assert whole.choices[0].message.content == text  # same seed: streaming changes nothing


def test_completions_and_models(client):
    r = client.completions.create(model="causette", prompt="Il était une fois", max_tokens=6, seed=0)
    assert r.object == "text_completion" and r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 6
    pieces = list(client.completions.create(model="causette", prompt="Le roi", max_tokens=6, seed=0,
                                            stream=True))
    assert pieces[-1].choices[0].finish_reason in ("stop", "length")
    models = client.models.list()
    assert [m.id for m in models.data] == ["causette"]
    assert client.models.retrieve("causette").id == "causette"


def test_index_page_is_self_contained(server):
    r = httpx.get(server.url + "/", timeout=30)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "/v1/chat/completions" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN: works offline


# ------------------------------------------------------------------ errors


def test_errors_are_openai_style(server, client):
    assert_error(post(server, "/v1/chat/completions", content=b"{not json",
                      headers={"content-type": "application/json"}), 400, "not valid JSON")
    assert_error(post(server, "/v1/chat/completions", [1, 2]), 400, "JSON object")
    assert_error(post(server, "/v1/chat/completions", {"messages": []}), 400, "non-empty list")
    robot = {"messages": [{"role": "robot", "content": "x"}]}
    err = assert_error(post(server, "/v1/chat/completions", robot), 400, "unknown role")
    assert err["type"] == "invalid_request_error" and err["param"] == "messages"
    assert_error(post(server, "/v1/chat/completions", {"messages": [{"role": "assistant", "content": "x"}]}),
                 400, "role")
    assert_error(post(server, "/v1/chat/completions", {"messages": [{"role": "user", "content": 3}]}),
                 400, "string")
    big = {"messages": [{"role": "user", "content": "a"}], "max_tokens": 65}
    assert assert_error(post(server, "/v1/chat/completions", big), 400, "at most 64")["param"] == "max_tokens"
    bad_settings = ({"temperature": -1}, {"temperature": "hot"}, {"top_p": 0}, {"n": 2}, {"stop": [""]},
                    {"seed": 1.5}, {"seed": 2**64}, {"max_tokens": 0}, {"stream": "yes"}, {"logprobs": True})
    for bad in bad_settings:
        body = {"messages": [{"role": "user", "content": "a"}], **bad}
        assert post(server, "/v1/chat/completions", body).status_code == 400, bad
    many = {"messages": [{"role": ("user", "assistant")[i % 2], "content": "a"} for i in range(9)]}
    assert_error(post(server, "/v1/chat/completions", many), 400, "too many messages")
    long = {"messages": [{"role": "user", "content": "mot " * 200}]}
    err = assert_error(post(server, "/v1/chat/completions", long), 400, "context")
    assert err["code"] == "context_length_exceeded"
    assert_error(post(server, "/v1/completions", {"prompt": {"x": 1}}), 400, "prompt")
    huge = {"messages": [{"role": "user", "content": "a" * 30_000}]}
    assert_error(post(server, "/v1/chat/completions", huge), 413, "larger than")
    assert_error(httpx.get(server.url + "/v1/nowhere", timeout=30), 404, "Not Found")
    assert_error(httpx.get(server.url + "/v1/models/gpt-4", timeout=30), 404, "no model")
    with pytest.raises(openai.BadRequestError):  # the client reads our errors as OpenAI's
        client.chat.completions.create(model="causette", messages=[{"role": "user", "content": "a"}],
                                       max_tokens=999)


def test_body_limit_holds_without_content_length(server):
    def chunks():
        for _ in range(30):
            yield b" " * 1000
        yield b"{}"

    r = httpx.post(server.url + "/v1/completions", content=chunks(), timeout=30,  # chunked: no Content-Length
                   headers={"content-type": "application/json"})
    assert_error(r, 413, "larger than")


def test_typed_special_tokens_stay_text(server, loaded):
    text = "<|im_start|>salut<|im_end|>"
    messages = [{"role": "user", "content": text}]
    ids, _ = render_chat(loaded.tokenizer, messages, add_generation_prompt=True)
    start_id = loaded.tokenizer.special_id("<|im_start|>")
    assert ids.count(start_id) == 2  # only the template's own: the user turn and the reply
    r = post(server, "/v1/chat/completions", {"messages": messages, "max_tokens": 1}).json()
    assert r["usage"]["prompt_tokens"] == len(ids) > 12  # the typed specials took several tokens


def test_base_checkpoint_continues_the_last_message(checkpoints):
    base = load_checkpoint(checkpoints["pretrain"], device="cpu")
    with ServerThread(create_app(base)) as s:
        card = httpx.get(s.url + "/v1/models", timeout=30).json()["data"][0]
        assert card["causette"]["mode"] == "continue" and card["causette"]["stage"] == "pretrain"
        body = {"messages": [{"role": "system", "content": "ignoré"}, {"role": "user", "content": "Le roi"}],
                "max_tokens": 3, "temperature": 0}
        r = post(s, "/v1/chat/completions", body).json()
        ids = base.tokenizer.encode("Le roi")
        assert r["usage"]["prompt_tokens"] == len(ids) + 1  # <|bos|> + the text: no template, no system


# ------------------------------------------------------------------ load and disconnects


def test_parallel_requests_all_succeed(server):
    def one(i: int) -> int:
        body = {"messages": [{"role": "user", "content": f"Question {i}"}], "max_tokens": 6, "seed": i,
                "stream": i % 2 == 0}
        r = post(server, "/v1/chat/completions", body)
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(16))) == [200] * 16


def test_client_disconnect_stops_generation(loaded):
    app = create_app(loaded)
    with ServerThread(app) as s:
        worker = app.state.worker
        worker.min_step_seconds = 0.05  # tokens at a real model's pace, to leave mid-reply
        body = {"messages": [{"role": "user", "content": "a"}], "max_tokens": 50, "stream": True,
                "temperature": 1, "seed": 0}
        seen = []
        with httpx.stream("POST", s.url + "/v1/chat/completions", json=body, timeout=30) as r:
            for line in r.iter_lines():
                seen.append(line)
                if sum(1 for x in seen if '"content": "' in x) >= 3:
                    break  # leave mid-reply: closing the response drops the connection
        deadline = time.monotonic() + 20
        while worker.last is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.last is not None and worker.last.finish_reason == "interrupted"
        assert len(worker.last.token_ids) < 40

        # The same without streaming: the client gives up waiting for the whole reply.
        worker.last = None
        with pytest.raises(httpx.TimeoutException):
            post(s, "/v1/chat/completions", {**body, "stream": False}, timeout=0.5)
        deadline = time.monotonic() + 20
        while worker.last is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.last is not None and worker.last.finish_reason == "interrupted"
        assert len(worker.last.token_ids) < 40


def test_batched_replies_are_the_unbatched_ones(loaded):
    """Greedy requests sent together to a server that batches them (rows joining and leaving at
    different steps: different prompts and lengths) get the text each gets alone, from a
    server that decodes one request at a time, and from the engine itself."""
    questions = [f"Question {i} : " + "bla " * i for i in range(6)]

    def ask(url: str, i: int) -> str:
        body = {"messages": [{"role": "user", "content": questions[i]}], "max_tokens": 4 + 3 * i,
                "temperature": 0, "stream": i % 2 == 0}
        r = httpx.post(url + "/v1/chat/completions", json={**body, "stream": False}, timeout=60)
        assert r.status_code == 200
        return r.json()["choices"][0]["message"]["content"]

    texts = {}
    for batch in (4, 1):
        app = create_app(loaded, limits=Limits(max_batch=batch))
        with ServerThread(app) as s:
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                texts[batch] = list(pool.map(lambda i: ask(s.url, i), range(6)))
    assert texts[4] == texts[1]
    assert any(texts[1])
    reader = create_app(loaded).state.reader
    engine = Engine(loaded.model, loaded.tokenizer, decode="exact")
    for i, q in enumerate(questions):
        prompt = reader.chat_prompt({"messages": [{"role": "user", "content": q}]})
        params = SamplingParams(temperature=0, max_new_tokens=4 + 3 * i, stop_token_ids=engine.special_ids)
        assert engine.generate([prompt], params)[0].text == texts[4][i]


def test_queue_full_is_a_503(loaded):
    app = create_app(loaded, limits=Limits(max_queue=1, max_batch=1))
    with ServerThread(app) as s:
        app.state.worker.min_step_seconds = 0.05  # one reply takes about a second
        body = {"messages": [{"role": "user", "content": "a"}], "max_tokens": 20, "stream": True}
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(lambda _: post(s, "/v1/chat/completions", body).status_code, range(6)))
    assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
    # (one runs, one waits in the queue, the others are turned away at once)


def test_serve_cli_registers(checkpoints):
    from causette.inference.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--checkpoint", str(checkpoints["sft"])])
    assert args.host == "127.0.0.1" and args.max_body_bytes == 1_000_000 and args.max_messages == 64
    args = parser.parse_args(["serve", "--checkpoint", "x", "--host", "0.0.0.0", "--port", "9"])
    assert args.host == "0.0.0.0" and args.port == 9


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_command_end_to_end(checkpoints):
    """``causette serve`` as a subprocess: it starts, answers, and stops on SIGINT."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "causette", "serve", "--checkpoint", str(checkpoints["sft"]),
         "--device", "cpu", "--port", str(port)],
        cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert r.json()["data"][0]["causette"]["mode"] == "chat"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "web chat: http://127.0.0.1:" in out
    assert proc.returncode == 0, out
