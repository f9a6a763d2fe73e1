"""Loss demo: the one loop (sample -> score -> pair -> preference loss) on a tiny ordering task.

    python -m shared.loss_demo                 # sigmoid DPO, prints before/after on held-out prompts
    python -m shared.loss_demo --loss all      # every pairwise and strength-aware loss, one table

Task: a prompt is a set of 4 distinct digits; an output is one of their 24 orderings. The checkable
rule is "ascending order"; the reward counts ascending adjacent steps (0-3). The policy is a
log-linear model over features of (digit, position) and adjacent comparisons, so what it learns on
training prompts carries over to held-out ones. The reference is the initial policy. Everything
the demo builds (pairs as TRL-format JSONL, results) is written under the run folder.
"""

from __future__ import annotations

import argparse
import itertools
import random
from pathlib import Path

import torch

from shared.atomic import write_json
from shared.losses import PairTerms, get_loss, list_losses
from shared.pairs import best_vs_worst
from shared.records import Candidate, write_jsonl
from shared.rewards import RewardFunction

DIGITS, LENGTH = 10, 4
PERMS = list(itertools.permutations(range(LENGTH)))  # 24 orderings of a prompt's digits


class AscendingReward(RewardFunction):
    """Counts ascending adjacent steps in a space-separated digit string; anything else is invalid."""

    aspects = ("ascending",)

    def score(self, prompt, output, context):
        digits = [int(t) for t in output.split()]
        if sorted(digits) != sorted(prompt):
            raise ValueError("output is not an ordering of the prompt's digits")
        return {"ascending": float(sum(a < b for a, b in zip(digits, digits[1:])))}


def features(prompt: tuple[int, ...]) -> torch.Tensor:
    """Return (24, F) features of every ordering: one-hot (digit, position) and adjacent 'a < b' flags."""
    rows = []
    for perm in PERMS:
        seq = [prompt[i] for i in perm]
        onehot = torch.zeros(LENGTH, DIGITS)
        onehot[torch.arange(LENGTH), torch.tensor(seq)] = 1
        ascending = torch.tensor([float(a < b) for a, b in zip(seq, seq[1:])])
        rows.append(torch.cat([onehot.flatten(), ascending]))
    return torch.stack(rows)


def log_probs(theta: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Return (prompts, 24) log-probabilities of every ordering under the log-linear policy."""
    return torch.log_softmax(feats @ theta, dim=-1)


def make_prompts(n: int, rng: random.Random) -> list[tuple[int, ...]]:
    """Return n prompts of 4 distinct digits."""
    return [tuple(rng.sample(range(DIGITS), LENGTH)) for _ in range(n)]


def render(prompt: tuple[int, ...], perm_index: int) -> str:
    return " ".join(str(prompt[i]) for i in PERMS[perm_index])


def sample_candidates(theta, prompts, feats, samples, rng_torch, reward) -> list[Candidate]:
    """Sample `samples` orderings per prompt from the policy and score them."""
    with torch.no_grad():
        probs = log_probs(theta, feats).exp()
    picks = torch.multinomial(probs, samples, replacement=True, generator=rng_torch)
    outputs = [[render(p, int(i)) for i in row] for p, row in zip(prompts, picks)]
    flat_prompts = [p for p, row in zip(prompts, outputs) for _ in row]
    flat_outputs = [o for row in outputs for o in row]
    scores = reward(flat_prompts, flat_outputs)
    return [
        Candidate(prompt_id=str(idx // samples), prompt=" ".join(map(str, p)), output=o, scores=s,
                  metadata={"perm": int(picks[idx // samples, idx % samples])})
        for idx, (p, o, s) in enumerate(zip(flat_prompts, flat_outputs, scores))
    ]


def evaluate(theta, feats) -> dict[str, float]:
    """Return the held-out rule-following rate (greedy output ascending) and expected reward."""
    with torch.no_grad():
        lp = log_probs(theta, feats)
    ascending = feats[:, :, LENGTH * DIGITS:].sum(-1)  # the last features are the ascending-step flags
    greedy = lp.argmax(-1)
    follows = (ascending.gather(1, greedy[:, None]).squeeze(1) == LENGTH - 1).float().mean().item()
    expected = (lp.exp() * ascending).sum(-1).mean().item()
    return {"rule_rate": follows, "expected_reward": expected}


def train(loss: str, *, seed: int, steps: int, lr: float, beta: float | None, run_dir: Path | None,
          train_prompts: int = 300, heldout_prompts: int = 300, samples: int = 4) -> dict:
    """Run sample -> score -> pair -> fit once with `loss`; return before/after held-out metrics."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    train_p, held_p = make_prompts(train_prompts, rng), make_prompts(heldout_prompts, rng)
    train_f = torch.stack([features(p) for p in train_p])
    held_f = torch.stack([features(p) for p in held_p])
    theta_ref = torch.randn(train_f.size(-1), generator=gen) * 0.5
    theta = theta_ref.clone().requires_grad_(True)
    before = evaluate(theta_ref, held_f)

    candidates = sample_candidates(theta_ref, train_p, train_f, samples, gen, AscendingReward())
    pairs = best_vs_worst(candidates, score="ascending")
    if run_dir is not None:
        write_jsonl(run_dir / "candidates.jsonl", candidates)
        write_jsonl(run_dir / f"pairs-{loss}.jsonl", pairs)
    idx = torch.tensor([int(p.metadata["prompt_id"]) for p in pairs])
    chosen = torch.tensor([PERMS.index(tuple(int(x) for x in _perm_of(p, "chosen", train_p))) for p in pairs])
    rejected = torch.tensor([PERMS.index(tuple(int(x) for x in _perm_of(p, "rejected", train_p))) for p in pairs])
    strength = torch.sigmoid(torch.tensor([p.margin for p in pairs], dtype=torch.float32))
    ones = torch.ones(len(pairs))
    with torch.no_grad():
        ref_lp = log_probs(theta_ref, train_f[idx])
    ref_w, ref_l = ref_lp.gather(1, chosen[:, None]).squeeze(1), ref_lp.gather(1, rejected[:, None]).squeeze(1)

    spec = get_loss(loss)
    hparams = {} if beta is None or "beta" not in spec.hyperparameters() else {"beta": beta}
    optimizer = torch.optim.Adam([theta], lr=lr)
    history = []
    for _ in range(steps):
        lp = log_probs(theta, train_f[idx])
        w, l = lp.gather(1, chosen[:, None]).squeeze(1), lp.gather(1, rejected[:, None]).squeeze(1)
        terms = PairTerms(w, l, ref_w, ref_l, chosen_lengths=ones, rejected_lengths=ones,
                          chosen_nll=-w.mean(), strength=strength)
        out = spec(terms, **hparams)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        history.append(out.loss.item())
    after = evaluate(theta.detach(), held_f)
    accuracy = (out.chosen_rewards > out.rejected_rewards).float().mean().item()
    return {"loss": loss, "pairs": len(pairs), "before": before, "after": after,
            "train_reward_accuracy": accuracy, "final_loss": history[-1]}


def _perm_of(pair, side: str, prompts) -> list[int]:
    """Map a pair side's rendered digits back to positions in its prompt."""
    prompt = prompts[int(pair.metadata["prompt_id"])]
    digits = [int(t) for t in getattr(pair, side).split()]
    return [prompt.index(d) for d in digits]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss", default="sigmoid", help="a registered pairwise/strength loss, or 'all' (default: sigmoid)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="random seeds (default: 0 1 2)")
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps (default: 150)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default: 0.05)")
    parser.add_argument("--beta", type=float, default=None, help="override each loss's default beta")
    parser.add_argument("--run-dir", default="runs/demo", help="where pairs and results are written (default: runs/demo)")
    args = parser.parse_args(argv)
    names = list_losses("pairwise") + list_losses("strength") if args.loss == "all" else [args.loss]
    for name in names:
        if get_loss(name).family not in ("pairwise", "strength"):
            parser.error(f"--loss {name}: the demo trains pairwise or strength-aware losses only")
    run_dir = Path(args.run_dir)
    results = []
    print(f"{'loss':<20}{'rule rate before':>18}{'after':>16}{'reward acc':>12}   (held-out, mean ± sd over seeds {args.seeds})")
    for name in names:
        runs = [train(name, seed=s, steps=args.steps, lr=args.lr, beta=args.beta, run_dir=run_dir / f"seed{s}")
                for s in args.seeds]
        b = torch.tensor([r["before"]["rule_rate"] for r in runs])
        a = torch.tensor([r["after"]["rule_rate"] for r in runs])
        acc = sum(r["train_reward_accuracy"] for r in runs) / len(runs)
        sd = lambda t: t.std().item() if len(t) > 1 else 0.0  # noqa: E731
        print(f"{name:<20}{b.mean():>11.3f} ± {sd(b):.3f}{a.mean():>9.3f} ± {sd(a):.3f}{acc:>12.3f}")
        results.extend(runs)
    write_json(run_dir / "results.json", results)
    print(f"wrote {run_dir}/results.json and per-seed candidates/pairs JSONL")
    return results


if __name__ == "__main__":
    main()
