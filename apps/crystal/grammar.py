"""The Wyckoff text format as a character automaton, for constrained sampling (shared.constrained).

A constrained sample always has the format's layout with bookkeeping that `wyckoff.decode` can
check: a Hermann-Mauguin symbol pyxtal knows, numbers in the decoder's ranges (lengths 0.00-99.99 A,
angles 10.00-169.99 degrees, coordinates -1.999..1.999 with 3 decimals), an atom count that the
stated group's multiplicities can make (at most `max_atoms`), one Wyckoff label of that group per
orbit, a position without free parameters used by one orbit at most (pyxtal rejects a second one),
and orbits that add up to the stated count (the text ends exactly there). What it leaves to
the model, and to the rewards, is everything physical: which group, lattice, elements, coordinates
and labels, so a constrained sample can still fail to decode (pyxtal cannot place the orbits) or be
invalid, unstable, not novel. The space group is never forced to the one a prompt asks for: the
space-group match rate stays a measurement.

States are tuples: ("formula", n), ("lit", rest, next), ("hm", prefix), ("num", field, index, int
digits, fraction digits, signed, group, budget), ("sites", digits, group), ("elem", prefix, group,
remaining atoms, fixed labels used), ("label", prefix, group, remaining atoms, fixed labels used),
and ("end",); an orbit's coordinates carry (remaining atoms, fixed labels used) as their budget.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import lru_cache

from shared.constrained import TokenAutomaton

MAX_FORMULA_CHARS = 40
MAX_Z = 94  # CHGNet's element range
_DIGITS = "0123456789"


@lru_cache(maxsize=1)
def _groups() -> tuple[dict[str, int], dict[int, dict[str, int]], dict[int, frozenset[str]]]:
    """Hermann-Mauguin symbol -> number, number -> {Wyckoff label: multiplicity}, and number -> the labels of
    positions without free parameters (each holds at most one orbit of the whole cell), as pyxtal writes them."""
    from pyxtal.symmetry import Group

    symbols: dict[str, int] = {}
    labels: dict[int, dict[str, int]] = {}
    fixed: dict[int, frozenset[str]] = {}
    for number in range(1, 231):
        group = Group(number)
        symbols.setdefault(group.symbol, number)
        labels[number] = {wp.get_label(): int(wp.multiplicity) for wp in group.Wyckoff_positions}
        fixed[number] = frozenset(wp.get_label() for wp in group.Wyckoff_positions if wp.get_dof() == 0)
    return symbols, labels, fixed


def _prefixes(words) -> frozenset[str]:
    return frozenset(w[:i] for w in words for i in range(len(w) + 1))


@lru_cache(maxsize=1)
def _elements() -> tuple[frozenset[str], frozenset[str]]:
    from pymatgen.core import Element

    names = frozenset(Element.from_Z(z).symbol for z in range(1, MAX_Z + 1))
    return names, _prefixes(names)


@lru_cache(maxsize=4096)
def _reachable(group: int, max_atoms: int, used: frozenset[str] = frozenset()) -> frozenset[int]:
    """Atom counts 0..max_atoms that the group's orbits can still make: positions with free parameters any
    number of times, each fixed position not in `used` at most once."""
    _, labels, fixed = _groups()
    ok = [False] * (max_atoms + 1)
    ok[0] = True
    free = sorted({m for label, m in labels[group].items() if label not in fixed[group]})
    for n in range(1, max_atoms + 1):
        ok[n] = any(m <= n and ok[n - m] for m in free)
    for label in sorted(fixed[group] - used):  # 0/1 knapsack over the fixed positions left
        m = labels[group][label]
        for n in range(max_atoms, m - 1, -1):
            ok[n] = ok[n] or ok[n - m]
    return frozenset(n for n, v in enumerate(ok) if v)


class WyckoffGrammar:
    """A `shared.constrained.CharConstraint` for PLaID's Wyckoff text (see the module docstring)."""

    def __init__(self, max_atoms: int = 40):
        if max_atoms < 1:
            raise ValueError(f"max_atoms must be >= 1, got {max_atoms}")
        self.max_atoms = max_atoms
        self.symbols, self.labels, self.fixed = _groups()
        self.symbol_prefixes = _prefixes(self.symbols)
        self.elements, self.element_prefixes = _elements()

    def start(self) -> Hashable:
        return ("formula", 0)

    def can_end(self, state: Hashable) -> bool:
        return state == ("end",)

    def step(self, state: Hashable, ch: str) -> Hashable | None:
        kind = state[0]
        if kind == "lit":
            _, rest, nxt = state
            if ch != rest[0]:
                return None
            return ("lit", rest[1:], nxt) if len(rest) > 1 else nxt
        if kind == "formula":
            n = state[1]
            if ch == "\n" and n > 0:
                return ("lit", "Spacegroup: ", ("hm", ""))
            return ("formula", n + 1) if ch.isascii() and ch.isalnum() and n < MAX_FORMULA_CHARS else None
        if kind == "hm":
            prefix = state[1]
            if ch == "\n":
                group = self.symbols.get(prefix)
                return None if group is None else ("lit", "abc: ", ("num", "abc", 0, "", None, False, group, 0))
            return ("hm", prefix + ch) if prefix + ch in self.symbol_prefixes else None
        if kind == "num":
            return self._number(state, ch)
        if kind == "sites":
            return self._sites(state, ch)
        if kind == "elem":
            _, prefix, group, remaining, used = state
            if ch == " ":
                return ("num", "xyz", 0, "", None, False, group, (remaining, used)) if prefix in self.elements else None
            return ("elem", prefix + ch, group, remaining, used) if prefix + ch in self.element_prefixes else None
        if kind == "label":
            return self._label(state, ch)
        return None  # "end": nothing may follow

    def _number(self, state: tuple, ch: str) -> Hashable | None:
        _, field, index, whole, frac, signed, group, remaining = state
        if frac is None:  # integer part
            if ch == "." and self._whole_ok(field, whole):
                return ("num", field, index, whole, "", signed, group, remaining)
            if field == "xyz" and ch == "-" and not whole and not signed:
                return ("num", field, index, whole, None, True, group, remaining)
            if ch in _DIGITS and self._whole_prefix_ok(field, whole + ch):
                return ("num", field, index, whole + ch, None, signed, group, remaining)
            return None
        places = 3 if field == "xyz" else 2
        if len(frac) < places:
            return ("num", field, index, whole, frac + ch, signed, group, remaining) if ch in _DIGITS else None
        last = index == 2
        if field == "abc":
            if ch == (" " if not last else "\n"):
                return ("num", field, index + 1, "", None, False, group, remaining) if not last else \
                    ("lit", "angles: ", ("num", "angles", 0, "", None, False, group, remaining))
            return None
        if field == "angles":
            if ch == (" " if not last else "\n"):
                return ("num", field, index + 1, "", None, False, group, remaining) if not last else \
                    ("lit", "Sites (", ("sites", "", group))
            return None
        if ch == " ":
            return ("num", field, index + 1, "", None, False, group, remaining) if not last else \
                ("label", "", group, *remaining)
        return None

    @staticmethod
    def _whole_prefix_ok(field: str, whole: str) -> bool:
        if field == "abc":
            return len(whole) == 1 or (len(whole) == 2 and whole[0] != "0")
        if field == "angles":
            return len(whole) <= 3 and whole[0] != "0" and (len(whole) < 3 or (whole[0] == "1" and whole[1] <= "6"))
        return len(whole) == 1 and whole in "01"

    @staticmethod
    def _whole_ok(field: str, whole: str) -> bool:
        if field == "angles":
            return len(whole) >= 2
        return len(whole) >= 1

    def _sites(self, state: tuple, ch: str) -> Hashable | None:
        _, digits, group = state
        counts = _reachable(group, self.max_atoms)
        if ch == ")":
            if digits and int(digits) in counts and int(digits) > 0:
                return ("lit", "\n", ("elem", "", group, int(digits), frozenset()))
            return None
        if ch not in _DIGITS or (not digits and ch == "0"):
            return None
        candidate = digits + ch
        return ("sites", candidate, group) if any(str(n).startswith(candidate) for n in counts if n > 0) else None

    def _label(self, state: tuple, ch: str) -> Hashable | None:
        _, prefix, group, remaining, used = state
        labels = self.labels[group]
        fits = []
        for label, m in labels.items():
            if label in used or m > remaining:
                continue
            now_used = used | {label} if label in self.fixed[group] else used
            if remaining - m in _reachable(group, self.max_atoms, now_used):
                fits.append(label)
        candidate = prefix + ch
        if candidate in fits:
            left = remaining - labels[candidate]
            now_used = used | {candidate} if candidate in self.fixed[group] else used
            return ("end",) if left == 0 else ("lit", "\n", ("elem", "", group, left, now_used))
        return ("label", candidate, group, remaining, used) if any(f.startswith(candidate) for f in fits) else None


def format_constraint(tok, constrained: bool, max_atoms: int) -> TokenAutomaton | None:
    """The Wyckoff-format automaton for this tokenizer when sampling is constrained, else None."""
    return TokenAutomaton(WyckoffGrammar(max_atoms), tok) if constrained else None
