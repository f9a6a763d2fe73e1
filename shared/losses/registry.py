"""Registry from a config name to a pure loss function, with its family, paper and TRL equivalent."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from shared.losses.types import LossOutput

FAMILIES = ("pairwise", "unpaired", "strength", "listwise", "group", "diffusion")


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its config name, family, function, paper and TRL counterpart (if any)."""

    name: str
    family: str
    fn: Callable[..., LossOutput]
    paper: str
    trl: str | None = None

    def hyperparameters(self) -> dict[str, object]:
        """Return the loss's keyword hyper-parameters and their defaults."""
        params = inspect.signature(self.fn).parameters.values()
        return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def __call__(self, terms, **hparams) -> LossOutput:
        unknown = sorted(set(hparams) - set(self.hyperparameters()))
        if unknown:
            known = ", ".join(sorted(self.hyperparameters())) or "none"
            raise ValueError(f"loss '{self.name}': unknown hyper-parameter '{unknown[0]}' (known: {known})")
        return self.fn(terms, **hparams)


_REGISTRY: dict[str, LossSpec] = {}


def register_loss(name: str, family: str, *, paper: str, trl: str | None = None):
    """Return a decorator that registers a loss function under `name`."""
    if family not in FAMILIES:
        raise ValueError(f"unknown loss family '{family}' (known: {', '.join(FAMILIES)})")

    def decorate(fn: Callable[..., LossOutput]) -> Callable[..., LossOutput]:
        if name in _REGISTRY:
            raise ValueError(f"loss '{name}' is already registered")
        _REGISTRY[name] = LossSpec(name=name, family=family, fn=fn, paper=paper, trl=trl)
        return fn

    return decorate


def get_loss(name: str) -> LossSpec:
    """Return the LossSpec registered under `name`; a clear error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loss '{name}' (known: {', '.join(sorted(_REGISTRY))})") from None


def list_losses(family: str | None = None) -> list[str]:
    """Return the registered loss names, optionally of one family, sorted."""
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def combine_losses(terms, parts: list[tuple[str, float, dict]]) -> LossOutput:
    """Return the weighted sum of several losses on the same terms (TRL's `loss_type` list + `loss_weights`).

    The per-sample losses, rewards and metrics of the first part are kept for logging; each
    part's scalar is also logged as `loss/<name>`.
    """
    if not parts:
        raise ValueError("combine_losses: give at least one (name, weight, hparams) part")
    total, first, metrics = 0.0, None, {}
    for name, weight, hparams in parts:
        out = get_loss(name)(terms, **hparams)
        total = total + weight * out.loss
        metrics[f"loss/{name}"] = out.loss.detach()
        first = first or out
    return LossOutput(total, first.losses, first.chosen_rewards, first.rejected_rewards, {**first.metrics, **metrics})
