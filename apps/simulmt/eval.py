"""Evaluate simultaneous translators: quality (BLEU, chrF) against latency (AL, LAAL, AP, DAL) on held-out sentences.

    python -m apps.simulmt.eval --run runs/simulmt/simulpl                  # wait-k, SFT, DPO, SimulPL of one run
    python -m apps.simulmt.eval --run runs/simulmt/seed0 --run runs/simulmt/seed1 --run runs/simulmt/seed2
    python -m apps.simulmt.eval --run RUN --model mine=path/to/model --sentences 100

Rows: wait-k for each eval.wait_k (the run's SFT model under <translate>, the baseline), then
each model's own read/write policy at each eval.thresholds tau (read when P(<read>) >= tau): SFT,
the plain-DPO ablation, SimulPL, and every --model. Several --run folders (the same recipe trained
with different seeds) are the table's seeds: each row pools their sentences, and intervals are
bootstrap over sentences (a sentence's rows from every run resampled together). Latency is in
source words, |Y| the first reference's length (SimulEval's defaults); quality is sacrebleu's
corpus BLEU and chrF over every reference, signatures printed. Greedy decoding.

Written to --out (default <first run>/eval): table.md and results.json/csv (sentence-level
chrF and latency with intervals, from shared.evaluation), corpus.md and corpus.json (corpus BLEU
and chrF per row and run), quality_latency.png (BLEU against AL and LAAL, a curve per system),
and every translation with its delays under hyps/.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

from apps.simulmt.config import SimulConfig
from apps.simulmt.data import load_split
from apps.simulmt.decode import Setting, SimultaneousDecoder
from apps.simulmt.language import SentencePair
from apps.simulmt.latency import latency_scores
from apps.simulmt.preferences import key_points, quality
from apps.simulmt.quality import corpus_quality
from shared.atomic import write_json, write_text
from shared.config import ConfigError, load_yaml
from shared.evaluation import Metric, evaluate_models
from shared.kit import eval_parser, fail, named, set_threads
from shared.models import load_policy, resolve_model
from shared.records import write_jsonl

PROG = "python -m apps.simulmt.eval"
METRICS = [Metric("chrF", "sent. chrF", cluster="id"), Metric("key_points", "key points", cluster="id"),
           Metric("AL", cluster="id"), Metric("LAAL", cluster="id"), Metric("AP", cluster="id"),
           Metric("DAL", cluster="id"), Metric("truncated", cluster="id")]


def sentence_rows(pairs: list[SentencePair], trajs, system: str, setting: Setting) -> list[dict]:
    """One row per sentence: the hypothesis, its delays, sentence chrF, key points and SimulEval's latencies."""
    rows = []
    for pair, traj in zip(pairs, trajs):
        lat = latency_scores(traj.delays, len(pair.source), len(pair.reference.split()))
        rows.append({"id": pair.id, "system": system, "setting": setting.name, "source": " ".join(pair.source),
                     "hypothesis": traj.text, "reference": pair.reference, "delays": traj.delays,
                     "chrF": 100 * quality(traj.text, pair.references), "key_points": key_points(traj.target, pair),
                     **lat, "truncated": float(traj.truncated)})
    return rows


def systems_of(run: Path) -> dict[str, str]:
    """The run's model folders by system: sft and each trained method (final_model.json's models)."""
    final = json.loads((run / "final_model.json").read_text())
    return {name: folder for name, folder in final.get("models", {"simulpl": final["path"]}).items()}


def plot_curves(corpus: dict[str, dict], out: Path) -> Path:
    """BLEU against AL and LAAL: per system a solid line over its thresholds and wait-k, dashed over its minimum lags."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[tuple[str, bool], list[dict]] = {}
    for row in corpus.values():
        series.setdefault((row["system"], ",lag=" in row["setting"]), []).append(row)
    colors = {}
    for ax, latency in zip(axes, ("AL", "LAAL")):
        for (system, lagged), rows in series.items():
            rows = sorted(rows, key=lambda r: r[latency])
            color = colors.setdefault(system, f"C{len(colors)}")
            ax.plot([r[latency] for r in rows], [r["BLEU"] for r in rows], color=color,
                    marker="x" if lagged else "o", linestyle="--" if lagged else "-",
                    label=f"{system} (tau=0.9, min lag)" if lagged else system)
        ax.set_xlabel(f"{latency} (source words)")
        ax.set_ylabel("BLEU")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Quality-latency curves on held-out sentences")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def corpus_markdown(corpus: dict[str, dict], signatures: dict[str, str], runs: int) -> str:
    lines = [f"Corpus BLEU and chrF (sacrebleu) with sentence-mean latency, mean over {runs} run(s) "
             "(min-max across runs in brackets when several).", "",
             "| row | BLEU | chrF | AL | LAAL | AP | DAL |", "|---|---|---|---|---|---|---|"]
    for name, r in corpus.items():
        spread = lambda k: f" [{min(r[k + '_runs']):.2f}, {max(r[k + '_runs']):.2f}]" if runs > 1 else ""  # noqa: E731
        lines.append(f"| {name} | {r['BLEU']:.2f}{spread('BLEU')} | {r['chrF']:.2f}{spread('chrF')} | {r['AL']:.2f} | "
                     f"{r['LAAL']:.2f} | {r['AP']:.3f} | {r['DAL']:.2f} |")
    lines += ["", f"BLEU signature: `{signatures['BLEU']}`", f"chrF signature: `{signatures['chrF']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = eval_parser(PROG, __doc__, run=False)
    parser.add_argument("--run", type=Path, action="append", default=[],
                        help="a training run folder (repeat for runs of the same recipe with other seeds)")
    parser.add_argument("--sentences", type=int, help="held-out sentences (default: all of the run's data.heldout)")
    parser.add_argument("--wait-k", type=int, nargs="+", help="wait-k baselines (default: the run's eval.wait_k)")
    parser.add_argument("--thresholds", type=float, nargs="+", help="read thresholds (default: the run's eval.thresholds)")
    parser.add_argument("--min-lags", type=int, nargs="*",
                        help="minimum lags at eval.lag_threshold (default: the run's eval.min_lags; none: no lag rows)")
    args = parser.parse_args(argv)
    try:
        cfg = load_yaml(SimulConfig, args.run[0] / "config.yaml") if args.run else SimulConfig()
        runs = [systems_of(run) for run in args.run]
        extra = dict(named(m) for m in args.model)
        if not runs and not extra:
            raise ValueError("nothing to evaluate: give --run or --model NAME=SOURCE")
        pairs = load_split(cfg.data, "heldout")[: args.sentences or None]
        lags = cfg.eval.min_lags if args.min_lags is None else args.min_lags
        settings = ([Setting("wait_k", k) for k in (args.wait_k or cfg.eval.wait_k)],
                    [Setting("threshold", t) for t in (args.thresholds or cfg.eval.thresholds)]
                    + [Setting("threshold", cfg.eval.lag_threshold, lag) for lag in lags])
        resolved = {name: resolve_model(src)[0] for name, src in extra.items()}
    except (ValueError, OSError, KeyError, ConfigError) as exc:  # a bad setting, file or run folder
        fail(PROG, exc)
    set_threads()
    out_dir = args.out or ((args.run[0] / "eval") if args.run else Path("runs/simulmt/eval"))
    seeds = list(range(len(runs))) or [0]
    rows_models: dict[str, tuple[str, Setting]] = {}
    if runs:
        for s in settings[0]:
            rows_models[f"{s.name} (SFT)"] = ("sft", s)
    systems = [n for n in ("sft", "dpo", "simulpl") if runs and n in runs[0]] + list(extra)
    for system in systems:
        for s in settings[1]:
            rows_models[f"{system.upper() if system != 'simulpl' else 'SimulPL'} {s.name}"] = (system, s)
    corpus: dict[str, dict] = {}
    signatures: dict[str, str] = {}
    decoders: dict[tuple[str, int], SimultaneousDecoder] = {}

    def decoder(system: str, seed: int) -> SimultaneousDecoder:
        if (system, seed) not in decoders:
            spec = resolved[system] if system in resolved else resolve_model(runs[seed][system])[0]
            model, tok = load_policy(spec)
            d = cfg.decode
            decoders[(system, seed)] = SimultaneousDecoder(model, tok, max_ratio=d.max_ratio, max_extra=d.max_extra,
                                                           batch_size=d.batch_size)
        return decoders[(system, seed)]

    def score(name: str, model: tuple[str, Setting], seed: int) -> list[dict]:
        system, setting = model
        trajs = decoder(system, seed).decode([p.source for p in pairs], setting)
        rows = sentence_rows(pairs, trajs, system, setting)
        write_jsonl(out_dir / "hyps" / f"{name.replace(' ', '_').replace('=', '')}.run{seed}.jsonl", rows)
        q = corpus_quality([t.text for t in trajs], pairs)
        signatures.update(BLEU=q["BLEU_signature"], chrF=q["chrF_signature"])
        entry = corpus.setdefault(name, {"system": "wait-k" if setting.kind == "wait_k" else system, "setting": setting.name})
        for key, value in [("BLEU", q["BLEU"]), ("chrF", q["chrF"])] + [(k, fmean(r[k] for r in rows)) for k in
                                                                        ("AL", "LAAL", "AP", "DAL")]:
            entry.setdefault(key + "_runs", []).append(value)
            entry[key] = fmean(entry[key + "_runs"])
        return rows

    level = args.level or cfg.eval.level
    evaluate_models(rows_models, score, METRICS, seeds=seeds, out_dir=out_dir,
                    resamples=args.resamples or cfg.eval.resamples, level=level, headline="chrF",
                    caption=f"{len(pairs)} held-out sentences ({cfg.data.heldout}) x {len(seeds)} run(s); sentence chrF, "
                            f"key points and SimulEval latency in source words; {level:.0%} bootstrap intervals over "
                            "sentences. Corpus BLEU/chrF: corpus.md.",
                    info={name: {"system": m[0], "setting": m[1].name} for name, m in rows_models.items()},
                    settings={"sentences": len(pairs), "runs": [str(r) for r in args.run], "models": extra})
    text = corpus_markdown(corpus, signatures, len(seeds))
    write_text(out_dir / "corpus.md", text)
    write_json(out_dir / "corpus.json", {"rows": corpus, "signatures": signatures})
    plot_curves(corpus, out_dir / "quality_latency.png")
    print(text, flush=True)


if __name__ == "__main__":
    main()
