"""Model surgery for structured pruning of BERT-layout encoders: gates on units, folding coefficients, removing units.

Supported layout: `model.base_model.encoder.layer[i]` with `attention.self.{query,key,value}`, `attention.output.dense`,
`intermediate` (`dense` + activation) and `output.dense` (BERT, RoBERTa, ELECTRA, ...).

How per-layer sizes are stored so that `AutoModelForSequenceClassification.from_pretrained` loads the smaller model
without `trust_remote_code`:
* heads: transformers' own `config.pruned_heads`, re-applied by `from_pretrained`; any count per layer.
* FFN units: `BertConfig` has one `intermediate_size` for all layers. Every layer is stored at the widest kept width,
  and a narrower layer is padded with units whose input row, bias and output column are exactly zero. Such a unit
  outputs `act(0) * 0 = 0` and all its gradients are exactly zero, so fine-tuning (AdamW included: zero moments give a
  zero step, and weight decay of zero is zero) leaves it at zero. Cost: its parameters and FLOPs (the report counts
  them as `ffn_padding_units`); with a per-layer budget all layers keep the same width and nothing is padded.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from .. import compat


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """The encoder blocks, checked to have the BERT layout the selection and surgery rely on."""
    encoder = getattr(getattr(model, "base_model", model), "encoder", None)
    layers = list(getattr(encoder, "layer", []) or [])
    needed = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "intermediate.dense", "output.dense", "attention.output.LayerNorm", "output.LayerNorm")
    names = {n for n, _ in layers[0].named_modules()} if layers else set()
    if not layers or not all(n in names for n in needed):
        raise ValueError(f"greedy forward selection supports BERT-layout encoders (encoder.layer[i] with "
                         f"{', '.join(needed)}); {type(model).__name__} has another layout")
    act = layers[0].intermediate.intermediate_act_fn
    if float(act(torch.zeros(1))) != 0.0:
        raise ValueError("greedy forward selection pads FFN layers with zero units, which needs act(0) == 0")
    return layers


def head_shape(layer: nn.Module) -> tuple[int, int]:
    attn = layer.attention.self
    return attn.num_attention_heads, attn.attention_head_size


def original_head_ids(layer: nn.Module) -> list[int]:
    """Original index (what `prune_heads` and `config.pruned_heads` use) of each head the layer still has."""
    count, _ = head_shape(layer)
    pruned = set(getattr(layer.attention, "pruned_heads", set()))
    return [h for h in range(count + len(pruned)) if h not in pruned]


def _scale_heads(ctx: torch.Tensor, gate: torch.Tensor, heads: int, size: int) -> torch.Tensor:
    """Multiply each head's slice of the context (B, T, heads*size) by its gate, (heads,) or per example (B, heads)."""
    shaped = ctx.view(*ctx.shape[:-1], heads, size)
    g = gate.to(ctx.dtype)
    g = g[:, None, :, None] if g.dim() == 2 else g[:, None]
    return (shaped * g).view_as(ctx)


@contextmanager
def gated(layers: list[nn.Module], plan: dict[int, dict]):
    """Run the model as if pruned, without touching weights: `plan[layer]` may hold `ffn_gate` (m,) or (B, m),
    `ffn_shift` (d,), `head_gate` (H,) or (B, H) and `head_shift` (d,)."""
    handles = []
    for index, spec in plan.items():
        layer = layers[index]
        heads, size = head_shape(layer)
        if spec.get("ffn_gate") is not None:
            g = spec["ffn_gate"]
            handles.append(layer.intermediate.register_forward_hook(
                lambda m, i, out, g=g: out * (g[:, None, :] if g.dim() == 2 else g).to(out.dtype)))
        if spec.get("ffn_shift") is not None:
            s = spec["ffn_shift"]
            handles.append(layer.output.dense.register_forward_hook(lambda m, i, out, s=s: out + s.to(out.dtype)))
        if spec.get("head_gate") is not None:
            g = spec["head_gate"]
            handles.append(layer.attention.output.dense.register_forward_pre_hook(
                lambda m, args, g=g, h=heads, z=size: (_scale_heads(args[0], g, h, z), *args[1:])))
        if spec.get("head_shift") is not None:
            s = spec["head_shift"]
            handles.append(layer.attention.output.dense.register_forward_hook(
                lambda m, i, out, s=s: out + s.to(out.dtype)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def apply_selection(model: nn.Module, layers: list[nn.Module], plan: dict[int, dict]) -> dict:
    """Fold coefficients and bias shifts into the weights, then physically remove the unselected units.

    `plan[layer]`: `ffn_units` (kept indices), `ffn_gamma`, `ffn_shift`, `heads` (kept current indices),
    `head_gamma`, `head_shift`. Returns the stored FFN width and the padding it needed.
    """
    prune = {}
    for index, spec in plan.items():
        layer = layers[index]
        heads, size = head_shape(layer)
        out = layer.attention.output.dense
        scale = torch.zeros(heads, dtype=torch.float64)
        scale[spec["heads"]] = spec["head_gamma"].detach().cpu().double()
        out.weight.mul_(scale.repeat_interleave(size).to(out.weight)[None, :])
        out.bias.add_(spec["head_shift"].to(out.bias))
        removed = sorted(set(range(heads)) - set(spec["heads"]))
        if removed:
            ids = original_head_ids(layer)
            prune[index] = [ids[h] for h in removed]
    # At least one (zero) unit: a zero-width FFN neither initialises nor exports.
    width = max(1, max(len(spec["ffn_units"]) for spec in plan.values()))
    padding = 0
    for index, spec in plan.items():
        layer = layers[index]
        first, second = layer.intermediate.dense, layer.output.dense
        units = torch.tensor(sorted(spec["ffn_units"]), dtype=torch.long, device=first.weight.device)
        order = torch.argsort(torch.tensor(spec["ffn_units"], dtype=torch.long)).to(spec["ffn_gamma"].device)
        gamma = spec["ffn_gamma"][order]
        new_first = nn.Linear(first.in_features, width, device=first.weight.device, dtype=first.weight.dtype)
        new_second = nn.Linear(width, second.out_features, device=second.weight.device, dtype=second.weight.dtype)
        for module in (new_first, new_second):
            module.weight.zero_()
            module.bias.zero_()
        k = len(units)
        new_first.weight[:k] = first.weight[units]
        new_first.bias[:k] = first.bias[units]
        new_second.weight[:, :k] = second.weight[:, units] * gamma.to(second.weight)[None, :]
        new_second.bias.copy_(second.bias + spec["ffn_shift"].to(second.bias))
        layer.intermediate.dense, layer.output.dense = new_first, new_second
        padding += width - k
    model.config.intermediate_size = width
    if prune:
        compat.remove_heads(model, prune)
    return {"intermediate_size": width, "ffn_padding_units": padding}


@torch.no_grad()
def remove_units(model: nn.Module, keep: dict[str, torch.Tensor]) -> dict:
    """Physically remove the heads and FFN units whose flag in `keep` (`{"head.<layer>": (H,), "ffn.<layer>": (m,)}`,
    True = kept) is False, leaving a smaller dense model that `from_pretrained` reloads without remote code.

    The removed units' output columns must already be zero (masked), so nothing is folded. transformers' attention
    cannot run with no head at all: a layer that lost every head keeps one with zero weights and biases, whose output
    columns are zero too (the residual carries the layer; the report counts it as `head_padding`). Returns the kept
    counts per layer and the padding used."""
    layers = encoder_layers(model)
    plan, heads_kept, padded_heads = {}, [], 0
    for index, layer in enumerate(layers):
        heads, size = head_shape(layer)
        kept_heads = [h for h in range(heads) if bool(keep[f"head.{index}"][h])]
        heads_kept.append(len(kept_heads))
        gamma = torch.ones(len(kept_heads))
        if not kept_heads:
            kept_heads, gamma = [0], torch.zeros(1)  # a zero head, so that the layer's attention still runs
            attn = layer.attention.self
            for linear in (attn.query, attn.key, attn.value):
                linear.weight[:size].zero_()
                linear.bias[:size].zero_()
            padded_heads += 1
        units = [j for j in range(layer.intermediate.dense.out_features) if bool(keep[f"ffn.{index}"][j])]
        hidden = layer.output.dense.out_features
        plan[index] = {"heads": kept_heads, "head_gamma": gamma, "head_shift": torch.zeros(hidden),
                       "ffn_units": units, "ffn_gamma": torch.ones(len(units)), "ffn_shift": torch.zeros(hidden)}
    stored = apply_selection(model, layers, plan)
    return {"heads_per_layer": heads_kept, "ffn_units_per_layer": [len(p["ffn_units"]) for p in plan.values()],
            "head_padding": padded_heads, **stored}
