"""Pruning methods, one small file each, behind the `Scorer` interface; `SCORERS` maps recipe names to them."""

from .base import Scorer
from .magnitude import MagnitudeScorer
from .pins import PINSScorer

SCORERS: dict[str, type[Scorer]] = {cls.name: cls for cls in (PINSScorer, MagnitudeScorer)}

__all__ = ["SCORERS", "Scorer", "MagnitudeScorer", "PINSScorer"]
