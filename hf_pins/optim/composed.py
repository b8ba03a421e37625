"""Several optimizers over disjoint parameters, seen as one by the Trainer, accelerate and the learning-rate scheduler.

The Trainer builds one scheduler for one optimizer, checkpoints one state dict and steps one object. A
`ComposedOptimizer` holds its children's param-group dicts themselves (not copies), so the scheduler's learning-rate
changes reach every child, and one state table shared with all of them, so saving, loading and the pruner's clearing of
optimizer state see everything. Each child still applies its own update rule in `step`.
"""

from __future__ import annotations

import torch


class ComposedOptimizer(torch.optim.Optimizer):
    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = list(optimizers)
        super().__init__([group for opt in self.optimizers for group in opt.param_groups], defaults={})
        self._share()

    def _share(self) -> None:
        """Point every child at its slice of our param groups and at our state table."""
        start = 0
        for opt in self.optimizers:
            count = len(opt.param_groups)
            opt.param_groups = self.param_groups[start : start + count]
            start += count
            for param, state in opt.state.items():
                self.state[param] = state
            opt.state = self.state

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def load_state_dict(self, state_dict) -> None:
        # Loading replaces our group dicts and state table: share the new ones again.
        super().load_state_dict(state_dict)
        self._share()
