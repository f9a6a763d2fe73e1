"""Translation quality with sacrebleu: corpus BLEU and chrF over every reference of each sentence, with signatures."""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF

from apps.simulmt.language import SentencePair


def reference_streams(pairs: Sequence[SentencePair]) -> list[list[str]]:
    """sacrebleu's reference streams: stream r holds every sentence's r-th reference ("" where it has fewer: ignored)."""
    width = max(len(p.references) for p in pairs)
    return [[p.references[r] if r < len(p.references) else "" for p in pairs] for r in range(width)]


def corpus_quality(hypotheses: Sequence[str], pairs: Sequence[SentencePair]) -> dict:
    """{"BLEU", "chrF", "BLEU_signature", "chrF_signature"} of the hypotheses (sacrebleu defaults: 13a, chrF2)."""
    if len(hypotheses) != len(pairs):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(pairs)} sentences")
    refs = reference_streams(pairs)
    bleu, chrf = BLEU(force=True), CHRF()  # references are tokenized on purpose (" ." and " ,")
    return {"BLEU": bleu.corpus_score(list(hypotheses), refs).score, "chrF": chrf.corpus_score(list(hypotheses), refs).score,
            "BLEU_signature": str(bleu.get_signature()), "chrF_signature": str(chrf.get_signature())}
