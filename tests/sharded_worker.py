"""Run by tests/test_sharded.py: prune a tiny model for a few steps with weights sharded over two processes by FSDP2
(`fully_shard`, gloo on CPU, launched by torchrun), or whole in one process, with the same global batch, and write
the full masks at every mask update (gathered from the shards) and the sparsity report."""

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import pad_collate, tiny_bert, token_dataset  # noqa: E402

from hf_pins.pruning.pruner import Pruner  # noqa: E402
from hf_pins.pruning.schedule import CubicSchedule  # noqa: E402
from hf_pins.pruning.sharding import DTensor  # noqa: E402

STEPS, GLOBAL_BATCH = 24, 8


def full_masks(pruner: Pruner) -> dict[str, list[int]]:
    """Indices of kept weights per matrix, the shards put back together."""
    out = {}
    for name, mask in pruner.masks.items():
        p = pruner.params[name]
        if isinstance(p, DTensor):
            mask = DTensor.from_local(mask.to(torch.uint8), p.device_mesh, p.placements, shape=p.shape,
                                      stride=p.stride()).full_tensor().bool()
        out[name] = mask.flatten().nonzero().flatten().tolist()
    return out


def main(output_dir: str, method: str, threshold: str) -> None:
    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = 0
    model = tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if world > 1:
        from torch.distributed.fsdp import fully_shard

        dist.init_process_group("gloo")
        rank = dist.get_rank()
        for block in model.bert.encoder.layer:
            fully_shard(block)
        fully_shard(model)
    args = SimpleNamespace(score_beta1=0.85, score_beta2=0.95)
    pruner = Pruner(model, method, 0.8, threshold=threshold, args=args)
    pruner.set_schedule(CubicSchedule(STEPS, 0.8, warmup_steps=4, final_steps=6, update_interval=2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = token_dataset(64)
    updates = []
    for step in range(STEPS):
        batch = pad_collate([data[(step * GLOBAL_BATCH + i) % len(data)] for i in range(GLOBAL_BATCH)])
        if world > 1:  # this process's rows of the global batch (same padding as the whole batch)
            share = GLOBAL_BATCH // world
            batch = {k: v[rank * share:(rank + 1) * share] for k, v in batch.items()}
        model(**batch).loss.backward()
        pruner.before_optimizer_step(step, optimizer)
        optimizer.step()
        if pruner.after_optimizer_step(step, optimizer):
            updates.append({"step": step, "kept": full_masks(pruner), "threshold": pruner.last_threshold})
        optimizer.zero_grad()
    report = pruner.report()
    result = {"world_size": world, "sharded": pruner.group is not None, "updates": updates, "final": full_masks(pruner),
              "sparsity": pruner.sparsity(), "measured": report["overall"], "modules": report["modules"]}
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    Path(output_dir, f"rank{rank}.json").write_text(json.dumps(result))
    if world > 1:
        # Both ranks leave together: a rank tearing gloo down while the other still talks to it aborts the process
        # ("terminate called without an active exception"), which a loaded machine makes likely.
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
