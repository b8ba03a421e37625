"""Run by tests/test_distributed.py, once under `accelerate launch --num_processes 2` and once alone: prune a tiny
model with the same global batch and write each process's final masks and the masks at every update."""

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_trainer, tiny_bert  # noqa: E402


def main(output_dir: str, per_device_batch: int) -> None:
    torch.set_num_threads(1)
    model = tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    trainer = make_trainer(output_dir, model=model, per_device_train_batch_size=per_device_batch,
                           per_device_eval_batch_size=8, save_strategy="steps", save_steps=16,
                           **({"ddp_backend": "gloo"} if distributed else {}))
    snapshots = []
    original = trainer.pruner.update_masks

    def recording(*args, **kwargs):
        original(*args, **kwargs)
        snapshots.append({n: m.flatten().nonzero().flatten().tolist() for n, m in trainer.pruner.masks.items()})

    trainer.pruner.update_masks = recording
    trainer.train()
    rank = trainer.args.process_index
    Path(output_dir, f"masks-rank{rank}.json").write_text(json.dumps({
        "world_size": trainer.args.world_size, "updates": snapshots,
        "final": {n: m.flatten().nonzero().flatten().tolist() for n, m in trainer.pruner.masks.items()},
        "sparsity": trainer.sparsity_report()["overall"],
    }))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
