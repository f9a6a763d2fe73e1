"""End to end at CI size: SFT + one PLaID++ round on a tiny model and four small embedded structures.

The tiny byte-level model memorises four structures' Wyckoff texts; at temperature 1.0 its samples
mix intact texts (parsed, on the hull) and corrupted ones (no structure), which gives the basic
PLaID++ rule structures on both sides of the 0.08 eV/atom threshold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from apps.crystal.eval import main as eval_main
from apps.crystal.infer import CrystalGenerator, parse_condition
from apps.crystal.train import main
from shared.models import load_policy, resolve_model
from shared.records import Candidate, Pair, read_jsonl
from shared.serving import create_app, running_server


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crystal") / "tiny"
    args = ["--config", "configs/crystal/tiny.yaml", f"run_dir={folder}", f"reward.cache_dir={folder.parent / 'cache'}"]
    summary = main(args)
    return folder, args, summary


@pytest.mark.slow
def test_plaid_round_builds_pairs_trains_and_evaluates(run):
    folder, args, summary = run
    pairs = read_jsonl(folder / "plaid" / "round_000" / "pairs.jsonl", Pair)
    # The same text can come from two prompts; a pair's sides are the candidates of its own prompt.
    scored = {(c.prompt_id, c.output): c for c in read_jsonl(folder / "plaid" / "round_000" / "scored.jsonl", Candidate)}
    assert pairs, "no PLaID++ pairs were built"
    for p in pairs:
        pid = next(k for k, c in scored if c == p.chosen and scored[(k, c)].prompt == p.prompt)
        chosen, rejected = scored[(pid, p.chosen)], scored[(pid, p.rejected)]
        if pid == "unconditional":
            assert chosen.scores["e_hull"] < 0.08 <= rejected.scores.get("e_hull", float("inf"))
        else:  # space-group rules: the chosen one is within the threshold and, against a stable one, matches
            assert chosen.scores["e_hull"] <= 0.08
    assert set(summary["rounds"]) == {"0", "1"}
    for m in summary["rounds"].values():
        assert 0.0 <= m["sun"] <= m["metastable"] + 1e-9 <= 1.0 + 1e-9 and m["sun_low"] <= m["sun"] <= m["sun_high"]
    # training ends with the core's results table of SFT and the round, with the run's seed
    table = json.loads((folder / "eval" / "results.json").read_text())
    assert list(table["models"]) == ["sft", "dpo_round1"] and table["seeds"] == [0]
    for name, r in table["models"].items():
        assert r["metrics"]["sun"]["value"] == summary["rounds"]["0" if name == "sft" else "1"]["sun"]
    assert (folder / "eval" / "metric_sun.png").stat().st_size > 1000
    assert (folder / "eval" / "results.csv").read_text().count("\n") == 1 + 2 * 8
    assert (folder / "plaid" / "round_000" / "score_stats.json").is_file()
    final = json.loads((folder / "final_model.json").read_text())
    assert (folder / "plaid") in __import__("pathlib").Path(final["path"]).parents
    # A rerun finds every stage complete and returns the same result without retraining.
    assert main(args)["rounds"] == summary["rounds"]


@pytest.mark.slow
def test_eval_table_and_cifs(run):
    folder, _, _ = run
    results = eval_main(["--run", str(folder), "--seeds", "0", "1", "--unconditional", "4"])
    assert set(results["models"]) == {"sft", "dpo_round1"}
    assert set(results["models"]["sft"]["per_seed"]) == {"0", "1"}
    assert results["models"]["sft"]["metrics"]["valid"]["n"] == 2 * 4  # pooled over both seeds
    table = (folder / "eval" / "unconditional_4" / "table.md").read_text()
    assert "| sft |" in table and "S.U.N. per seed" in table
    samples = read_jsonl(folder / "eval" / "unconditional_4" / "sft" / "seed_0" / "samples.jsonl", Candidate)
    assert len(samples) == 4 + 2  # unconditional + one held-out space group x 2


@pytest.mark.slow
def test_serving_returns_cif(run):
    folder, _, _ = run
    spec, _ = resolve_model(str(folder))
    generator = CrystalGenerator(*load_policy(spec), max_new_tokens=160)
    with running_server(create_app(generator)) as url:
        request = urllib.request.Request(f"{url}/generate", method="POST", headers={"content-type": "application/json"},
                                         data=json.dumps({"prompts": ["", "spacegroup=194", "spacegroup=999"], "params": {"seed": 0}}).encode())
        with urllib.request.urlopen(request, timeout=60) as reply:
            outputs = json.loads(reply.read())["outputs"]
    assert len(outputs) == 3
    bad = outputs.pop()
    assert bad["text"] is None and "1 to 230" in bad["reason"]  # its batch neighbours still got structures
    for out in outputs:
        assert set(out) == {"text", "cif", "formula", "spacegroup", "reason"}
        assert (out["cif"] is None) == (out["reason"] is not None)
    assert any(out["cif"] and out["cif"].startswith("# generated using pymatgen") for out in outputs)


@pytest.mark.slow
def test_constrained_decoding_in_eval_and_serving(run):
    from apps.crystal.grammar import WyckoffGrammar
    from shared.constrained import walk

    folder, _, _ = run
    grammar = WyckoffGrammar(max_atoms=12)

    def follows_format(text):
        return walk(grammar, text) is not None

    eval_main(["--run", str(folder), "--seeds", "0", "--unconditional", "4", "--decoding", "constrained"])
    assert "format-constrained" in (folder / "eval" / "unconditional_4" / "constrained" / "table.md").read_text()
    samples = read_jsonl(folder / "eval" / "unconditional_4" / "constrained" / "sft" / "seed_0" / "samples.jsonl",
                         Candidate)
    assert len(samples) == 6 and all(follows_format(c.output) for c in samples)
    spec, _ = resolve_model(str(folder))
    generator = CrystalGenerator(*load_policy(spec), max_new_tokens=160, constrained=True, max_atoms=12)
    outputs = generator.generate(["", "spacegroup=194"], temperature=1.0, seed=3)
    assert all(follows_format(o["text"]) for o in outputs)


def test_condition_parsing():
    assert parse_condition("") == (None, None)
    assert parse_condition("formula=Cl4Na4, spacegroup=225") == ("NaCl", 225)
    for bad, reason in [("spacegroup=999", "1 to 230"), ("colour=red", "unknown key"), ("formula", "key=value"),
                        ("formula=Xx9", "not a chemical formula")]:
        with pytest.raises(ValueError, match=reason):
            parse_condition(bad)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "apps.crystal.train", *args], capture_output=True, text=True, timeout=300)


def test_bad_config_key_and_bad_cif_folder_are_one_line_errors(tmp_path):
    out = _cli("--config", "configs/crystal/tiny.yaml", "pref.temperature=0.7", f"run_dir={tmp_path / 'a'}")
    assert out.returncode == 2 and "pref.temperature" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    (tmp_path / "cifs").mkdir()
    (tmp_path / "cifs" / "bad.cif").write_text("data_bad\n_cell_length_a x\n")
    out = _cli("--config", "configs/crystal/tiny.yaml", f"data.source={tmp_path / 'cifs'}", f"run_dir={tmp_path / 'b'}")
    assert out.returncode == 2 and "bad.cif" in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_round_without_pairs_stops_with_one_line_and_keeps_round_zero(run, tmp_path, capsys):
    folder, _, _ = run
    # At temperature 1.5 the tiny model's texts fall apart: nothing parses, so no pair can be built.
    args = ["--config", "configs/crystal/tiny.yaml", f"sft.init_from={folder / 'sft' / 'model'}", "sample.temperatures=[1.5]",
            f"run_dir={tmp_path / 'run'}", f"reward.cache_dir={folder.parent / 'cache'}"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no preference pairs from 9 samples" in err and "scored.jsonl" in err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results["rounds"]) == {"0"} and results["stopped"]
    assert (tmp_path / "run" / "plaid" / "round_000" / "scored.jsonl").is_file()  # what was generated is kept
