"""Greedy forward selection of FFN units and attention heads (Ye, Wu & Liu, NeurIPS 2020) for BERT-layout encoders.

Each encoder layer is rebuilt from empty, one unit at a time, with one coefficient per selected unit refit by least
squares at every step (`selection.GreedySelector`); the coefficients are then folded into the weights and the other
units physically removed (`surgery.py`), leaving a smaller dense model.

Local imitation: reproduce the layer's original output on cached activations. The FFN output `Y = H @ W2.T + b2` is
linear in the unit activations `H`: unit j contributes the rank-one term `(H_j - mean H_j) W2_j^T`, so the Gram matrix
of the contributions is `cov(H) * (W2^T W2)` (elementwise), from one forward pass and no further pass per candidate.
Heads likewise, through the attention output projection: `cov(ctx) * (Wo^T Wo)` summed over each pair of head blocks.
The bias is refit too: it keeps the thinner layer's mean output over the sample equal to the original's (the
least-squares intercept), which folds the removed units' average contribution into it. Each token's squared error is
weighted by `1 / var_t` of the LayerNorm input the branch output is added to: LayerNorm divides token t by its std, so
this is the error of the layer's normalized output to first order. It makes errors comparable across layers (the
global budget relies on it) and, on all-MiniLM-L6-v2, kept the [CLS] output closer to the original than unweighted
least squares (mean cosine 0.948 vs 0.944 keeping half the FFN units; 0.917 vs 0.864 with a global budget).

Global imitation: keep the task loss of the full model on every example, to first order. With a coefficient `alpha_j`
per unit (all 1 = the full model), `loss_n(alpha) ~ loss_n(1) + g_n . (alpha - 1)`, `g_n` being example n's gradient
with respect to the coefficients (one forward-backward pass with per-example coefficients). Choosing `alpha` supported
on the selected units so that every `loss_n` stays as it was is the least-squares problem `min |D (alpha - 1)|^2`,
D the per-example gradients: the same greedy selection, with `G = D^T D`. The bias shift is the local one.

`auto`: both for each layer, bottom-up; the one whose model (layers below pruned as chosen, layers above intact) has
the lower dev loss is kept.

Budgets: `method_args.ffn_keep` / `heads_keep` of each layer (`budget: per_layer`), or of all layers together
(`global`: the next unit goes to the layer where it removes the most error; errors on normalized hidden states, or on
the loss, are comparable across layers). `tolerance`: within each budget, the fewest units (a prefix of the greedy
path, found by bisection on dev) that keep the dev accuracy (regression: the dev loss) within the tolerance of the
unpruned model's. Only `target_sparsity` given: see `keep_from_target`.

The classifier head matters for `global`, `auto` and the tolerance: they are meaningful from a model already
fine-tuned on the task (the paper prunes trained networks). From a pre-trained encoder and a fresh head, use `local`
(the default), or fine-tune densely first (`target_sparsity: 0`) and run gfs from that folder. (On MiniLM with a fresh
head and half the heads and FFN units, `auto` kept the [CLS] output at cosine 0.84 where `local` kept 0.89.)

Cost: float64 Gram matrices of size (FFN width)^2 per layer (about 75 MB per BERT-base layer, twice that for
`global`/`auto`), one forward pass over `samples` examples (plus a backward pass for `global`/`auto`, plus dev
evaluations for `auto` and the tolerance), and O(width * kept) work per selected unit.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..pruning.targets import find_prunable
from .selection import GreedySelector
from .surgery import apply_selection, encoder_layers, gated, head_shape

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "label", "labels")


# -- data -------------------------------------------------------------------------------------------------------------
def sample_batches(dataset, collate, count: int, batch_size: int, seed: int, device) -> list[dict]:
    """`count` examples drawn without replacement (seeded), collated into batches on `device`."""
    if dataset is None or len(dataset) == 0:
        return []
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: min(count, len(dataset))]
    rows = [{k: v for k, v in dataset[int(i)].items() if k in MODEL_INPUTS} for i in order]
    batches = []
    for start in range(0, len(rows), batch_size):
        batch = collate(rows[start : start + batch_size])
        batches.append({k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)})
    return batches


def _split(batch: dict) -> tuple[dict, torch.Tensor]:
    labels = batch.get("labels", batch.get("label"))
    return {k: v for k, v in batch.items() if k not in ("labels", "label")}, labels


def _example_losses(logits: torch.Tensor, labels: torch.Tensor, is_regression: bool) -> torch.Tensor:
    if is_regression:
        return (logits.view(-1).float() - labels.float().view(-1)) ** 2
    return F.cross_entropy(logits.float(), labels.view(-1), reduction="none")


@torch.no_grad()
def evaluate(model: nn.Module, batches: list[dict], is_regression: bool) -> dict:
    """Mean loss and (classification) accuracy on the batches."""
    total = correct = count = 0.0
    for batch in batches:
        inputs, labels = _split(batch)
        logits = model(**inputs).logits
        total += float(_example_losses(logits, labels, is_regression).sum())
        if not is_regression:
            correct += float((logits.argmax(-1) == labels.view(-1)).sum())
        count += len(labels)
    return {"loss": total / count, "accuracy": None if is_regression else correct / count}


# -- statistics -------------------------------------------------------------------------------------------------------
def collect_statistics(model, layers, batches, is_regression: bool, with_gradients: bool) -> list[dict]:
    """One pass over the batches. Per layer: the second moments of the FFN activations and of the attention context,
    each token weighted by `1 / var` of the LayerNorm input that its branch output enters (local imitation, and the
    means for the bias shift); with gradients, the Gram of per-example coefficient gradients (global imitation)."""
    stats = []
    for layer in layers:
        m, d_att = layer.intermediate.dense.out_features, layer.attention.output.dense.in_features
        heads, _ = head_shape(layer)
        dev = layer.output.dense.weight.device
        z = lambda *s: torch.zeros(*s, dtype=torch.float64, device=dev)  # noqa: E731
        stats.append({"h_sq": z(m, m), "h_sum": z(m), "h_w": 0.0, "c_sq": z(d_att, d_att), "c_sum": z(d_att),
                      "c_w": 0.0, "tokens": 0, "examples": 0})
        if with_gradients:
            stats[-1].update(g_ffn=z(m, m), g_heads=z(heads, heads))
    current: dict = {"h": {}, "c": {}}

    def ffn_hook(module, inputs, out, index):
        current["h"][index] = out.detach()[current["mask"]].float()
        if with_gradients:
            return out * current["ffn"][index][:, None, :].to(out.dtype)

    def ctx_hook(module, args, index):
        ctx = args[0]
        current["c"][index] = ctx.detach()[current["mask"]].float()
        if with_gradients:
            heads, size = head_shape(layers[index])
            shaped = ctx.view(*ctx.shape[:-1], heads, size) * current["heads"][index][:, None, :, None].to(ctx.dtype)
            return (shaped.view_as(ctx), *args[1:])

    def norm_hook(module, args, index, key):
        # LayerNorm divides each token by its std: an output error e_t costs about |e_t|^2 / var_t after it.
        x = args[0].detach()[current["mask"]].float()
        w = 1.0 / (x.var(-1, unbiased=False) + module.eps)
        a = current[key].pop(index)  # products in float32 (fast), sums across batches in float64
        s = stats[index]
        s[f"{key}_sq"] += ((a * w[:, None]).T @ a).double()
        s[f"{key}_sum"] += (a * w[:, None]).sum(0).double()
        s[f"{key}_w"] += float(w.double().sum())
        if key == "h":
            s["tokens"] += a.shape[0]

    handles = []
    for index, layer in enumerate(layers):
        handles.append(layer.intermediate.register_forward_hook(lambda m, i, o, index=index: ffn_hook(m, i, o, index)))
        handles.append(layer.attention.output.dense.register_forward_pre_hook(
            lambda m, a, index=index: ctx_hook(m, a, index)))
        handles.append(layer.output.LayerNorm.register_forward_pre_hook(
            lambda m, a, index=index: norm_hook(m, a, index, "h")))
        handles.append(layer.attention.output.LayerNorm.register_forward_pre_hook(
            lambda m, a, index=index: norm_hook(m, a, index, "c")))
    try:
        for batch in batches:
            inputs, labels = _split(batch)
            current["mask"] = inputs["attention_mask"].bool()
            if not with_gradients:
                with torch.no_grad():
                    model(**inputs)
                continue
            size = len(labels)
            current["ffn"] = [torch.ones(size, l.intermediate.dense.out_features, device=labels.device,
                                         requires_grad=True) for l in layers]
            current["heads"] = [torch.ones(size, head_shape(l)[0], device=labels.device, requires_grad=True)
                                for l in layers]
            with torch.enable_grad():
                loss = _example_losses(model(**inputs).logits, labels, is_regression).sum()
                grads = torch.autograd.grad(loss, current["ffn"] + current["heads"])
            for index, s in enumerate(stats):
                g_ffn, g_heads = grads[index].double(), grads[len(layers) + index].double()
                s["g_ffn"] += g_ffn.T @ g_ffn
                s["g_heads"] += g_heads.T @ g_heads
                s["examples"] += size
    finally:
        for handle in handles:
            handle.remove()
    return stats


def local_grams(layer, s: dict) -> dict:
    """Gram matrices of the per-unit contributions to the FFN and attention outputs (weighted, centered at the
    weighted means, per token), and those means (the bias shift keeps them)."""
    n = max(s["tokens"], 1)

    def centered(key):
        total = max(s[f"{key}_w"], 1e-300)
        mean = s[f"{key}_sum"] / total
        return (s[f"{key}_sq"] - total * torch.outer(mean, mean)) / n, mean

    h_cov, h_mean = centered("h")
    c_cov, c_mean = centered("c")
    w2 = layer.output.dense.weight.detach().double()
    wo = layer.attention.output.dense.weight.detach().double()
    heads, size = head_shape(layer)
    blocks = (c_cov * (wo.T @ wo)).view(heads, size, heads, size).sum((1, 3))
    return {"ffn": h_cov * (w2.T @ w2), "heads": blocks, "h_mean": h_mean, "c_mean": c_mean}


# -- budgets ----------------------------------------------------------------------------------------------------------
def keep_from_target(target: float, layer) -> tuple[float, float, str]:
    """Keep fractions for FFN units and heads that remove `target` of a layer's prunable weights.

    Rule: heads keep `1 - target` of their number, rounded to whole heads (at least one); the FFN absorbs the
    rounding, keeping the number of units that brings the layer's removed fraction of prunable weights (Q, K, V, output
    projection, both FFN matrices) closest to the target (at least one unit).
    """
    heads, size = head_shape(layer)
    d = layer.attention.output.dense.out_features
    m = layer.intermediate.dense.out_features
    per_head, per_unit = 4 * d * size, 2 * d
    total = heads * per_head + m * per_unit
    kept_heads = max(1, round(heads * (1 - target)))
    kept_units = min(m, max(1, round(((1 - target) * total - kept_heads * per_head) / per_unit)))
    rule = ("heads keep 1 - target_sparsity of their number (whole heads, at least one); FFN units absorb the "
            "rounding so that each layer loses the fraction of prunable weights closest to target_sparsity")
    return kept_units / m, kept_heads / heads, rule


def _count(keep: float, size: int) -> int:
    return min(size, max(1, int(round(keep * size))))


def allocate(selectors: list[GreedySelector], total: int) -> list[int]:
    """Spread `total` units over layers (at least one each): the next unit goes where it removes the most error."""
    counts = [1] * len(selectors)
    for s in selectors:
        s.run(1)

    def score(i):
        s = selectors[i]
        if counts[i] >= s.size:
            return float("-inf")
        return s.next_gain()

    scores = [score(i) for i in range(len(selectors))]
    for _ in range(max(0, total - len(selectors))):
        i = max(range(len(selectors)), key=lambda j: scores[j])
        if scores[i] == float("-inf"):
            break
        counts[i] += 1
        selectors[i].run(counts[i])
        scores[i] = score(i)
    return counts


# -- the selection ----------------------------------------------------------------------------------------------------
def _layer_plan(layer, grams: dict, ffn: GreedySelector, heads: GreedySelector, k_ffn: int, k_heads: int) -> dict:
    """The layer cut to the first `k` units of each greedy path, coefficients refit on exactly those: as gates (to
    evaluate it without touching weights) and as what `apply_selection` folds in."""
    ffn.run(k_ffn)
    heads.run(k_heads)
    units, gamma = ffn.coefficients(k_ffn)
    kept_heads, head_gamma = heads.coefficients(k_heads)
    m = layer.intermediate.dense.out_features
    n_heads, size = head_shape(layer)
    dev = layer.output.dense.weight.device
    ffn_gate = torch.zeros(m, dtype=torch.float64, device=dev)
    ffn_gate[units] = gamma.to(dev)
    head_gate = torch.zeros(n_heads, dtype=torch.float64, device=dev)
    head_gate[kept_heads] = head_gamma.to(dev)
    w2 = layer.output.dense.weight.detach().double()
    wo = layer.attention.output.dense.weight.detach().double()
    return {
        "ffn_units": units, "ffn_gamma": gamma, "ffn_gate": ffn_gate.float(),
        "ffn_shift": (w2 @ (grams["h_mean"] * (1 - ffn_gate))).float(),
        "heads": kept_heads, "head_gamma": head_gamma, "head_gate": head_gate.float(),
        "head_shift": (wo @ (grams["c_mean"] * (1 - head_gate.repeat_interleave(size)))).float(),
    }


def _bisect(ok, hi: int) -> int:
    """Smallest k in [1, hi] with `ok(k)`, for `ok` monotone in k (`hi` when none passes)."""
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


def _keep_fractions(settings, target_sparsity: float, layer) -> tuple[float, float, str | None]:
    """The FFN and head keep fractions: the method's settings, else what `target_sparsity` implies (and that rule)."""
    ffn_keep, heads_keep, rule = settings.ffn_keep, settings.heads_keep, None
    if ffn_keep is None and heads_keep is None:
        ffn_keep, heads_keep, rule = keep_from_target(target_sparsity, layer)
    return (1.0 if ffn_keep is None else ffn_keep), (1.0 if heads_keep is None else heads_keep), rule


def _selectors(grams: list[dict], stats: list[dict], kinds: list[str]) -> dict:
    """{(layer, kind): (FFN selector, head selector)}: local imitation ranks by the layer's Gram matrices, global
    by the loss gradients' second moments."""
    selectors = {}
    for index, (g, s) in enumerate(zip(grams, stats)):
        for kind in kinds:
            if kind == "local":
                selectors[index, kind] = (GreedySelector(g["ffn"]), GreedySelector(g["heads"]))
            else:
                n = max(s["examples"], 1)
                selectors[index, kind] = (GreedySelector(s["g_ffn"] / n), GreedySelector(s["g_heads"] / n))
    return selectors


def _units_per_layer(settings, selectors: dict, n_layers: int, keep: tuple[float, float],
                     before: tuple[list[int], list[int]]) -> tuple[list[int], list[int]]:
    """How many FFN units and heads each layer keeps: the same fraction everywhere, or a global budget shared out by
    the leading imitation's selectors."""
    (ffn_keep, heads_keep), (m_before, heads_before) = keep, before
    if settings.budget != "global":
        return [_count(ffn_keep, m) for m in m_before], [_count(heads_keep, h) for h in heads_before]
    lead = "global" if settings.imitation == "global" else "local"
    k_ffn = allocate([selectors[i, lead][0] for i in range(n_layers)], sum(_count(ffn_keep, m) for m in m_before))
    k_heads = allocate([selectors[i, lead][1] for i in range(n_layers)],
                       sum(_count(heads_keep, h) for h in heads_before))
    return k_ffn, k_heads


@dataclass
class _LayerChooser:
    """Chooses each layer's units in turn, the earlier layers' choices in place: the imitation ('auto' picks the
    lower dev loss) and, with a tolerance, the fewest units that keep the dev score."""

    model: nn.Module
    layers: list
    grams: list[dict]
    selectors: dict
    kinds: list[str]
    dev: list[dict]
    is_regression: bool
    tolerance: float | None
    reference: dict | None

    def within_tolerance(self, plan: dict) -> bool:
        with gated(self.layers, plan):
            result = evaluate(self.model, self.dev, self.is_regression)
        if self.is_regression:
            return result["loss"] <= self.reference["loss"] + self.tolerance
        return result["accuracy"] >= self.reference["accuracy"] - self.tolerance

    def choose(self, index: int, plan: dict, k_ffn: int, k_heads: int) -> tuple[dict, dict]:
        """(the layer's plan, its entry in the report)."""
        layer, entry = self.layers[index], {"layer": index}
        candidates = {kind: _layer_plan(layer, self.grams[index], *self.selectors[index, kind], k_ffn, k_heads)
                      for kind in self.kinds}
        chosen = self.kinds[0]
        if len(self.kinds) > 1:  # auto
            losses = {}
            for kind, candidate in candidates.items():
                with gated(self.layers, {**plan, index: candidate}):
                    losses[kind] = evaluate(self.model, self.dev, self.is_regression)["loss"]
            chosen = min(losses, key=losses.get)
            entry["dev_loss"] = losses
        entry["imitation"] = chosen
        layer_plan = candidates[chosen]
        if self.tolerance is not None:  # heads first (FFN intact), then FFN units
            ffn_sel, head_sel = self.selectors[index, chosen]

            def build(k_f, k_h, ffn_intact=False):
                trial = _layer_plan(layer, self.grams[index], ffn_sel, head_sel, k_f, k_h)
                return dict(trial, ffn_gate=None, ffn_shift=None) if ffn_intact else trial

            k_h = _bisect(lambda k: self.within_tolerance({**plan, index: build(k_ffn, k, True)}), k_heads)
            k_f = _bisect(lambda k: self.within_tolerance({**plan, index: build(k, k_h)}), k_ffn)
            layer_plan = build(k_f, k_h)
        local = self.selectors.get((index, "local"))
        if chosen == "local" and local is not None:
            for key, selector, kept in (("ffn", local[0], layer_plan["ffn_units"]),
                                        ("heads", local[1], layer_plan["heads"])):
                error = selector.residual(len(kept))  # share of the (weighted) output variance not reproduced
                entry[f"{key}_reconstruction_error"] = error if error == error else None
        entry["ffn_units"], entry["heads"] = len(layer_plan["ffn_units"]), len(layer_plan["heads"])
        return layer_plan, entry


def greedy_forward_selection(model: nn.Module, args, train_dataset, dev_dataset, collate, is_regression: bool) -> dict:
    """Select, fold and remove units of `model` in place; return the report's `structure` section."""
    started = time.time()
    layers = encoder_layers(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    patterns = getattr(args, "prunable_modules", None) or [r"(^|\.)(layer|layers)\.\d+\."]
    modules_before = {n: p.numel() for n, p in find_prunable(model, patterns).items()}
    params_before = sum(p.numel() for p in model.parameters())
    m_before = [l.intermediate.dense.out_features for l in layers]
    heads_before = [head_shape(l)[0] for l in layers]

    settings = args.method_settings
    ffn_keep, heads_keep, rule = _keep_fractions(settings, args.target_sparsity, layers[0])
    imitation, batch_size = settings.imitation, args.per_device_eval_batch_size
    train = sample_batches(train_dataset, collate, settings.samples, batch_size, args.seed, device)
    needs_dev = imitation == "auto" or settings.tolerance is not None
    dev = sample_batches(dev_dataset, collate, settings.dev_samples, batch_size, args.seed, device) if needs_dev else []
    if not train or (needs_dev and not dev):
        raise ValueError("greedy forward selection needs train examples (and dev examples for 'auto' or a tolerance)")

    stats = collect_statistics(model, layers, train, is_regression, with_gradients=imitation != "local")
    grams = [local_grams(l, s) for l, s in zip(layers, stats)]
    kinds = ["local", "global"] if imitation == "auto" else [imitation]
    selectors = _selectors(grams, stats, kinds)
    k_ffn, k_heads = _units_per_layer(settings, selectors, len(layers), (ffn_keep, heads_keep), (m_before, heads_before))
    reference = evaluate(model, dev, is_regression) if dev else None
    chooser = _LayerChooser(model, layers, grams, selectors, kinds, dev, is_regression, settings.tolerance, reference)
    plan: dict[int, dict] = {}
    per_layer = []
    for index in range(len(layers)):
        plan[index], entry = chooser.choose(index, plan, k_ffn[index], k_heads[index])
        per_layer.append(entry)

    storage = apply_selection(model, layers, plan)
    model.train(was_training)
    after = find_prunable(model, patterns)
    return {
        "method": "greedy forward selection",
        "imitation": imitation,
        "budget": settings.budget,
        "ffn_keep": ffn_keep,
        "heads_keep": heads_keep,
        "tolerance": settings.tolerance,
        "target_rule": rule,
        "selection_examples": sum(len(_split(b)[1]) for b in train),
        "ffn_units_kept": [e["ffn_units"] for e in per_layer],
        "ffn_units_before": m_before,
        "heads_kept": [e["heads"] for e in per_layer],
        "heads_before": heads_before,
        "intermediate_size": {"before": max(m_before), "after": storage["intermediate_size"]},
        "ffn_storage": "uniform" if storage["ffn_padding_units"] == 0 else "zero_padded",
        "ffn_padding_units": storage["ffn_padding_units"],
        "parameters": {"before": params_before, "after": sum(p.numel() for p in model.parameters())},
        "prunable_weights": {"before": sum(modules_before.values()), "after": sum(p.numel() for p in after.values())},
        "modules_before": modules_before,
        "layers": per_layer,
        "dev_reference": reference,
        "seconds": round(time.time() - started, 3),
    }


def structured_sparsity(structure: dict, model: nn.Module, patterns) -> dict:
    """Sparsity relative to the original prunable weights: removed units count as pruned, and so do zeros left in
    the remaining weights (zero padding, or unstructured pruning on top)."""
    before = structure["modules_before"]
    current = find_prunable(model, patterns)
    modules = {}
    nonzero_total = 0
    for name, numel in before.items():
        p = current.get(name)
        nonzero = 0 if p is None else int((p != 0).sum())
        modules[name] = 1.0 - nonzero / numel
        nonzero_total += nonzero
    total = sum(before.values())
    return {"overall": 1.0 - nonzero_total / total if total else 0.0, "modules": modules}
