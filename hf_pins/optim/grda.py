"""gRDA and gRDAM (Chao, Wang, Xing & Cheng, NeurIPS 2020): dual averaging with a growing soft threshold.

Per tensor, from `a = w0`, `n = 0`, `L = 0`, each step:

    n += 1
    a -= lr * g
    L += c * lr**(mu + 0.5) * (n**mu - (n - 1)**mu)
    w  = sign(a) * max(|a| - L, 0)

With a constant learning rate `L = c * sqrt(lr) * (n * lr)**mu`; with `c = 0` it is plain SGD (`w = a`). The dual
accumulator `a` is float32 whatever the parameter's dtype (a bf16 `a` would lose the small steps that make it move);
`L` is kept as a Python float. Weights whose accumulated gradient never outgrows the threshold stay exactly zero, so
the sparsity is an outcome of `c`, `mu` and the learning rate, not a target.

gRDAM, the form chosen here: Polyak (heavy-ball) momentum and L2 weight decay enter the gradient that is accumulated,
`v = momentum * v + (g + weight_decay * w)`, `a -= lr * v`; the threshold is unchanged. The weight decay acts on the
sparse weights `w` the model uses, as the gradient of `weight_decay / 2 * |w|^2`. With `momentum = weight_decay = 0`
this is gRDA exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .composed import ComposedOptimizer


class GRDA(torch.optim.Optimizer):
    def __init__(self, params: Iterable, lr: float = 0.01, c: float = 1e-4, mu: float = 0.51, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        if lr <= 0 or c < 0 or not 0.5 < mu < 1 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"gRDA: need lr > 0, c >= 0, 0.5 < mu < 1, 0 <= momentum < 1, weight_decay >= 0; "
                             f"got lr={lr}, c={c}, mu={mu}, momentum={momentum}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, c=c, mu=mu, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, c, mu = group["lr"], group["c"], group["mu"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "accumulator" not in state:
                    state["accumulator"] = p.detach().float().clone()
                    state["n"] = 0
                    state["threshold"] = 0.0
                grad = p.grad.float()
                if group["weight_decay"]:
                    grad = grad.add(p.float(), alpha=group["weight_decay"])
                if group["momentum"]:
                    buf = state.setdefault("momentum_buffer", torch.zeros_like(grad))
                    grad = buf.mul_(group["momentum"]).add_(grad)
                n = state["n"] + 1
                state["n"] = n
                state["threshold"] += c * lr ** (mu + 0.5) * (n**mu - (n - 1) ** mu)
                a = state["accumulator"]
                a.add_(grad, alpha=-lr)
                p.copy_(torch.sign(a) * (a.abs() - state["threshold"]).clamp_min_(0.0))
        return loss


def grda_for_trainer(trainer, settings) -> ComposedOptimizer:
    """The prunable matrices under gRDA(M) at `settings.lr`; everything else under the optimizer `args.optim` names
    (AdamW by default, with the Trainer's weight-decay split), both in one object the Trainer's scheduler drives."""
    args, model = trainer.args, trainer.model
    prunable = {id(p) for p in trainer.pruner.params.values()}
    decay = set(trainer.get_decay_parameter_names(model))
    optimizer_cls, kwargs = trainer.optimizer_cls_and_kwargs or trainer.get_optimizer_cls_and_kwargs(args, model)
    if {"params", "model", "optimizer_dict"} & set(kwargs):
        raise ValueError(f"pruning.method grda: optim {args.optim!r} builds its own parameter groups; use AdamW or SGD")
    others = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in prunable]
    rest = [{"params": [p for n, p in others if (n in decay) == d], "weight_decay": args.weight_decay if d else 0.0}
            for d in (True, False)]
    optimizers = []
    rest = [g for g in rest if g["params"]]
    if rest:  # first, so that the learning rate the Trainer logs is this group's
        optimizers.append(optimizer_cls(rest, **kwargs))
    optimizers.append(GRDA([p for p in trainer.pruner.params.values() if p.requires_grad], lr=settings.lr,
                           c=settings.c, mu=settings.mu, momentum=settings.momentum,
                           weight_decay=settings.weight_decay))
    return ComposedOptimizer(optimizers)
