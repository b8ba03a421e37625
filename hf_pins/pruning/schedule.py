"""The cubic sparsity schedule (Zhu & Gupta 2017, as used by PLATON and PINS), counted in real optimizer steps.

Step `t` is the index of the optimizer step that has just been taken (0 .. total_steps - 1), so gradient accumulation is
already folded in: the Trainer's `max_steps` is the number of optimizer updates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CubicSchedule:
    """Fraction of prunable weights kept, `r(t)`.

    * `t < warmup_steps` (`t_i`): 1, dense fine-tuning.
    * ramp: `r(t) = r_f + (1 - r_f) * (1 - (t - t_i) / (T - t_i - t_f)) ** 3`, masks recomputed every `update_interval`.
    * the last `final_steps` (`t_f`): `r_f`, masks recomputed every step.
    """

    total_steps: int
    target_sparsity: float
    warmup_steps: int
    final_steps: int
    update_interval: int = 10

    def __post_init__(self):
        if not 0.0 <= self.target_sparsity < 1.0:
            raise ValueError(f"target_sparsity must be in [0, 1), got {self.target_sparsity}")
        if self.update_interval < 1:
            raise ValueError(f"mask_update_interval must be >= 1, got {self.update_interval}")
        if self.final_steps < 1:
            raise ValueError("final_steps must be >= 1 so that the last step is at the target sparsity")
        if self.warmup_steps < 0 or self.warmup_steps + self.final_steps >= self.total_steps:
            raise ValueError(
                f"dense warm-up ({self.warmup_steps}) + final ({self.final_steps}) steps must be fewer than the "
                f"{self.total_steps} optimizer steps of this run"
            )

    @classmethod
    def from_config(
        cls,
        total_steps: int,
        target_sparsity: float,
        warmup_steps: int = 0,
        warmup_ratio: float = 0.0,
        final_steps: int = 0,
        final_ratio: float = 0.0,
        update_interval: int = 10,
        warmup_epochs: float = 0.0,
        steps_per_epoch: int = 0,
    ) -> CubicSchedule:
        """Steps given explicitly win over epochs, epochs over ratios of `total_steps` (like `warmup_steps` /
        `warmup_ratio`). Epochs say what the warm-up is for, learning the task before pruning, whatever the run's length."""
        if warmup_steps > 0:
            t_i = warmup_steps
        elif warmup_epochs > 0:
            if steps_per_epoch < 1:
                raise ValueError("warmup_epochs needs the number of optimizer steps per epoch")
            t_i = int(round(warmup_epochs * steps_per_epoch))
        else:
            t_i = int(round(warmup_ratio * total_steps))
        t_f = final_steps if final_steps > 0 else max(1, int(round(final_ratio * total_steps)))
        return cls(total_steps, target_sparsity, t_i, t_f, update_interval)

    @classmethod
    def from_args(cls, args, total_steps: int, steps_per_epoch: int) -> CubicSchedule:
        """The schedule a `PINSConfig` asks for (its `dense_warmup_*` and `pruning_final_*` fields), for a run of `total_steps` optimizer steps."""
        return cls.from_config(
            total_steps,
            args.target_sparsity,
            warmup_steps=args.dense_warmup_steps,
            warmup_ratio=args.dense_warmup_ratio,
            final_steps=args.pruning_final_steps,
            final_ratio=args.pruning_final_ratio,
            update_interval=args.mask_update_interval,
            warmup_epochs=args.dense_warmup_epochs,
            steps_per_epoch=steps_per_epoch,
        )

    @property
    def final_start(self) -> int:
        """First step of the final phase, `T - t_f`."""
        return self.total_steps - self.final_steps

    def keep_ratio(self, step: int) -> float:
        r_f = 1.0 - self.target_sparsity
        if step < self.warmup_steps:
            return 1.0
        if step >= self.final_start:
            return r_f
        progress = (step - self.warmup_steps) / (self.final_start - self.warmup_steps)
        return r_f + (1.0 - r_f) * (1.0 - progress) ** 3

    def sparsity(self, step: int) -> float:
        return 1.0 - self.keep_ratio(step)

    def closes_window(self, step: int) -> bool:
        """Score windows of `update_interval` steps; in the final phase every step is its own window."""
        return step >= self.final_start or (step + 1) % self.update_interval == 0

    def updates_mask(self, step: int) -> bool:
        return step >= self.warmup_steps and self.closes_window(step)

    def at_target(self, step: int) -> bool:
        return step >= self.final_start


def optimizer_steps_per_epoch(batches: int, accumulation: int) -> int:
    """The Trainer's count: one optimizer step per `accumulation` batches, the last one possibly short."""
    return max(1, batches // accumulation + int(batches % accumulation > 0))
