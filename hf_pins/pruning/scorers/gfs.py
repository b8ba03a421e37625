"""Greedy forward selection (Ye, Wu & Liu, NeurIPS 2020) removes whole units before training starts.

The selection itself is `hf_pins.structured.gfs`, run by the train stage before the Trainer is built. During the
fine-tuning that follows, this entry imposes no unstructured mask (with `pruning.gfs_then` the named scorer prunes the
remaining weights instead); the structure is fixed, so every dev evaluation is a candidate for the final model.
"""

from __future__ import annotations

from .base import Scorer


class GFSFineTuning(Scorer):
    name = "gfs"
    schedules_masks = False
    structure_fixed = True

    def scores(self):
        raise RuntimeError("greedy forward selection prunes whole units before training, not by scores")
