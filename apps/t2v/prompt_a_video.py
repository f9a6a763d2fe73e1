"""Prompt-A-Video: align a prompt booster to the text-to-video model's preferences (Ji et al.; jiyt17/Prompt-A-Video).

Stages (run folder of `method: prompt_a_video`; each skipped when a rerun finds it complete):
1. Reward-guided evolution (SFT data): for each training request, `pav.iterations` times, the
   booster proposes `pav.rewrites_per_iteration` rewrites, seeing the request and its best
   `pav.shown` rewrites so far with their rewards; each rewrite's video is scored against the
   request (rewrite_reward.py). The paper's proposer is GPT-4; here the booster samples its own
   (temperature rewrite.temperature). A request whose best rewrite clears every threshold stops early.
   The best usable rewrite per request becomes an SFT target (with `pav.require_gain`, only when its
   reward beats the request's own). Files: booster/evolution/original.jsonl (each request drawn as
   it is), iter_NN.jsonl (every rewrite, its scores and video), sft_examples.jsonl.
2. Booster SFT (LoRA, merged) on (request chat -> best rewrite): booster/sft/model.
3. DPO rounds through shared.loop (booster/dpo/round_NNN/): `pav.candidates` rewrites per request
   (temperature rewrite.temperature), `pav.videos_per_rewrite` videos each; the core's `threshold_pairs`: the best (then
   second, `pav.tries`) rewrite that clears every per-dimension threshold is chosen, each rewrite more
   than reward.margin below it is a rejected partner; sigmoid DPO, beta booster_dpo.beta (0.1), each
   round from the previous round's booster (booster_dpo.rounds; Prompt-A-Video: likely 2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from apps.t2v.booster import RewriteArgs, booster_messages, booster_spec, clean_rewrite, rewrite
from apps.t2v.data import VideoPrompt
from apps.t2v.rewrite_reward import RewriteScorer
from shared.atomic import write_json
from shared.generation import Sampled
from shared.kit import PreferenceArgs, SFTArgs, preference_round_fit
from shared.kit.stages import run_sft
from shared.loop import LoopError, RecipeFunctions, run_loop
from shared.models import ModelSpec, load_policy
from shared.models.saved import is_complete
from shared.pairs import threshold_pairs
from shared.records import Candidate, read_jsonl, write_jsonl
from shared.training import TrainerArgs


@dataclass
class PromptAVideoArgs:
    """Prompt-A-Video's data and rounds (rewrite: how rewrites are sampled; reward: how they are scored).

    Attributes:
        prompts_per_category: generated training requests per category (data.train_prompts replaces them).
        heldout_per_category: generated held-out requests per category for the evaluation (data.heldout_prompts
            replaces them).
        plain: probability that a generated request uses the caption's own word (colour, shape, size, motion, ...).
        iterations: reward-guided evolution iterations (Prompt-A-Video: up to 8).
        rewrites_per_iteration: rewrites proposed per request and iteration (Prompt-A-Video: 3).
        shown: best rewrites so far shown to the booster (Prompt-A-Video: 3).
        require_gain: keep a request's best rewrite as an SFT target only when it beats the request's own reward.
        candidates: rewrites per request for DPO (Prompt-A-Video: 5).
        videos_per_rewrite: videos drawn per rewrite in evolution and DPO, its scores averaged (Prompt-A-Video: 1).
        tries: the chosen rewrite is the first of the top `tries` that clears every threshold (Prompt-A-Video: 2).
    """

    prompts_per_category: int = 16
    heldout_per_category: int = 8
    plain: float = 0.3
    iterations: int = 3
    rewrites_per_iteration: int = 3
    shown: int = 3
    require_gain: bool = True
    candidates: int = 5
    videos_per_rewrite: int = 1
    tries: int = 2


def video_seed(seed: int, request_index: int) -> int:
    """The video seed of every rewrite of one request (common random numbers within a stage)."""
    return (15_485_863 * seed + 7_919 * request_index) % (2**31)


class Evolution:
    """Reward-guided evolution of rewrites (stage 1 of the module docstring)."""

    def __init__(self, folder: Path, requests: Sequence[VideoPrompt], scorer: RewriteScorer, args: PromptAVideoArgs,
                 rewrite_args: RewriteArgs, seed: int):
        self.folder, self.requests, self.scorer, self.args, self.rewrite_args, self.seed = (
            folder, list(requests), scorer, args, rewrite_args, seed)

    def _score(self, indices: list[int], texts: list[Sampled], tag: str) -> list[dict[str, Any]]:
        videos = [self.folder / "videos" / f"{tag}_{i:04d}_{n}.npy" for n, i in enumerate(indices)]
        scores = self.scorer.score([self.requests[i] for i in indices], texts,
                                   [video_seed(self.seed, i) for i in indices], videos)
        return [{"request_index": i, "request": self.requests[i].prompt, "rewrite": clean_rewrite(t.text), "raw": t.text,
                 "finished": t.finished, "tokens": t.tokens, "scores": s,
                 "videos": [str(p.relative_to(self.folder)) for p in self.scorer.video_paths(v)] if s["valid"] else []}
                for i, t, s, v in zip(indices, texts, scores, videos)]

    def original(self) -> list[dict[str, Any]]:
        """Each request drawn as it is (the reward a rewrite must beat)."""
        path = self.folder / "original.jsonl"
        if path.is_file():
            return read_jsonl(path)
        rows = self._score(list(range(len(self.requests))), [Sampled(r.prompt, True, 0) for r in self.requests], "original")
        write_jsonl(path, rows)
        return rows

    def run(self, model, tokenizer) -> list[dict[str, Any]]:
        """Every iteration's rewrites (completed iterations are read back); returns all rows."""
        rows: list[dict[str, Any]] = []
        for t in range(1, self.args.iterations + 1):
            path = self.folder / f"iter_{t:02d}.jsonl"
            if path.is_file():
                rows += read_jsonl(path)
                continue
            for later in range(t + 1, self.args.iterations + 1):  # built on a history that is being redone
                (self.folder / f"iter_{later:02d}.jsonl").unlink(missing_ok=True)
            best = self.best(rows)
            active = [i for i in range(len(self.requests)) if i not in best or not self.scorer.clears(best[i]["scores"])]
            if not active:
                write_jsonl(path, [])
                continue
            shown = [self.top(rows, i, self.args.shown) for i in active]
            k = self.args.rewrites_per_iteration
            sampled = rewrite(model, tokenizer, [self.requests[i].prompt for i in active], self.rewrite_args, samples=k,
                              seed=self.seed * 1_000 + t, shown=shown)
            new = self._score([i for i in active for _ in range(k)], [s for row in sampled for s in row], f"iter{t:02d}")
            valid = sum(r["scores"]["valid"] for r in new)
            print(f"evolution iteration {t}: {len(new)} rewrites for {len(active)} requests, {valid:.0f} usable", flush=True)
            write_jsonl(path, new)
            rows += new
        return rows

    @staticmethod
    def best(rows: Sequence[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Each request's best usable rewrite (highest reward; the earliest on ties)."""
        out: dict[int, dict[str, Any]] = {}
        for r in rows:
            if r["scores"]["valid"] and (r["request_index"] not in out
                                         or r["scores"]["reward"] > out[r["request_index"]]["scores"]["reward"]):
                out[r["request_index"]] = r
        return out

    @staticmethod
    def top(rows: Sequence[dict[str, Any]], index: int, n: int) -> list[tuple[str, float]]:
        """Request `index`'s n best distinct usable rewrites so far as (text, reward), best first."""
        seen: dict[str, float] = {}
        for r in rows:
            if r["request_index"] == index and r["scores"]["valid"]:
                seen[r["rewrite"]] = max(seen.get(r["rewrite"], float("-inf")), r["scores"]["reward"])
        return sorted(seen.items(), key=lambda kv: -kv[1])[:n]

    def sft_examples(self, rows: Sequence[dict[str, Any]], original: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """(request chat, best rewrite) per request (TRL's prompt/completion layout), written to sft_examples.jsonl."""
        own = {r["request_index"]: r["scores"]["reward"] for r in original}
        examples = []
        for i, r in sorted(self.best(rows).items()):
            if self.args.require_gain and r["scores"]["reward"] <= own[i]:
                continue
            examples.append({"prompt": booster_messages(self.requests[i].prompt), "completion": r["rewrite"],
                             "reward": r["scores"]["reward"], "request_reward": own[i]})
        write_jsonl(self.folder / "sft_examples.jsonl", examples)
        return examples


def evolution_settings(requests: Sequence[VideoPrompt], scorer: RewriteScorer, args: PromptAVideoArgs,
                       rewrite_args: RewriteArgs, booster: ModelSpec, seed: int, video_model: str) -> dict[str, Any]:
    """Everything that shapes the evolution's rewrites and rewards (its files are reused only under the same)."""
    return {"pav": asdict(args), "rewrite": asdict(rewrite_args), "reward": asdict(scorer.reward),
            "videos_per_rewrite": scorer.videos, "booster": {k: getattr(booster, k) for k in ("source", "path", "dtype")},
            "video_model": video_model, "seed": seed, "requests": [r.prompt for r in requests]}


def check_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Record settings in folder/settings.json, or raise LoopError (one line) when the folder was made with others."""
    path = folder / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = [k for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k)]
        if changed:
            raise LoopError(f"{folder}: made with other settings ({', '.join(changed)} changed); use a new run_dir, "
                            "or delete the folder to redo it")
        return
    write_json(path, settings)


def run_booster_sft(run_dir: Path, requests: Sequence[VideoPrompt], scorer: RewriteScorer, args: PromptAVideoArgs,
                    rewrite_args: RewriteArgs, booster: ModelSpec, sft: SFTArgs, trainer: TrainerArgs, seed: int,
                    video_model: str = "") -> Path:
    """Evolution, then the booster's SFT on its best rewrites; returns the SFT booster folder."""
    folder = run_dir / "booster"
    if sft.init_from or is_complete(folder / "sft" / "model"):
        return run_sft(folder, booster, sft, trainer, seed, examples=lambda: [])
    evolution = Evolution(folder / "evolution", requests, scorer, args, rewrite_args, seed)
    check_settings(folder / "evolution", evolution_settings(requests, scorer, args, rewrite_args, booster, seed, video_model))
    original = evolution.original()
    model, tok = load_policy(booster_spec(booster, None, seed))
    rows = evolution.run(model, tok)
    del model
    examples = evolution.sft_examples(rows, original)
    gains = [e["reward"] - e["request_reward"] for e in examples]
    print(f"evolution: {len(examples)} SFT examples of {len(requests)} requests"
          + (f", mean reward gain over the request {sum(gains) / len(gains):.2f}" if gains else ""), flush=True)
    if not examples:
        raise LoopError("evolution found no rewrite better than its request for any request: no SFT data "
                        "(more pav.iterations or pav.rewrites_per_iteration, or pav.require_gain false)")
    return run_sft(folder, booster, sft, trainer, seed, examples=lambda: [(e["prompt"], e["completion"]) for e in examples],
                   what="(best evolved rewrites)")


def candidate_sampled(c: Candidate) -> Sampled:
    return Sampled(str(c.metadata["raw"]), bool(c.metadata["finished"]), int(c.metadata["tokens"]))


def run_booster_dpo(run_dir: Path, requests: Sequence[VideoPrompt], scorer: RewriteScorer, args: PromptAVideoArgs,
                    rewrite_args: RewriteArgs, booster: ModelSpec, dpo: PreferenceArgs, trainer: TrainerArgs,
                    sft_folder: Path, seed: int, video_model: str = ""):
    """The DPO rounds (stage 3 of the module docstring) through shared.loop; returns the LoopResult."""
    requests = list(requests)
    thresholds = {**scorer.reward.thresholds, "valid": 1.0}

    def sample(round, checkpoint, schedule) -> list[Candidate]:
        model, tok = load_policy(booster_spec(booster, str(checkpoint or sft_folder), round.seed))
        print(f"DPO round {round.index + 1}: {args.candidates} rewrites for each of {len(requests)} requests", flush=True)
        sampled = rewrite(model, tok, [r.prompt for r in requests], rewrite_args, samples=args.candidates, seed=round.seed)
        return [Candidate(prompt_id=str(i), prompt=booster_messages(requests[i].prompt), output=clean_rewrite(s.text),
                          metadata={"raw": s.text, "finished": s.finished, "tokens": s.tokens, "request_index": i, "k": k})
                for i, row in enumerate(sampled) for k, s in enumerate(row)]

    def score(round, candidates):
        indices = [int(c.metadata["request_index"]) for c in candidates]
        videos = [round.dir / "videos" / f"{i:04d}_{c.metadata['k']}.npy" for i, c in zip(indices, candidates)]
        scores = scorer.score([requests[i] for i in indices], [candidate_sampled(c) for c in candidates],
                              [video_seed(round.seed, i) for i in indices], videos)
        return [Candidate(c.prompt_id, c.prompt, c.output, scores=s, metadata=c.metadata) for c, s in zip(candidates, scores)]

    def build(round, scored):
        pairs = threshold_pairs(scored, "reward", margin=scorer.reward.margin, per_dimension_thresholds=thresholds,
                                tries=args.tries)
        usable = sum(c.scores["valid"] for c in scored)
        print(f"DPO round {round.index + 1}: {len(pairs)} pairs; {usable:.0f} of {len(scored)} rewrites usable, "
              f"mean reward {sum(c.scores['reward'] for c in scored) / max(len(scored), 1):.2f}", flush=True)
        if not pairs:
            raise LoopError(f"DPO round {round.index + 1}: no pair from {len(scored)} rewrites: no request had a rewrite "
                            "clearing every reward.thresholds with another more than reward.margin below it "
                            "(lower reward.thresholds or reward.margin, or raise pav.candidates)")
        return pairs

    def evaluate_round(round, checkpoint):
        return {}

    fit = preference_round_fit(booster, dpo, trainer, sft_folder)
    return run_loop(RecipeFunctions(sample, score, build, fit, evaluate_round), run_dir / "booster" / "dpo", dpo.rounds,
                    seed=seed, initial_checkpoint=sft_folder,
                    config={"pav": asdict(args), "rewrite": asdict(rewrite_args), "reward": asdict(scorer.reward),
                            "videos_per_rewrite": scorer.videos, "video_model": video_model,
                            "requests": [r.prompt for r in requests]})
