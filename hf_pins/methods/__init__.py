"""Pruning methods, one class each behind the `PruningMethod` interface; `METHODS` maps recipe names to them."""

from .base import NoSettings, Paper, PreparedRun, PruningMethod, SettingsError, SmoothedMethod
from .gfs import GreedyForwardSelection
from .grda import GRDA
from .magnitude import Magnitude
from .movement import Movement
from .pins import PINS
from .platon import PLATON
from .soft_movement import SoftMovement

METHODS: dict[str, type[PruningMethod]] = {
    cls.name: cls for cls in (PINS, Magnitude, Movement, SoftMovement, PLATON, GRDA, GreedyForwardSelection)
}
# The methods that rank weights and follow the sparsity schedule (what greedy forward selection's `then` may name).
SCHEDULED_METHODS: tuple[str, ...] = tuple(n for n, cls in METHODS.items() if cls.schedules_masks)


def get_method(name: str) -> type[PruningMethod]:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown pruning method {name!r}; accepted: {', '.join(METHODS)}") from None


__all__ = ["METHODS", "SCHEDULED_METHODS", "get_method", "NoSettings", "Paper", "PreparedRun", "PruningMethod",
           "SettingsError", "SmoothedMethod", "GreedyForwardSelection", "GRDA", "Magnitude", "Movement", "PINS",
           "PLATON", "SoftMovement"]
