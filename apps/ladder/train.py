"""Train a ladder-program generator: plain SFT baseline, RAFT (retrieval-augmented SFT), then graph-edit DPO.

    python -m apps.ladder.train                                        # the embedded default (configs/ladder/raft_dpo.yaml)
    python -m apps.ladder.train --config configs/ladder/tiny.yaml      # a few-minute smoke run
    python -m apps.ladder.train pref.curriculum=false run_dir=runs/ladder/no_curriculum raft.init_from=runs/ladder/raft_dpo/raft/model
    python -m apps.ladder.train --help                                 # every option with its default

Stage 1 (RAFT): each training prompt carries the raft.k most similar other training tasks with
their programs (BM25 over instructions and variable tables, apps/ladder/retrieval.py); SFT on the
reference program. The plain SFT baseline is the same without retrieved examples. Stage 2: the
RAFT model samples sample.n programs for pref.tasks training tasks; each task's pairs have the
reference program as chosen and, as rejected, graph edits of it that change its behaviour under
simulation (apps/ladder/negatives.py) and sampled programs that fail simulation; ordered by graph
edit distance to the reference, largest (easiest) first, when pref.curriculum; DPO from the RAFT
model through shared.loop. The run folder keeps every stage and is resumed stage by stage:
sft/model, raft/model, dpo/round_000/ (candidates, scored candidates, pairs, checkpoint). The
final model is named in final_model.json; `python -m apps.ladder.eval --run RUN` compares them all.
"""

from __future__ import annotations

import random
from dataclasses import asdict, replace
from pathlib import Path

from apps.ladder.config import LadderConfig
from apps.ladder.data import load_split
from apps.ladder.eval import score_rows, summary, write_programs
from apps.ladder.negatives import edited_negatives
from apps.ladder.prompts import task_prompt
from apps.ladder.retrieval import ExampleRetriever
from apps.ladder.score import Reference, score_program
from apps.ladder.tasks import Task
from shared.kit import finish_run, loop_errors, policy_at, preference_round_fit, run_sft, start_run
from shared.loop import LoopError, RecipeFunctions, run_loop
from shared.pairs import curriculum_order
from shared.records import Candidate, Pair

PROG = "python -m apps.ladder.train"


def sft_examples(tasks: list[Task], retriever: ExampleRetriever, k: int) -> list[tuple[list[dict], str]]:
    """(chat prompt, reference program) per task, with k retrieved examples in the prompt when k > 0."""
    return [(task_prompt(t, retriever.examples(t, k) if k else ()), t.program) for t in tasks]


def quick_eval(cfg: LadderConfig, folder: Path, heldout: list[Task], refs: dict, retriever, k: int, seed: int) -> dict:
    """Parse rate, exact match and equivalence of greedy programs on the first eval.quick held-out tasks ({} when 0)."""
    if not cfg.eval.quick:
        return {}
    tasks = heldout[:cfg.eval.quick]
    model, tok = policy_at(cfg.model, folder, seed, lora=False)
    texts = write_programs(model, tok, tasks, retriever, k, max_new_tokens=cfg.eval.max_new_tokens,
                           batch_size=cfg.eval.batch_size, seed=seed)
    return summary(score_rows(tasks, texts, refs))


def build_pairs(scored: list[Candidate], tasks: dict[str, Task], refs: dict[str, Reference], cfg: LadderConfig,
                seed: int) -> list[Pair]:
    """Chosen = the reference; rejected = behaviour-changing edits and failing samples; curriculum-ordered."""
    from apps.ladder.graph import edit_distance
    from apps.ladder.program import try_parse

    by_task: dict[str, list[Candidate]] = {}
    for c in scored:
        by_task.setdefault(c.prompt_id, []).append(c)
    pairs = []
    for tid, cands in by_task.items():
        task, ref = tasks[tid], refs[tid]
        prompt = cands[0].prompt
        rng = random.Random(f"{seed}:{tid}")
        rejected = [(kind, text) for kind, text in edited_negatives(ref, rng, cfg.pref.edits)]
        failing = list(dict.fromkeys(c.output.strip() for c in cands if not c.scores["equivalent"] and c.output.strip()))
        rejected += [("sampled", text) for text in failing[:cfg.pref.sampled]]
        for kind, text in rejected:
            program, _ = try_parse(text)
            distance = edit_distance(ref.program, program) if program is not None else None
            pairs.append(Pair(prompt, task.program, text, metadata={
                "task": tid, "kind": kind, "parsed": program is not None,
                "edit_distance": distance}))
    if not cfg.pref.curriculum:
        return pairs

    def difficulty(p: Pair) -> float:  # farther from the reference = easier; unparsable = easiest
        d = p.metadata["edit_distance"]
        return -1e9 if d is None else -float(d)

    return [p for stage in curriculum_order(pairs, difficulty, stages=None) for p in stage]


def run_dpo(cfg: LadderConfig, start: Path, train: list[Task], heldout: list[Task], retriever: ExampleRetriever,
            heldout_refs: dict) -> tuple[Path, dict]:
    """Stage 2 through shared.loop: sample from the RAFT model, score by simulation, build pairs, DPO, quick check."""
    pool = list(train)
    random.Random(cfg.seed).shuffle(pool)
    chosen_tasks = pool[:cfg.pref.tasks or len(pool)]
    tasks = {t.id: t for t in chosen_tasks}
    refs = {t.id: Reference.of(t, cfg.data.seed) for t in chosen_tasks}
    prompts = [task_prompt(t, retriever.examples(t, cfg.raft.k)) for t in chosen_tasks]
    s = cfg.sample

    def sample(round, checkpoint, schedule):
        from shared.generation import sample_texts

        model, tok = policy_at(cfg.model, checkpoint or start, round.seed, lora=False)
        print(f"dpo: sampling {s.n} programs for {len(chosen_tasks)} training tasks", flush=True)
        texts = sample_texts(model, tok, prompts, samples=s.n, temperature=schedule["temperature"], top_p=s.top_p,
                             max_new_tokens=s.max_new_tokens, batch_size=s.batch_size, seed=round.seed)
        return [Candidate(t.id, p, text, metadata={"sample": j})
                for t, p, outs in zip(chosen_tasks, prompts, texts) for j, text in enumerate(outs)]

    def score(round, candidates):
        out = []
        for c in candidates:
            sc = score_program(c.output, refs[c.prompt_id])
            out.append(Candidate(c.prompt_id, c.prompt, c.output,
                                 {k: float(sc[k]) for k in ("parsed", "exact", "equivalent", "outputs")},
                                 {**c.metadata, "reason": sc["reason"]}))
        return out

    def build(round, scored):
        pairs = build_pairs(scored, tasks, refs, cfg, round.seed)
        kinds: dict[str, int] = {}
        for p in pairs:
            kinds[p.metadata["kind"]] = kinds.get(p.metadata["kind"], 0) + 1
        print(f"dpo: {len(pairs)} pairs from {len(tasks)} tasks ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})",
              flush=True)
        if not pairs:
            raise LoopError("dpo: no pair could be built (no edit changed behaviour and every sample passed); "
                            "raise pref.tasks or pref.edits")
        return pairs

    def evaluate(round, checkpoint):
        return quick_eval(cfg, checkpoint, heldout, heldout_refs, retriever, cfg.raft.k, round.seed)

    # One pass over at most steps x batch_size pairs (a seeded draw that keeps the curriculum's order), so an
    # ordered run reaches the hardest pairs instead of stopping partway through the list.
    pref = replace(cfg.pref, max_pairs=cfg.pref.max_pairs or cfg.pref.steps * cfg.pref.batch_size)
    fit = preference_round_fit(cfg.model, pref, cfg.trainer, start, ordered=cfg.pref.curriculum)
    result = run_loop(RecipeFunctions(sample, score, build, fit, evaluate), cfg.run_dir / "dpo", cfg.pref.rounds,
                      schedule={"temperature": s.schedule(cfg.pref.rounds)}, seed=cfg.seed, initial_checkpoint=start,
                      config={"pref": {k: v for k, v in asdict(cfg.pref).items() if k != "rounds"},
                              "sample": {k: v for k, v in asdict(s).items() if k != "temperatures"},
                              "raft_k": cfg.raft.k, "data": asdict(cfg.data), "tasks": sorted(tasks)})
    return result.checkpoint, (result.metrics[-1] if result.metrics else {})


def load_data(cfg: LadderConfig):
    """Training and held-out tasks, the retriever over the training tasks and the held-out references."""
    train = load_split(cfg.data, "train")
    heldout = load_split(cfg.data, "heldout")
    if cfg.raft.k and len(train) < 2:
        raise ValueError("raft.k > 0 needs at least two training tasks to retrieve from")
    quick = heldout[:cfg.eval.quick]
    return train, heldout, ExampleRetriever(train), {t.id: Reference.of(t, cfg.data.seed) for t in quick}


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout, retriever, refs) = start_run(LadderConfig, argv, doc=__doc__, prog=PROG, prepare=load_data)
    metrics = {}
    if cfg.sft.steps or cfg.sft.init_from:
        sft = run_sft(cfg.run_dir, cfg.model, cfg.sft, cfg.trainer, cfg.seed,
                      lambda: sft_examples(train, retriever, 0), f"from {len(train)} tasks (plain prompts)")
        metrics["sft"] = quick_eval(cfg, sft, heldout, refs, retriever, 0, cfg.seed)
        _print("sft", metrics["sft"])
    raft = run_sft(cfg.run_dir, cfg.model, cfg.raft, cfg.trainer, cfg.seed,
                   lambda: sft_examples(train, retriever, cfg.raft.k),
                   f"from {len(train)} tasks ({cfg.raft.k} retrieved examples each)", name="raft")
    metrics["raft"] = quick_eval(cfg, raft, heldout, refs, retriever, cfg.raft.k, cfg.seed)
    _print("raft", metrics["raft"])
    model = raft
    if cfg.pref.steps:
        with loop_errors(PROG):
            model, metrics["raft_dpo"] = run_dpo(cfg, raft, train, heldout, retriever, refs)
        _print("raft_dpo", metrics["raft_dpo"])
    return finish_run(cfg.run_dir, model, {"final_model": str(model), "raft_k": cfg.raft.k, "heldout": metrics})


def _print(name: str, m: dict[str, float]) -> None:
    if m:
        print(f"held-out ({name}): " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)


if __name__ == "__main__":
    main()
