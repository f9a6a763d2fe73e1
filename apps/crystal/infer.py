"""Generate crystal structures with a trained (or the base) model, or serve them as CIF over HTTP.

    python -m apps.crystal.infer --model runs/crystal/plaid --spacegroup 225 --samples 4 --out cifs/
    python -m apps.crystal.infer serve --model runs/crystal/plaid --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["spacegroup=225", "formula=NaCl", ""], "params": {"temperature": 0.7, "seed": 0}}'

A prompt names the condition: "" (unconditional), "spacegroup=N", "formula=X" or
"formula=X,spacegroup=N". Each output is {"text": the Wyckoff text, "cif": the structure as CIF or
null, "formula", "spacegroup" (of the decoded structure, spglib), "reason": why the text is not a
crystal, or null}. Validity and energies are the eval's business (python -m apps.crystal.eval).

The server also speaks OpenAI's API (/v1/models, /v1/chat/completions, /v1/completions, streaming
included) for the model itself: the raw Wyckoff text, format-constrained when the server was
started constrained. The model name is the --model folder's name (--served-model-name).

--decoding constrained samples through the Wyckoff-format automaton (apps.crystal.grammar), free
samples plainly; the default (auto) follows the training run's sample.constrained when --model is
a run folder, else free.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from apps.crystal.grammar import format_constraint
from apps.crystal.prompts import prompt_text
from apps.crystal.reward import spacegroup_of
from apps.crystal.wyckoff import decode
from shared.atomic import write_text
from shared.models import load_policy, resolve_model
from shared.serving import HFTextGenerator
from shared.serving.cli import infer_parser, serve, serve_kwargs

PROG = "python -m apps.crystal.infer"


def parse_condition(text: str) -> tuple[str | None, int | None]:
    """Parse "", "spacegroup=N", "formula=X" or both (comma-separated); raise ValueError with a one-line reason."""
    formula, sg = None, None
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"condition {text!r}: expected key=value, got {part!r}")
        if key == "formula":
            from pymatgen.core import Composition, Element

            try:
                composition = Composition(value)
                if not all(Element.is_valid_symbol(str(e)) for e in composition.elements):
                    raise ValueError
                formula = composition.reduced_formula
            except Exception:  # pymatgen raises ValueError or its own errors on odd formulas
                raise ValueError(f"condition {text!r}: {value!r} is not a chemical formula") from None
        elif key in ("spacegroup", "sg"):
            if not value.isdigit() or not 1 <= int(value) <= 230:
                raise ValueError(f"condition {text!r}: spacegroup must be a number from 1 to 230, got {value!r}")
            sg = int(value)
        else:
            raise ValueError(f"condition {text!r}: unknown key {key!r} (formula, spacegroup)")
    return formula, sg


def describe(text: str) -> dict[str, Any]:
    """The served record of one generated text."""
    decoded = decode(text)
    if not decoded.ok:
        return {"text": text, "cif": None, "formula": None, "spacegroup": None, "reason": decoded.reason}
    s = decoded.structure
    return {"text": text, "cif": s.to(fmt="cif"), "formula": s.composition.reduced_formula,
            "spacegroup": spacegroup_of(s), "reason": None}


class CrystalGenerator:
    """Turns each condition into PLaID's prompt, generates, decodes the text and returns it with its CIF.

    `text_model` (the model itself, with the format constraint when constrained) is what the
    server's OpenAI routes serve.
    """

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 256, constrained: bool = False, max_atoms: int = 40):
        self.text_model = HFTextGenerator(model, tokenizer, max_new_tokens=max_new_tokens, chat=True, temperature=0.7,
                                          name="crystal", constraint=format_constraint(tokenizer, constrained, max_atoms))
        self.accepted_params = self.text_model.accepted_params
        self.name = "crystal"

    def generate(self, prompts: list[str], **params: Any) -> list[dict]:
        """One record per prompt; a bad condition gets a record with its reason (other prompts of the batch still run)."""
        conditions: list[tuple | str] = []
        for p in prompts:
            try:
                conditions.append(parse_condition(p))
            except ValueError as exc:
                conditions.append(str(exc))
        good = [c for c in conditions if not isinstance(c, str)]
        texts = iter(self.text_model.generate([prompt_text(f, sg) for f, sg in good], **params) if good else [])
        return [{"text": None, "cif": None, "formula": None, "spacegroup": None, "reason": c} if isinstance(c, str)
                else describe(next(texts)) for c in conditions]


def run_decoding(model: Path) -> tuple[bool, int]:
    """(sample.constrained, data.max_atoms) of the training run when `model` is a run folder, else (False, 40)."""
    if not (model / "config.yaml").is_file() or not (model / "final_model.json").is_file():
        return False, 40
    from apps.crystal.config import CrystalConfig
    from shared.config import load_yaml

    cfg = load_yaml(CrystalConfig, model / "config.yaml")
    return cfg.sample.constrained, cfg.data.max_atoms


def main(argv: list[str] | None = None) -> None:
    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv))
    parser.add_argument("--decoding", choices=["auto", "constrained", "free"], default="auto",
                        help="format-constrained or free sampling (auto: as the training run sampled)")
    parser.add_argument("--max-atoms", type=int, help="constrained decoding's cell size limit (default: the run's data.max_atoms, else 40)")
    if not serving:
        parser.add_argument("--spacegroup", type=int, help="requested space group number (1-230)")
        parser.add_argument("--formula", help="requested chemical formula")
        parser.add_argument("--samples", type=int, default=1)
        parser.add_argument("--temperature", type=float, default=0.7)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, help="write each decoded structure as CIF into this folder")
    args = parser.parse_args(rest)
    try:
        spec, _ = resolve_model(args.model)
        condition = "" if serving else ",".join(
            ([f"formula={args.formula}"] if args.formula else []) + ([f"spacegroup={args.spacegroup}"] if args.spacegroup else []))
        parse_condition(condition)
    except ValueError as exc:
        parser.error(str(exc))
    constrained, max_atoms = run_decoding(Path(args.model))
    if args.decoding != "auto":
        constrained = args.decoding == "constrained"
    model, tok = load_policy(spec)
    generator = CrystalGenerator(model, tok, max_new_tokens=args.max_new_tokens, constrained=constrained,
                                 max_atoms=args.max_atoms or max_atoms)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    records = generator.generate([condition] * args.samples, temperature=args.temperature, seed=args.seed)
    for i, r in enumerate(records):
        if args.out and r["cif"]:
            r["cif_path"] = str(write_text(args.out / f"{i:03d}_{r['formula']}.cif", r["cif"]))
        print(json.dumps({k: v for k, v in r.items() if k != "cif"}))


if __name__ == "__main__":
    main()
