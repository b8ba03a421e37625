"""A GLUE task trained twice with the same recipe, rows and seed: through the GLUE path, and as the user's own CSV files
through the general path (`task: text-classification`). The two test scores must be the same.

    python benchmarks/own_data_vs_glue.py --glue-dir ../shared/glue --task rte

The task's `train.tsv` and `dev.tsv` become `train.csv` and `validation.csv` (columns sentence1, sentence2, label);
the run's budget is the MiniLM recipe's, cut by `--set` overrides (default: 800 training examples, 80 steps).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUDGET = ["data.max_train_samples=800", "training.max_steps=80", "training.eval_steps=20", "training.save_steps=80",
          "pruning.dense_warmup_epochs=0", "pruning.dense_warmup_ratio=0.25", "training.disable_tqdm=true"]


def tsv_to_csv(source: Path, target: Path) -> int:
    with open(source, encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    with open(target, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "label"])
        writer.writerows([r[1], r[2], r[3]] for r in records[1:])
    return len(records) - 1


def main(argv=None) -> int:
    from hf_pins.recipe import load_recipe
    from hf_pins.training import run_training

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--glue-dir", default="../shared/glue")
    parser.add_argument("--task", default="rte", choices=("rte",), help="a pair task whose labels are names")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="another recipe override")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "own_data" / "own_data_vs_glue.json"))
    options = parser.parse_args(argv)
    overrides = BUDGET + options.set
    folder = Path(options.glue_dir) / {"rte": "RTE"}[options.task]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        rows = {name: tsv_to_csv(folder / f"{tsv}.tsv", scratch / f"{name}.csv")
                for name, tsv in (("train", "train"), ("validation", "dev"))}
        glue = load_recipe(f"minilm-{options.task}", overrides=[f"data.glue_dir={options.glue_dir}", *overrides])
        own = load_recipe(f"minilm-{options.task}", overrides=[
            "task=text-classification", f"data.train_file={scratch / 'train.csv'}",
            f"data.validation_file={scratch / 'validation.csv'}", "data.text_columns=[sentence1, sentence2]",
            "data.metrics=[accuracy]", *overrides])
        for name, recipe in (("glue_path", glue), ("own_data_path", own)):
            result = run_training(recipe, output_dir=str(scratch / name))
            results[name] = {"test": result.report["metrics"]["test"], "dev": result.report["metrics"]["dev"],
                             "overall": result.report["overall"], "seconds": round(result.seconds, 1)}
    out = {"task": options.task, "overrides": overrides, "csv_rows": rows, "results": results,
           "same_test_accuracy": results["glue_path"]["test"]["accuracy"] == results["own_data_path"]["test"]["accuracy"]}
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v["test"] for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
