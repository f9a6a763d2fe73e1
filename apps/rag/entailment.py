"""Entailment adapters for ALCE's citation metrics: do these documents support this sentence?

- `KBEntailment` (the embedded default) decides exactly: the sentence's claims (`claims.py`) must
  be non-empty and each be stated by one of the documents (their recorded claims, or the claims
  read from their text when they carry none). A sentence that asserts nothing checkable is not
  supported; a false claim is supported by a document that states it (as an NLI judge would).
- `NLIEntailment` takes any Hugging Face sequence classifier trained for NLI by path (its config's
  `id2label` must name an entailment class): premise = the documents as ALCE formats them
  (`Title: t\\ntext`, joined by newlines), hypothesis = the sentence; entailed when the entailment
  class has the highest probability. ALCE used TRUE (t5-xxl, a seq2seq model); a classifier such
  as a DeBERTa MNLI model is the usual lighter substitute; results are not comparable across judges.
"""

from __future__ import annotations

from functools import lru_cache

import punkt

from apps.rag.claims import ClaimReader
from apps.rag.data import Doc
from apps.rag.kb import Fact, KnowledgeBase


class KBEntailment:
    """Exact entailment against the knowledge base's names and relations."""

    def __init__(self, kb: KnowledgeBase):
        self.reader = ClaimReader(kb)
        self._doc_claims = lru_cache(maxsize=65536)(self._read_doc)
        self._sentence_claims = lru_cache(maxsize=65536)(self.reader.claims)

    def _read_doc(self, doc: Doc) -> frozenset[Fact]:
        if doc.claims is not None:
            return frozenset(tuple(c) for c in doc.claims)
        return frozenset(c for s in punkt.sent_tokenize(doc.text) for c in self.reader.claims(s))

    def claims(self, sentence: str) -> frozenset[Fact]:
        return frozenset(self._sentence_claims(sentence))

    def stated(self, docs: list[Doc]) -> frozenset[Fact]:
        return frozenset().union(*(self._doc_claims(d) for d in docs)) if docs else frozenset()

    def __call__(self, premise: list[Doc], hypothesis: str) -> bool:
        claims = self.claims(hypothesis)
        return bool(claims) and claims <= self.stated(premise)


class NLIEntailment:
    """Entailment by a Hugging Face NLI classifier (`path`: a folder or hub id available offline)."""

    def __init__(self, path: str, *, device: str | None = None, max_length: int = 512, batch_size: int = 16):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        labels = {int(i): str(name).lower() for i, name in self.model.config.id2label.items()}
        found = [i for i, name in labels.items() if name.startswith("entail")]
        if len(found) != 1:
            raise ValueError(f"{path}: config.id2label {labels} names no single entailment class")
        self.entailment_index, self.max_length, self.batch_size = found[0], max_length, batch_size
        self._cache: dict[tuple[str, str], bool] = {}

    @staticmethod
    def premise(docs: list[Doc]) -> str:
        return "\n".join(f"Title: {d.title}\n{d.text}" for d in docs)

    def __call__(self, premise: list[Doc], hypothesis: str) -> bool:
        key = (self.premise(premise), hypothesis)
        if key not in self._cache:
            batch = self.tokenizer([key[0]], [hypothesis], truncation="only_first", max_length=self.max_length,
                                   return_tensors="pt").to(self.device)
            with self.torch.inference_mode():
                logits = self.model(**batch).logits[0]
            self._cache[key] = int(logits.argmax()) == self.entailment_index
        return self._cache[key]


def make_entailment(judge: str, kb: KnowledgeBase | None):
    """`kb` (exact, embedded questions only) or a path to an NLI classifier."""
    if judge == "kb":
        if kb is None:
            raise ValueError("eval.judge 'kb' needs the embedded knowledge base; give an NLI model path for file data")
        return KBEntailment(kb)
    return NLIEntailment(judge)
