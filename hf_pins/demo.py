"""The embedded demo task: a small entailment data set in GLUE's RTE format, generated from templates.

GLUE text may not be redistributed with the project, so `make demo` runs on sentences this module writes itself:
a premise states who did what where and when; the hypothesis either restates part of it (entailment) or changes one
fact to a person, place, object or action the premise does not mention (not_entailment). It is meant to be learnable in
a few hundred steps, so that the demo shows what pruning costs, not what the task costs. Regenerate the shipped files with `python -m hf_pins.demo hf_pins/demo_data`.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

NAMES = ["Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Julia", "Kofi", "Lena",
         "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Yusuf"]
PLACES = ["market", "library", "station", "harbour", "museum", "bakery", "stadium", "hospital", "school", "garden",
          "airport", "theatre", "factory", "cafe", "bank", "park"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ACTIONS = [("bought", "sold"), ("painted", "stole"), ("repaired", "broke"), ("found", "lost"), ("borrowed", "burned")]
THINGS = ["a bicycle", "two lamps", "an old map", "a violin", "three chairs", "a red kite", "a clock", "a telescope",
          "some books", "a wooden boat", "a small radio", "a blue scarf"]


def _pair(rng: random.Random) -> tuple[str, str, str]:
    name, other = rng.sample(NAMES, 2)
    place, other_place = rng.sample(PLACES, 2)
    day = rng.choice(DAYS)
    verb, wrong_verb = rng.choice(ACTIONS)
    thing, other_thing = rng.sample(THINGS, 2)
    premise = f"On {day}, {name} {verb} {thing} at the {place} while {other} waited outside."
    if rng.random() < 0.5:
        hypothesis = rng.choice([
            f"{name} {verb} {thing}.",
            f"{name} was at the {place} on {day}.",
            f"{other} waited outside the {place}.",
            f"Something was {verb} at the {place}.",
        ])
        return premise, hypothesis, "entailment"
    stranger = rng.choice([n for n in NAMES if n not in (name, other)])
    hypothesis = rng.choice([
        f"{stranger} {verb} {thing}.",
        f"{name} {wrong_verb} {thing}.",
        f"{name} {verb} {other_thing}.",
        f"{name} was at the {other_place} on {day}.",
        f"{stranger} waited outside the {place}.",
    ])
    return premise, hypothesis, "not_entailment"


def write_demo_glue(root: str | Path, train_size: int = 1200, dev_size: int = 300, seed: int = 0) -> Path:
    """Write `root/RTE/train.tsv` and `root/RTE/dev.tsv` in GLUE's layout; returns `root`."""
    rng = random.Random(seed)
    folder = Path(root) / "RTE"
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in (("train", train_size), ("dev", dev_size)):
        with open(folder / f"{split}.tsv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
            writer.writerow(["index", "sentence1", "sentence2", "label"])
            for index in range(size):
                writer.writerow([index, *_pair(rng)])
    return Path(root)


if __name__ == "__main__":
    print(write_demo_glue(sys.argv[1] if len(sys.argv) > 1 else "hf_pins/demo_data"))
