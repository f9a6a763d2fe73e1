"""Serving over real HTTP on loopback: health, batching, one-line errors, survival, a tiny HF model."""

import argparse
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import torch

from shared.serving import HFTextGenerator, add_serve_args, create_app, running_server, serve_kwargs

LIMITS = dict(max_prompt_chars=100, max_prompts_per_request=8, max_new_tokens_limit=32, max_body_bytes=4096)


class EchoGenerator:
    """Reverses each prompt and records every call; some prompts misbehave on purpose.

    "boom" raises, "short" makes the call return one output too few, "object" returns an output
    JSON cannot encode, and "cif:X" returns {"cif": "X"}. A prompt starting with "slow" sleeps.
    """

    name = "echo"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[list[str], dict]] = []

    def generate(self, prompts, **params):
        self.calls.append((list(prompts), dict(params)))
        if "boom" in prompts:
            raise RuntimeError("boom")
        if self.delay_s or any(p.startswith("slow") for p in prompts):
            time.sleep(self.delay_s or 0.3)
        outputs = [{"cif": p[4:]} if p.startswith("cif:") else object() if p == "object" else p[::-1] for p in prompts]
        return outputs[:-1] if "short" in prompts else outputs


def call(url, path, body=None, *, raw=None, headers=None, method=None):
    """Return (status, decoded JSON) of one request; JSON bodies unless raw bytes are given."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json", **(headers or {})}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def concurrently(fn, args_list):
    """Run fn(*args) for each args in threads released together; return the results in order."""
    barrier = threading.Barrier(len(args_list))
    results = [None] * len(args_list)

    def run(i, args):
        barrier.wait(timeout=5)
        results[i] = fn(*args)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    return results


def assert_one_line_error(status, body, expected_status, fragment):
    assert status == expected_status, body
    assert list(body) == ["error"] and "\n" not in body["error"]
    assert fragment in body["error"]


@pytest.fixture(scope="module")
def echo():
    generator = EchoGenerator()
    with running_server(create_app(generator, max_batch_size=4, max_wait_ms=5, **LIMITS)) as url:
        yield url, generator


def test_health_reports_model_uptime_and_queue(echo):
    status, body = call(echo[0], "/health")
    assert status == 200
    assert body["status"] == "ok" and body["model"] == "echo"
    assert body["uptime_s"] >= 0 and body["queue_depth"] == 0 and body["in_flight"] == 0


def test_generate_prompt_list_and_single_prompt(echo):
    url, _ = echo
    status, body = call(url, "/generate", {"prompts": ["abc", "xy", ""], "params": {"temperature": 0.5}})
    assert status == 200 and body["outputs"] == ["cba", "yx", ""] and body["latency_ms"] > 0
    assert call(url, "/generate", {"prompt": "cif:NaCl"})[1]["outputs"] == [{"cif": "NaCl"}]


def test_concurrent_requests_are_merged_and_each_caller_gets_its_own_outputs():
    generator = EchoGenerator(delay_s=0.05)
    with running_server(create_app(generator, max_batch_size=8, max_wait_ms=50)) as url:
        bodies = [{"prompts": [f"a{i}", f"b{i}"]} for i in range(8)]
        results = concurrently(lambda b: call(url, "/generate", b), [(b,) for b in bodies])
    assert [r[1]["outputs"] for r in results] == [[f"{i}a", f"{i}b"] for i in range(8)]
    sizes = [len(prompts) for prompts, _ in generator.calls]
    assert sum(sizes) == 16 and max(sizes) <= 8
    assert len(sizes) < 8 and max(sizes) > 1, sizes


def test_requests_with_different_params_or_a_seed_are_not_merged():
    generator = EchoGenerator(delay_s=0.05)
    params = [{"temperature": 0.0}, {"temperature": 0.5}] * 3 + [{"seed": 7}, {"seed": 7}]
    with running_server(create_app(generator, max_batch_size=16, max_wait_ms=50)) as url:
        bodies = [{"prompt": f"p{i}", "params": p} for i, p in enumerate(params)]
        results = concurrently(lambda b: call(url, "/generate", b), [(b,) for b in bodies])
    assert [r[1]["outputs"] for r in results] == [[f"{i}p"] for i in range(len(params))]
    for prompts, call_params in generator.calls:
        assert all(params[int(p[1:])] == call_params for p in prompts)
        if "seed" in call_params:
            assert len(prompts) == 1
    assert len(generator.calls) < len(params)


def test_health_answers_while_the_generator_is_busy(echo):
    url, _ = echo
    slow = threading.Thread(target=call, args=(url, "/generate", {"prompt": "slow"}))
    slow.start()
    deadline = time.monotonic() + 5
    while call(url, "/health")[1]["in_flight"] == 0:
        assert time.monotonic() < deadline, "the slow call never showed up as in flight"
        time.sleep(0.005)
    slow.join(timeout=5)
    assert call(url, "/health")[1]["in_flight"] == 0


@pytest.mark.parametrize(
    "raw, status, fragment",
    [
        (b'{"prompts": ["a",', 400, "body is not valid JSON"),
        (b"\xff\xfe", 400, "body is not valid JSON"),
        (b"[1, 2]", 422, "body must be a JSON object, got array"),
        ({}, 422, "exactly one of 'prompts'"),
        ({"prompt": "a", "prompts": ["b"]}, 422, "exactly one of 'prompts'"),
        ({"prompts": []}, 422, "prompts is empty"),
        ({"prompts": "hi"}, 422, "prompts must be a list of strings, got string"),
        ({"prompts": ["ok", 3]}, 422, "prompts[1] must be a string, got number"),
        ({"prompt": None}, 422, "prompt must be a string, got null"),
        ({"prompt": "a", "extra": 1}, 422, "unknown field 'extra'"),
        ({"prompt": "a", "params": [1]}, 422, "params must be a JSON object, got array"),
        ({"prompt": "a", "params": {"beam": 2}}, 422, "params.beam: unknown parameter; accepted: max_new_tokens"),
        ({"prompt": "a", "params": {"temperature": "hot"}}, 422, "params.temperature must be a number, got string"),
        ({"prompt": "a", "params": {"seed": True}}, 422, "params.seed must be an integer, got boolean"),
        ({"prompt": "a", "params": {"max_new_tokens": 2.5}}, 422, "params.max_new_tokens must be an integer"),
        ({"prompt": "a", "params": {"top_p": 1.5}}, 422, "params.top_p must be at most 1.0, got 1.5"),
        ({"prompt": "a", "params": {"max_new_tokens": 33}}, 422, "params.max_new_tokens must be at most 32"),
        ({"prompt": "x" * 101}, 413, "prompt has 101 characters; the limit is 100"),
        ({"prompts": ["a", "y" * 101]}, 413, "prompts[1] has 101 characters"),
        ({"prompts": ["a"] * 9}, 413, "prompts has 9 entries; the limit is 8"),
        (b'{"prompt": "a"' + b" " * 5000 + b"}", 413, "body is 5015 bytes; the limit is 4096"),
    ],
)
def test_bad_requests_get_a_one_line_error_naming_the_field(echo, raw, status, fragment):
    if isinstance(raw, bytes):
        assert_one_line_error(*call(echo[0], "/generate", raw=raw), status, fragment)
    else:
        assert_one_line_error(*call(echo[0], "/generate", raw), status, fragment)


def test_body_over_the_limit_is_refused_before_and_while_reading(echo):
    host, port = urllib.parse.urlsplit(echo[0]).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/generate")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(50_000_000))
    conn.endheaders()  # no body sent: the declared length alone is refused
    response = conn.getresponse()
    assert_one_line_error(response.status, json.loads(response.read()), 413, "body is 50000000 bytes")
    conn.close()

    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    chunks = iter([b'{"prompt": "', *[b"z" * 1000] * 6, b'"}'])
    conn.request("POST", "/generate", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = conn.getresponse()
    assert_one_line_error(response.status, json.loads(response.read()), 413, "body exceeds the limit of 4096 bytes")
    conn.close()


def test_a_body_that_is_not_declared_json_is_415(echo):
    status, body = call(echo[0], "/generate", {"prompt": "a"}, headers={"Content-Type": "text/plain"})
    assert_one_line_error(status, body, 415, "Content-Type must be application/json, got text/plain")


@pytest.mark.parametrize(
    "prompt, fragment",
    [
        ("boom", "generator failed: RuntimeError: boom"),
        ("short", "generator returned 0 outputs for 1 prompts"),
        ("object", "generator output is not JSON-serialisable"),
    ],
)
def test_a_failing_generator_is_500_and_the_server_keeps_serving(echo, prompt, fragment):
    url, _ = echo
    assert_one_line_error(*call(url, "/generate", {"prompt": prompt}), 500, fragment)
    status, body = call(url, "/generate", {"prompt": "ok"})
    assert status == 200 and body["outputs"] == ["ko"]


def test_fastapi_errors_of_routes_an_app_adds_are_one_line_too():
    app = create_app(EchoGenerator())

    @app.get("/square")
    async def square(n: int) -> dict:
        return {"n2": n * n}

    with running_server(app) as url:
        assert call(url, "/square?n=3") == (200, {"n2": 9})
        assert_one_line_error(*call(url, "/square?n=abc"), 422, "query.n: Input should be a valid integer")
        assert_one_line_error(*call(url, "/nowhere"), 404, "Not Found: GET /nowhere")
        assert_one_line_error(*call(url, "/generate"), 405, "Method Not Allowed: GET /generate")


def test_add_serve_args_gives_serve_its_keywords():
    args = add_serve_args(argparse.ArgumentParser()).parse_args(["--port", "9001", "--max-batch-size", "4"])
    assert serve_kwargs(args) == {
        "host": "127.0.0.1",
        "port": 9001,
        "name": None,
        "max_batch_size": 4,
        "max_wait_ms": 10.0,
        "max_new_tokens_limit": 1024,
    }


@pytest.fixture(scope="module")
def tiny_lm():
    """A random-init 2-layer Llama and a WordLevel tokenizer trained in-process (nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = ["the cat sat on the mat", "a dog ran far away from home", "user assistant : hello there"]
    words.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "<s>", "</s>"]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words, pad_token="[PAD]", unk_token="[UNK]", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).eval(), tokenizer


def reference_greedy(model, tokenizer, text, max_new_tokens, add_special_tokens=True):
    """Greedy continuation of one unpadded prompt with transformers' own generate."""
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=add_special_tokens)
    out = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
    return tokenizer.decode(out[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)


def test_hf_generator_over_http_matches_unbatched_transformers_generate(tiny_lm):
    model, tokenizer = tiny_lm
    prompts = ["the cat sat on the mat", "a dog", "hello there user"]
    generator = HFTextGenerator(model, tokenizer, max_new_tokens=6, name="tiny-llama")
    with running_server(create_app(generator)) as url:
        assert call(url, "/health")[1]["model"] == "tiny-llama"
        status, body = call(url, "/generate", {"prompts": prompts})
        short = call(url, "/generate", {"prompt": prompts[0], "params": {"max_new_tokens": 2}})[1]["outputs"][0]
    assert status == 200
    expected = [reference_greedy(model, tokenizer, p, 6) for p in prompts]
    assert body["outputs"] == expected and any(expected)
    assert short == reference_greedy(model, tokenizer, prompts[0], 2)


def test_hf_generator_chat_template_and_seeded_sampling(tiny_lm):
    model, tokenizer = tiny_lm
    tokenizer.chat_template = (
        "{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant :{% endif %}"
    )
    try:
        generator = HFTextGenerator(model, tokenizer, max_new_tokens=5, chat=True)
        rendered = "<s> user : the cat assistant :"
        assert generator.generate(["the cat"]) == [reference_greedy(model, tokenizer, rendered, 5, False)]
    finally:
        tokenizer.chat_template = None
    generator = HFTextGenerator(model, tokenizer, max_new_tokens=8)
    rng_before = torch.get_rng_state()
    first = generator.generate(["the cat", "a dog"], temperature=1.5, top_p=0.95, seed=3)
    assert generator.generate(["the cat", "a dog"], temperature=1.5, top_p=0.95, seed=3) == first
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_cli_serves_a_saved_model_folder_over_http(tmp_path):
    """python -m shared.serving --model FOLDER answers /health and /generate, and refuses a bad folder."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from shared.models import ModelSpec, load_policy, save_policy

    model, tok = load_policy(ModelSpec(seed=0))
    save_policy(model, tok, tmp_path / "model")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "shared.serving", "--model", str(tmp_path / "model"),
                             "--port", str(port), "--max-new-tokens", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.time() < deadline, "server did not come up"
                time.sleep(0.3)
        req = urllib.request.Request(url + "/generate", data=json.dumps({"prompts": ["say abc:", "hi"]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            outputs = json.loads(r.read())["outputs"]
        assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    bad = subprocess.run([sys.executable, "-m", "shared.serving", "--model", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not a folder" in bad.stderr


class CheckedGenerator(EchoGenerator):
    """An echo generator whose prompts must not contain '{' (stands in for a structured-prompt app)."""

    def check_prompt(self, prompt):
        if "{" in prompt:
            raise ValueError("prompt field 'question' must be a string")


def test_a_prompt_the_generator_refuses_is_422_and_never_reaches_a_batch():
    generator = CheckedGenerator()
    with running_server(create_app(generator, max_batch_size=8, max_wait_ms=50)) as url:
        status, body = call(url, "/generate", {"prompts": ["ok", "{bad"]})
        assert_one_line_error(status, body, 422, "prompts[1]: prompt field 'question' must be a string")
        assert generator.calls == []  # refused before batching
        # concurrent good and bad requests: the good one is answered, the bad one refused on its own
        good, bad = concurrently(lambda p: call(url, "/generate", {"prompt": p}), [("fine",), ("{x",)])
        assert good == (200, good[1]) and good[1]["outputs"] == ["enif"]
        assert bad[0] == 422
