"""The OpenAI-compatible routes over real HTTP on loopback, driven by the official `openai` client.

A tiny random Llama with the offline byte tokenizer (which has a chat template) stands in for a
model; its greedy text is a run of one character, so the tests that need varied text sample with a seed.
"""

import json
import threading
import time
import urllib.request

import openai
import pytest
import torch

import shared.serving.cli
from shared.models import ModelSpec, load_policy, save_policy
from shared.serving import Completion, HFTextGenerator, create_app, running_server
from shared.serving.rows import find_stop, safe_prefix
from tests.test_serving import call

LIMITS = dict(max_prompts_per_request=8, max_new_tokens_limit=64, max_prompt_chars=500)
CONVERSATION = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "the cat"},
    {"role": "assistant", "content": "sat"},
    {"role": "user", "content": [{"type": "text", "text": "on the"}, {"type": "text", "text": "mat?"}]},
]
# how the chat template sees CONVERSATION: text parts joined by newlines
FLAT = CONVERSATION[:3] + [{"role": "user", "content": "on the\nmat?"}]


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = load_policy(ModelSpec(seed=0))
    generator = HFTextGenerator(model, tokenizer, max_new_tokens=16, name="tiny")
    with running_server(create_app(generator, max_wait_ms=5, **LIMITS)) as url:
        yield url, generator


@pytest.fixture(scope="module")
def client(tiny):
    return openai.OpenAI(base_url=tiny[0] + "/v1", api_key="x", max_retries=0, timeout=30)


def greedy(generator, text, max_new_tokens, add_special_tokens=True):
    """Greedy continuation of one prompt with transformers' own generate, and the prompt's token count."""
    encoded = generator.tokenizer(text, return_tensors="pt", add_special_tokens=add_special_tokens)
    with torch.inference_mode():
        out = generator.model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)
    width = encoded["input_ids"].shape[1]
    return generator.tokenizer.decode(out[0, width:], skip_special_tokens=True), width


def test_models_lists_the_served_model_and_404s_another(client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").owned_by == "aligned-generators"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_completion_renders_the_whole_conversation_with_the_chat_template(tiny, client):
    _, generator = tiny
    reply = client.chat.completions.create(model="tiny", messages=CONVERSATION, max_tokens=6, temperature=0)
    rendered = generator.tokenizer.apply_chat_template(FLAT, tokenize=False, add_generation_prompt=True)
    assert rendered.startswith("<|system|>You answer briefly.\n<|user|>the cat\n<|assistant|>sat\n")
    expected, prompt_tokens = greedy(generator, rendered, 6, add_special_tokens=False)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-") and reply.model == "tiny"
    assert reply.created > 1_600_000_000
    (choice,) = reply.choices
    assert choice.index == 0 and choice.message.role == "assistant" and choice.message.content == expected
    assert choice.finish_reason == "length"  # six tokens, no end of sequence
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (
        prompt_tokens, 6, prompt_tokens + 6)
    again = client.chat.completions.create(model="tiny", messages=CONVERSATION, max_completion_tokens=6, temperature=0)
    assert again.choices[0].message.content == expected


def test_completion_of_a_prompt_list_with_n_choices_and_usage(tiny, client):
    _, generator = tiny
    reply = client.completions.create(model="tiny", prompt=["the cat", "a dog ran"], n=2, max_tokens=5, temperature=0)
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    (cat, cat_tokens), (dog, dog_tokens) = greedy(generator, "the cat", 5), greedy(generator, "a dog ran", 5)
    assert [c.text for c in reply.choices] == [cat, cat, dog, dog]
    assert {c.finish_reason for c in reply.choices} == {"length"}
    # each prompt's tokens count once, every choice's completion counts
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (cat_tokens + dog_tokens, 4 * 5)


def test_a_seeded_request_samples_n_different_choices_reproducibly(client):
    kwargs = dict(model="tiny", prompt="the cat", n=3, max_tokens=12, temperature=1.0, seed=3)
    first = [c.text for c in client.completions.create(**kwargs).choices]
    assert len(set(first)) == 3
    assert [c.text for c in client.completions.create(**kwargs).choices] == first


@pytest.mark.parametrize("sampling", [dict(temperature=0), dict(temperature=1.0, top_p=0.9, seed=7)])
def test_streamed_chat_adds_up_to_the_non_streamed_reply(client, sampling):
    kwargs = dict(model="tiny", messages=CONVERSATION, max_tokens=10, **sampling)
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content and len(text) > 0
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_completion_with_n_choices_adds_up_to_the_non_streamed_one(client):
    kwargs = dict(model="tiny", prompt=["the cat", "a dog"], n=2, max_tokens=10, temperature=1.0, seed=5)
    whole = client.completions.create(**kwargs)
    texts, finish = ["", "", "", ""], [None] * 4
    for chunk in client.completions.create(stream=True, **kwargs):
        assert chunk.object == "text_completion" and chunk.usage is None
        for choice in chunk.choices:
            texts[choice.index] += choice.text
            finish[choice.index] = finish[choice.index] or choice.finish_reason
    assert texts == [c.text for c in whole.choices]
    assert finish == [c.finish_reason for c in whole.choices]


def test_stop_sequences_cut_the_text_streamed_or_not(client):
    kwargs = dict(model="tiny", prompt="the cat", max_tokens=24, temperature=1.0, seed=4)
    full = client.completions.create(**kwargs).choices[0].text
    start = next(i for i in range(2, len(full) - 1) if full[i:i + 2].isascii() and full[i:i + 2].isprintable())
    stop = full[start:start + 2]
    expected = full[: full.find(stop)]
    reply = client.completions.create(stop=[stop, "never-there"], **kwargs)
    assert reply.choices[0].text == expected and reply.choices[0].finish_reason == "stop"
    assert 0 < reply.usage.completion_tokens < 24
    pieces = [c.choices[0] for c in client.completions.create(stream=True, stop=stop, **kwargs)]
    assert "".join(p.text for p in pieces) == expected and pieces[-1].finish_reason == "stop"
    chat = client.chat.completions.create(model="tiny", messages=CONVERSATION, max_tokens=8, temperature=0)
    first = chat.choices[0].message.content[:1]
    cut = client.chat.completions.create(model="tiny", messages=CONVERSATION, max_tokens=8, temperature=0, stop=first)
    assert cut.choices[0].message.content == "" and cut.choices[0].finish_reason == "stop"


def test_stop_helpers_hold_back_what_may_still_change():
    assert find_stop("abcabc", ["ca", "bc"]) == 1 and find_stop("abc", ["x"]) is None
    assert safe_prefix("hello wo", ["world"]) == "hello "
    assert safe_prefix("caf\ufffd", []) == "caf" and safe_prefix("a\ufffdb", []) == "a\ufffdb"


def test_wrong_model_is_a_404_in_openai_error_shape(tiny, client):
    with pytest.raises(openai.NotFoundError, match="The model `other` does not exist"):
        client.chat.completions.create(model="other", messages=CONVERSATION)
    status, body = call(tiny[0], "/v1/completions", {"model": "other", "prompt": "x"})
    assert status == 404 and body == {"error": {
        "message": "The model `other` does not exist; this server serves `tiny`",
        "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}


@pytest.mark.parametrize(
    "extra, param, fragment",
    [
        (dict(tools=[{"type": "function", "function": {"name": "f"}}]), "tools", "tools="),
        (dict(logprobs=True), "logprobs", "logprobs=true is not supported"),
        (dict(frequency_penalty=0.5), "frequency_penalty", "it accepts 0"),
        (dict(response_format={"type": "json_object"}), "response_format", "not supported"),
        (dict(n=9), "n", "n must be between 1 and 8, got 9"),
        (dict(temperature=2.5), "temperature", "between 0.0 and 2.0"),
        (dict(max_tokens=65), "max_tokens", "between 1 and 64"),
        (dict(max_tokens=4, max_completion_tokens=5), "max_tokens", "differ"),
        (dict(seed=-1), "seed", "between 0"),
        (dict(stop=["a", "b", "c", "d", "e"]), "stop", "the limit is 4"),
        (dict(stream_options={"include_usage": True}), "stream_options", "only allowed when stream is true"),
        (dict(extra_body={"beam_width": 4}), "beam_width", "Unrecognized request argument supplied: beam_width"),
        (dict(messages=[{"role": "tool", "content": "x", "tool_call_id": "1"}]), "messages", "role \"tool\""),
        (dict(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
         "messages", "only text parts"),
        (dict(messages=[]), "messages", "non-empty list"),
        (dict(messages=[{"role": "user", "content": "x" * 501}]), "messages", "the limit is 500"),
    ],
)
def test_unsupported_or_bad_chat_parameters_are_a_400_naming_the_parameter(client, extra, param, fragment):
    kwargs = {"model": "tiny", "messages": CONVERSATION, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**kwargs)
    assert fragment in caught.value.message and caught.value.param == param
    assert caught.value.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (dict(prompt=[1, 2, 3]), "token-id prompts are not supported"),
        (dict(prompt=""), "encodes to no tokens"),  # the byte tokenizer adds no BOS
        (dict(prompt=["a"] * 5, n=2), "asks for 10 completions; the limit is 8"),
        (dict(echo=True), "echo=true is not supported"),
        (dict(best_of=3), "best_of=3"),
        (dict(logprobs=2), "logprobs=2"),
    ],
)
def test_bad_completion_requests_are_a_400(client, extra, fragment):
    with pytest.raises(openai.BadRequestError, match=fragment):
        client.completions.create(**{"model": "tiny", "prompt": "the cat", **extra})


def test_harmless_parameters_and_a_missing_model_name_are_accepted(tiny, client):
    reply = client.chat.completions.create(
        model="tiny", messages=CONVERSATION, max_tokens=2, user="u1", frequency_penalty=0, presence_penalty=0,
        logprobs=False, tool_choice="none", response_format={"type": "text"}, metadata={"k": "v"})
    assert reply.choices[0].message.content
    status, body = call(tiny[0], "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}],
                                                          "max_tokens": 2})
    assert status == 200 and body["model"] == "tiny"


def test_body_errors_under_v1_have_the_openai_shape(tiny):
    url = tiny[0]
    status, body = call(url, "/v1/chat/completions", raw=b'{"model": ')
    assert status == 400 and body["error"]["message"].startswith("body is not valid JSON")
    assert set(body["error"]) == {"message", "type", "param", "code"}
    status, body = call(url, "/v1/chat/completions", {"model": "tiny"}, headers={"Content-Type": "text/plain"})
    assert status == 415 and "Content-Type must be application/json" in body["error"]["message"]
    status, body = call(url, "/v1/embeddings", {"model": "tiny", "input": "x"})
    assert status == 404 and body["error"]["type"] == "invalid_request_error"


def test_generate_and_completions_agree_and_a_dropped_stream_frees_the_server(tiny, client):
    url, _ = tiny
    status, body = call(url, "/generate", {"prompt": "the cat", "params": {"max_new_tokens": 6}})
    completion = client.completions.create(model="tiny", prompt="the cat", max_tokens=6, temperature=0)
    assert status == 200 and body["outputs"] == [completion.choices[0].text]
    stream = client.completions.create(model="tiny", prompt="the cat", max_tokens=64, temperature=1.0, stream=True)
    next(iter(stream))
    stream.close()  # the client goes away mid-stream
    assert client.completions.create(model="tiny", prompt="a dog", max_tokens=3).choices[0].text
    with urllib.request.urlopen(url + "/health", timeout=10) as response:
        assert json.loads(response.read())["in_flight"] == 0


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(tiny):
    _, generator = tiny
    prompts = ["the cat", "a dog", "hello", "on the mat"]
    expected = [greedy(generator, p, 4)[0] for p in prompts]
    batches = []

    def recording(rows, sampling, on_piece=None):
        batches.append(len(rows))
        return HFTextGenerator.complete(generator, rows, sampling, on_piece)

    app = create_app(generator, max_wait_ms=200, **LIMITS)
    generator.complete = recording  # the app calls the model's method at request time
    try:
        with running_server(app) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
            barrier, results = threading.Barrier(len(prompts)), [None] * len(prompts)

            def ask(i):
                barrier.wait(timeout=10)
                results[i] = client.completions.create(model="tiny", prompt=prompts[i], max_tokens=4, temperature=0)

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
    finally:
        del generator.complete
    assert [r.choices[0].text for r in results] == expected
    assert sum(batches) == len(prompts) and max(batches) > 1, batches


class FailingModel:
    """A text model whose calls fail: after one streamed piece when streaming, else at once."""

    name = "failing"

    def generate(self, prompts, **params):
        return list(prompts)

    def count_tokens(self, prompt):
        return 1

    def complete(self, prompts, sampling, on_piece=None):
        if on_piece is not None:
            on_piece(0, Completion("partial "))
        raise RuntimeError("out of memory")


def test_a_failing_model_is_a_500_or_an_error_event_and_the_server_keeps_serving():
    with running_server(create_app(FailingModel())) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        with pytest.raises(openai.InternalServerError, match="generator failed: RuntimeError: out of memory"):
            client.completions.create(model="failing", prompt="x")
        stream = client.chat.completions.create(model="failing", messages=CONVERSATION, stream=True)
        with pytest.raises(openai.APIError, match="out of memory"):
            for _ in stream:
                pass
        status, body = call(url, "/generate", {"prompt": "still here"})
        assert status == 200 and body["outputs"] == ["still here"]


class EndlessModel:
    """A text model that streams one piece every 5 ms until told to stop (or 2000 pieces)."""

    name = "endless"

    def __init__(self):
        self.pieces, self.returned = 0, threading.Event()

    def generate(self, prompts, **params):
        return list(prompts)

    def count_tokens(self, prompt):
        return 1

    def complete(self, prompts, sampling, on_piece=None):
        try:
            while self.pieces < 2000:
                self.pieces += 1
                if on_piece is not None and on_piece(0, Completion("x")) is False:
                    break
                time.sleep(0.005)
            return [Completion("x" * self.pieces, "length", 1, self.pieces)]
        finally:
            self.returned.set()


def test_a_client_that_leaves_a_stream_stops_its_generation():
    model = EndlessModel()
    with running_server(create_app(model)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        stream = client.completions.create(model="endless", prompt="x", stream=True)
        chunks = iter(stream)
        for _ in range(3):
            assert next(chunks).choices[0].text == "x"
        stream.close()
        assert model.returned.wait(10) and model.pieces < 100


def test_a_tokenizer_without_chat_template_serves_completions_and_refuses_chat():
    model, tokenizer = load_policy(ModelSpec(seed=1))
    tokenizer.chat_template = None
    with running_server(create_app(HFTextGenerator(model, tokenizer, max_new_tokens=3, name="plain"))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        assert client.completions.create(model="plain", prompt="the cat").choices[0].text
        with pytest.raises(openai.BadRequestError, match="no chat template"):
            client.chat.completions.create(model="plain", messages=CONVERSATION)


def test_apps_without_a_text_model_have_no_v1_routes():
    class Images:
        def generate(self, prompts, **params):
            return [{"image_png_base64": ""} for _ in prompts]

    with running_server(create_app(Images(), name="t2i")) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        with pytest.raises(openai.NotFoundError, match="Not Found: GET /v1/models"):
            client.models.list()


def served_app(monkeypatch, main, argv):
    """Return the app an app's `infer serve` command builds, and the keywords it would run uvicorn with."""
    served = {}
    monkeypatch.setattr(shared.serving.cli.uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    main(["serve", *argv])
    return served.pop("app"), served


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "tiny-run"
    save_policy(*load_policy(ModelSpec(seed=3)), folder)
    return folder


def test_served_codegen_model_answers_openai_chat_and_its_generate_route(monkeypatch, saved_tiny):
    from apps.codegen.infer import main

    app, uvicorn_kwargs = served_app(monkeypatch, main, ["--model", str(saved_tiny), "--max-new-tokens", "8",
                                                         "--port", "8123"])
    assert uvicorn_kwargs["port"] == 8123
    with running_server(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        assert [m.id for m in client.models.list().data] == ["tiny-run"]
        reply = client.chat.completions.create(
            model="tiny-run", messages=[{"role": "user", "content": "Write is_even(n) in Python."}], temperature=0)
        streamed = client.chat.completions.create(
            model="tiny-run", messages=[{"role": "user", "content": "Write is_even(n) in Python."}], temperature=0,
            stream=True)
        status, body = call(url, "/generate", {"prompt": 'def f(x):\n    "Return x."'})
    content = reply.choices[0].message.content
    assert isinstance(content, str) and reply.usage.completion_tokens <= 8
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == content
    assert status == 200 and set(body["outputs"][0]) == {"completion", "code"}


def test_served_crystal_model_answers_openai_chat_within_the_format_when_constrained(monkeypatch, saved_tiny):
    from apps.crystal.grammar import WyckoffGrammar
    from apps.crystal.infer import main
    from apps.crystal.prompts import prompt
    from shared.constrained import walk

    app, _ = served_app(monkeypatch, main, ["--model", str(saved_tiny), "--decoding", "constrained",
                                            "--max-new-tokens", "24", "--served-model-name", "plaid"])
    with running_server(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        reply = client.chat.completions.create(model="plaid", messages=prompt(None, 225), n=2, seed=0)
        raw = client.completions.create(model="plaid", prompt="a crystal:", seed=1, temperature=1.0)
    texts = [c.message.content for c in reply.choices] + [raw.choices[0].text]
    assert all(texts) and all(walk(WyckoffGrammar(40), t) is not None for t in texts)


def test_t2i_serve_uses_the_shared_serving_options(capsys):
    from apps.t2i.infer import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    usage = capsys.readouterr().out
    assert "--served-model-name" in usage and "--max-batch-size" in usage and "--which" in usage
