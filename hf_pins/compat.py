"""Differences between the transformers releases hf_pins supports (4.57 and 5.x), handled here and nowhere else.

hf_pins plugs into `transformers.Trainer`; where a Trainer detail it relies on changed between 4.57 and 5.x, the rest
of the package calls the function below instead of checking versions itself. Each function tests for the feature, not
the version number, so a later release that keeps the 5.x form needs no change here.
"""

from __future__ import annotations

from contextlib import contextmanager

from transformers import trainer_utils
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
