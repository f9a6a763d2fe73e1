"""Generation prompts in PLaID's wording (andaero/PLaID llm_finetune.py / DPO_preprocess.py), as chat messages.

Unconditional: "Below is a description of a bulk material. Generate a description of ...". The
conditional forms insert "The chemical formula is X. " and/or "The spacegroup number is N. ".
"""

from __future__ import annotations

HEAD = "Below is a description of a bulk material. "
TAIL = ("Generate a description of the lengths and angles of the lattice vectors "
        "and then the element type and coordinates for each atom within the lattice:\n")


def prompt_text(formula: str | None = None, spacegroup: int | None = None) -> str:
    text = HEAD
    if formula:
        text += f"The chemical formula is {formula}. "
    if spacegroup:
        text += f"The spacegroup number is {spacegroup}. "
    return text + TAIL


def prompt(formula: str | None = None, spacegroup: int | None = None) -> list[dict[str, str]]:
    """Return the chat prompt for unconditional, space-group, formula, or formula+space-group generation."""
    return [{"role": "user", "content": prompt_text(formula, spacegroup)}]


def prompt_id(formula: str | None = None, spacegroup: int | None = None) -> str:
    """A stable id per condition: pairs are built within one condition (one prompt)."""
    parts = [f"formula={formula}"] if formula else []
    parts += [f"sg={spacegroup}"] if spacegroup else []
    return "&".join(parts) or "unconditional"
