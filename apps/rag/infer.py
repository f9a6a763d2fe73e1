"""Answer a question with cited documents, or serve the model over HTTP.

    python -m apps.rag.infer --model runs/rag/pa_rag --question "Who founded Bralba Foundry?"
    python -m apps.rag.infer --model runs/rag/pa_rag --question "..." --docs docs.jsonl   # your documents
    python -m apps.rag.infer serve --model runs/rag/pa_rag --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["Who founded Bralba Foundry?"]}'

A prompt is a question, answered over the top five documents BM25 retrieves from the embedded
knowledge base's passages, or a JSON object `{"question": ..., "docs": [{"title", "text"}, ...]}`
(as a string) with its own documents. Each output is {"answer": the first line of the model's
text, "sentences": [{"text", "citations": [document numbers]}], "docs": the documents in prompt
order}. --docs reads a JSONL file of {"title", "text"} documents.

The server also speaks OpenAI's API (/v1/models, /v1/chat/completions, /v1/completions, streaming
included) for the model itself: send the PA-RAG/ALCE prompt (apps/rag/prompts.py) as the messages.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from apps.rag.data import Doc, load_docs, parse_doc
from apps.rag.metrics import citations, first_line, remove_citations, sentences
from apps.rag.prompts import rag_prompt
from shared.models import load_policy, resolve_model
from shared.serving import HFTextGenerator
from shared.serving.cli import infer_parser, serve, serve_kwargs
from shared.serving.textmodel import Sampling

PROG = "python -m apps.rag.infer"


def parse_prompt(prompt: str) -> tuple[str, list[Doc] | None]:
    """Return (question, documents or None) of a request prompt; raise ValueError naming the bad field."""
    text = prompt.strip()
    if not text.startswith("{"):
        return prompt, None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"prompt is not valid JSON: {exc.msg} (column {exc.colno})") from None
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("prompt field 'question' must be a non-empty string")
    docs = obj.get("docs")
    if docs is None:
        return question, None
    if not isinstance(docs, list):
        raise ValueError("prompt field 'docs' must be a list of {title, text} objects")
    return question, [parse_doc(d, f"docs[{i}]") for i, d in enumerate(docs)]


class RagGenerator:
    """Retrieves (unless documents are given), prompts with PA-RAG's layout, and returns the cited answer."""

    def __init__(self, model, tokenizer, *, retriever=None, max_new_tokens: int = 96, k: int = 5):
        self.text_model = HFTextGenerator(model, tokenizer, max_new_tokens=max_new_tokens, chat=True, name="rag")
        self.accepted_params = self.text_model.accepted_params
        self.retriever, self.k, self.name = retriever, k, "rag"

    def check_prompt(self, prompt: str) -> None:
        """Raise ValueError naming the bad field of a malformed prompt (the server answers 422 before batching)."""
        parse_prompt(prompt)

    def _docs(self, question: str, docs: list[Doc] | None) -> list[Doc]:
        if docs is not None:
            return docs
        if self.retriever is None:
            raise ValueError("no documents given and no retriever")
        return self.retriever.search(question, self.k)

    def generate(self, prompts: list[str], **params: Any) -> list[dict]:
        asked = [parse_prompt(p) for p in prompts]
        doc_lists = [self._docs(q, d) for q, d in asked]
        sampling = Sampling(max_tokens=params.get("max_new_tokens"), temperature=params.get("temperature"),
                            top_p=params.get("top_p"), seed=params.get("seed"))
        rows = [rag_prompt(q, d) for (q, _), d in zip(asked, doc_lists)]  # system + user messages
        texts = [c.text for c in self.text_model.complete(rows, sampling)]
        out = []
        for text, docs in zip(texts, doc_lists):
            out.append({"answer": first_line(text),
                        "sentences": [{"text": remove_citations(s).strip(), "citations": citations(s)}
                                      for s in sentences(text)],
                        "docs": [{"title": d.title, "text": d.text} for d in docs]})
        return out


def embedded_retriever():
    """BM25 over every passage of the embedded world."""
    from apps.rag.data import embedded_world
    from apps.rag.retrieval import BM25Retriever, world_corpus

    _, train, heldout = embedded_world()
    return BM25Retriever(world_corpus(train + heldout))


def main(argv: list[str] | None = None) -> None:
    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv))
    if not serving:
        parser.add_argument("--question", required=True)
        parser.add_argument("--docs", help="a JSONL file of {title, text} documents (default: BM25 over the embedded passages)")
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--seed", type=int)
    args = parser.parse_args(rest)
    docs = None
    try:
        spec, _ = resolve_model(args.model)
        if not serving and args.docs:
            docs = load_docs(args.docs)
    except ValueError as exc:
        parser.error(str(exc))
    model, tok = load_policy(spec)
    generator = RagGenerator(model, tok, retriever=embedded_retriever(), max_new_tokens=args.max_new_tokens)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    prompt = json.dumps({"question": args.question, "docs": [{"title": d.title, "text": d.text} for d in docs]}) \
        if docs is not None else args.question
    print(json.dumps(generator.generate([prompt], temperature=args.temperature, seed=args.seed)[0], indent=2))


if __name__ == "__main__":
    main()
