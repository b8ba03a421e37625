"""Differences between the transformers releases hf_pins supports (4.57 and 5.x), handled here and nowhere else.

hf_pins plugs into `transformers.Trainer`; where a Trainer detail it relies on changed between 4.57 and 5.x, the rest
of the package calls the function below instead of checking versions itself. Each function tests for the feature, not
the version number, so a later release that keeps the 5.x form needs no change here.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

from transformers import TrainingArguments, trainer_utils
from transformers.utils import logging as hf_logging


def rotate_checkpoints(trainer, run_dir: str) -> None:
    """Delete the checkpoints beyond `save_total_limit` in `run_dir`, keeping the newest and the best one.

    transformers 5 moved this out of the Trainer (the private `Trainer._rotate_checkpoints` is gone) into
    `transformers.trainer_utils.rotate_checkpoints`; 4.57 has only the method.
    """
    if hasattr(trainer_utils, "rotate_checkpoints"):
        trainer_utils.rotate_checkpoints(
            output_dir=run_dir,
            save_total_limit=trainer.args.save_total_limit,
            best_model_checkpoint=trainer.state.best_model_checkpoint,
            use_mtime=False,
        )
    else:
        trainer._rotate_checkpoints(use_mtime=False, output_dir=run_dir)


@contextmanager
def no_weight_loading_bar():
    """Within this block, `from_pretrained` draws no "Loading weights" progress bar (download bars stay).

    transformers 5 draws that bar on stderr for every model it loads, where 4.57 drew none. The CLI keeps stderr for
    what the user must read (a mistake is one `error:` line), so its commands run inside this block.
    """
    set_hook = getattr(hf_logging, "set_tqdm_hook", None)
    if set_hook is None:  # 4.57: no such bar, and no hook to set
        yield
        return

    def hook(factory, args, kwargs):
        if kwargs.get("desc") == "Loading weights":
            kwargs = {**kwargs, "disable": True}
        return previous(factory, args, kwargs) if previous is not None else factory(*args, **kwargs)

    previous = set_hook(hook)
    try:
        yield
    finally:
        set_hook(previous)


def training_arguments_kwargs(training: dict) -> dict:
    """A recipe's `training:` keys as this transformers' `TrainingArguments` takes them.

    transformers 5 dropped `warmup_ratio`: a `warmup_steps` below 1 is now the fraction of the run. Recipes keep
    `warmup_ratio` (the bundled ones and every 4.x recipe use it); where the field is gone, a fraction in [0, 1)
    becomes that `warmup_steps` (unless `warmup_steps` is set: it overrode the ratio in 4.x too). Anything else is left
    for the recipe checks to refuse.
    """
    ratio = training.get("warmup_ratio")
    if ratio is None or "warmup_ratio" in {f.name for f in dataclasses.fields(TrainingArguments)}:
        return dict(training)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        return dict(training)
    out = {k: v for k, v in training.items() if k != "warmup_ratio"}
    if not out.get("warmup_steps"):
        out["warmup_steps"] = float(ratio)
    return out


def removes_heads() -> bool:
    """Whether this transformers release can take attention heads out of a model (4.x can; 5.x zeroes them)."""
    from transformers import PreTrainedModel

    return hasattr(PreTrainedModel, "prune_heads")


def remove_heads(model, heads: dict[int, list[int]]) -> None:
    """Take the attention heads `heads` (layer index -> original head ids) out of a BERT-layout encoder.

    transformers 4.57 removes them (`PreTrainedModel.prune_heads`), records them in `config.pruned_heads` and
    `from_pretrained` rebuilds the smaller layers. transformers 5 dropped head pruning altogether, and a BERT config
    has one head count for all layers, so there the heads stay in place with their query, key and value rows and
    their output columns set to zero: the model computes the same function, loads anywhere, and the heads stay zero
    under further training (a head whose values and output weights are zero gets zero gradients), but their
    parameters and FLOPs remain.
    """
    if hasattr(model, "prune_heads"):
        model.prune_heads(heads)
        return
    import torch

    layers = model.base_model.encoder.layer
    with torch.no_grad():
        for index, ids in heads.items():
            attention = layers[index].attention
            size = attention.self.attention_head_size
            for head in ids:
                rows = slice(head * size, (head + 1) * size)
                for linear in (attention.self.query, attention.self.key, attention.self.value):
                    linear.weight[rows] = 0
                    if linear.bias is not None:
                        linear.bias[rows] = 0
                attention.output.dense.weight[:, rows] = 0
