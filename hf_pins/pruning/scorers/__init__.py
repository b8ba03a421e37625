"""Pruning methods, one small file each, behind the `Scorer` interface; `SCORERS` maps recipe names to them."""

from .base import Scorer
from .gfs import GFSFineTuning
from .grda import GRDAScorer
from .magnitude import MagnitudeScorer
from .movement import MovementScorer
from .pins import PINSScorer
from .platon import PLATONScorer
from .soft_movement import SoftMovementScorer

SCORERS: dict[str, type[Scorer]] = {
    cls.name: cls
    for cls in (PINSScorer, MagnitudeScorer, MovementScorer, SoftMovementScorer, PLATONScorer, GRDAScorer, GFSFineTuning)
}
# The methods that rank weights and follow the sparsity schedule (what `pruning.gfs_then` may name).
SCHEDULED_METHODS: tuple[str, ...] = tuple(n for n, cls in SCORERS.items() if cls.schedules_masks)

__all__ = ["SCORERS", "SCHEDULED_METHODS", "Scorer", "MagnitudeScorer", "MovementScorer", "PINSScorer",
           "PLATONScorer", "SoftMovementScorer", "GRDAScorer", "GFSFineTuning"]
