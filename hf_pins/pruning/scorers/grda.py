"""gRDA (Chao et al., NeurIPS 2020) prunes through its optimizer, not through scores and a schedule.

The soft threshold of `hf_pins.optim.grda.GRDA` zeroes weights as training goes; `PINSTrainer` gives that optimizer the
prunable matrices. This entry only tells the pruner so: no mask is scheduled or forced, the sparsity reported is the
zeros measured in the weights, and an exact target needs calibration of `c` or the final cut named in the report.
"""

from __future__ import annotations

from .base import Scorer


class GRDAScorer(Scorer):
    name = "grda"
    schedules_masks = False

    def scores(self):
        raise RuntimeError("gRDA has no importance scores: its optimizer zeroes the weights")
