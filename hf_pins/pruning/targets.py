"""Which weights are prunable, found by regular expressions over module names.

The default finds the attention and feed-forward projections of any encoder in transformers (BERT, RoBERTa,
DistilBERT, DeBERTa-v2, ELECTRA, MiniLM, ...) by structure, not by BERT's names: every `nn.Linear` inside a repeated
block `...layer.<i>...`. Embeddings, LayerNorms, pooler and classifier live outside those blocks (and embeddings and
LayerNorms are not `nn.Linear`), so they are never selected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import nn

DEFAULT_PRUNABLE_PATTERNS: tuple[str, ...] = (r"(^|\.)(layer|layers)\.\d+\.",)

# Whatever the user's patterns say, these are never pruned.
NEVER_PRUNED = re.compile(r"(embed|LayerNorm|layer_norm|pooler|classifier)", re.IGNORECASE)


def find_prunable(model: nn.Module, patterns: Iterable[str] = DEFAULT_PRUNABLE_PATTERNS) -> dict[str, nn.Parameter]:
    """Map `module_name.weight` to the weight of every prunable `nn.Linear`, in module order."""
    compiled = [re.compile(p) for p in patterns]
    found: dict[str, nn.Parameter] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or NEVER_PRUNED.search(name):
            continue
        if any(p.search(name) for p in compiled):
            found[f"{name}.weight"] = module.weight
    return found


def sparsity_report(model: nn.Module, patterns: Iterable[str] = DEFAULT_PRUNABLE_PATTERNS) -> dict:
    """`{"overall": float, "modules": {name: float}}`: the fraction of exact zeros among the prunable weights."""
    modules: dict[str, float] = {}
    zeros = total = 0
    with torch.no_grad():
        for name, weight in find_prunable(model, patterns).items():
            z = int((weight == 0).sum())
            modules[name] = z / weight.numel()
            zeros += z
            total += weight.numel()
    return {"overall": zeros / total if total else 0.0, "modules": modules}
