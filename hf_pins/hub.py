"""The Hugging Face Hub side of hf-pins: recipes from anywhere, and pushing a trained sparse model with its card.

Every Hub call goes through `huggingface_hub.HfApi`, so the token comes from the usual places (the `token` argument,
`HF_TOKEN`, or `hf auth login`) and is handed to huggingface_hub only: it is never printed, logged or written.
"""

from __future__ import annotations

import errno
import importlib.resources
import json
import logging
import os
import re
import shlex
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote

import huggingface_hub
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from . import io
from .errors import RecipeError, UserError
from .paths import RECIPE_FILE
from .plots import PLOT_FILES, REPORT_FILE, write_training_plots

CARD_FILE = "README.md"

logger = logging.getLogger(__name__)

RECIPE_SUFFIXES = (".yaml", ".yml")
RECIPE_FORMS = (
    "a local YAML file, a model directory holding recipe.yaml, a bundled recipe name (see `hf-pins recipes`), "
    "hf://OWNER/REPO[@REVISION]/PATH.yaml, hf://datasets/OWNER/REPO[@REVISION]/PATH.yaml, "
    "or a Hub model id OWNER/REPO[@REVISION] that holds recipe.yaml"
)

# What a model directory must hold to be pushed, and what else is carried when present.
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
CONFIG_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = (
    "tokenizer_config.json", "tokenizer.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "spm.model", "tokenizer.model",
)
REQUIRED_FILES = ("config.json", "tokenizer_config.json", RECIPE_FILE, REPORT_FILE)
ONNX_DIR = "onnx"


# --------------------------------------------------------------------------------------------------------- recipes


def bundled_recipes_dir() -> Path | None:
    """Folder of the recipes shipped with hf-pins: package data `hf_pins/recipes`, else the repository's `recipes/`."""
    packaged = importlib.resources.files("hf_pins").joinpath("recipes")
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "recipes"
    return checkout if checkout.is_dir() else None


def bundled_recipes() -> dict[str, Path]:
    """`{name: path}` of the bundled recipes; the name is the file's stem."""
    folder = bundled_recipes_dir()
    if folder is None:
        return {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in RECIPE_SUFFIXES)
    return {p.stem: p for p in files}


_HF_URL = re.compile(
    r"^hf://(?:(?P<type>datasets|spaces|models)/)?(?P<owner>[\w\-.]+)/(?P<name>[\w\-.]+)(?:@(?P<rev>[^/]+))?"
    r"(?:/(?P<path>.+))?$"
)
_REPO_REF = re.compile(r"^(?P<owner>[\w\-.]+)/(?P<name>[\w\-.]+)(?:@(?P<rev>[^/\s]+))?$")


def _download_recipe(source: str, repo_id: str, filename: str, repo_type: str, revision: str | None) -> Path:
    """Fetch one file from the Hub (or its cache); every Hub failure becomes a RecipeError naming `source`."""
    where = f"{repo_type} repo {repo_id}" + (f" at revision {revision}" if revision else "")
    # `owner/name` may have been meant as a local folder: say that none exists.
    local = "" if source.startswith("hf://") else f" (and there is no local file or folder {source!r})"
    try:
        path = huggingface_hub.HfApi().hf_hub_download(
            repo_id=repo_id, filename=filename, repo_type=repo_type, revision=revision
        )
    except LocalEntryNotFoundError as exc:  # before EntryNotFoundError: it is a subclass
        problem = (f"{filename} of {where} is not in the local cache and the Hub cannot be reached "
                   f"(offline or HF_HUB_OFFLINE=1)")
        raise RecipeError(f"recipe {source!r}: {problem}{local}") from exc
    except EntryNotFoundError as exc:
        raise RecipeError(f"recipe {source!r}: {where} has no file {filename}{local}") from exc
    except RevisionNotFoundError as exc:
        raise RecipeError(f"recipe {source!r}: {repo_type} repo {repo_id} has no revision {revision}{local}") from exc
    except RepositoryNotFoundError as exc:
        problem = f"{repo_type} repo {repo_id} not found, or private/gated and your token cannot read it"
        raise RecipeError(f"recipe {source!r}: {problem}{local}") from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        problem = f"download of {filename} from {where} failed ({_first_line(exc)})"
        raise RecipeError(f"recipe {source!r}: {problem}{local}") from exc
    return Path(path)


def _looks_like_path(source: str) -> bool:
    return (
        source.endswith(RECIPE_SUFFIXES)
        or source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or "\\" in source
    )


def resolve_recipe_source(source: str) -> Path:
    """A local YAML path for `source`: a file, a model dir with recipe.yaml, a bundled name, an hf:// URL or a repo id.

    Local paths win over everything else, so a folder named like a repo id is read from disk. Nothing is parsed here.
    """
    source = str(source).strip()
    if not source:
        raise RecipeError(f"empty recipe source; give {RECIPE_FORMS}")

    if source.startswith("hf://"):
        match = _HF_URL.match(source)
        if match is None:
            raise RecipeError(f"recipe {source!r} is not a valid hf:// address; give {RECIPE_FORMS}")
        repo_type = {"datasets": "dataset", "spaces": "space"}.get(match["type"] or "", "model")
        revision = unquote(match["rev"]) if match["rev"] else None  # refs%2Fpr%2F1 -> refs/pr/1
        filename = match["path"] or RECIPE_FILE
        return _download_recipe(source, f"{match['owner']}/{match['name']}", filename, repo_type, revision)

    local = Path(source).expanduser()
    if local.is_file():
        return local
    if local.is_dir():
        inside = local / RECIPE_FILE
        if inside.is_file():
            return inside
        raise RecipeError(f"recipe {source!r}: directory {local} has no {RECIPE_FILE}; give {RECIPE_FORMS}")

    bundled = bundled_recipes()
    stem = source[: -len(Path(source).suffix)] if source.endswith(RECIPE_SUFFIXES) else source
    if "/" not in source and stem in bundled:
        return bundled[stem]

    if _looks_like_path(source):
        raise RecipeError(f"recipe file {source!r} not found; give {RECIPE_FORMS}")

    match = _REPO_REF.match(source)
    if match is not None:
        repo_id = f"{match['owner']}/{match['name']}"
        revision = unquote(match["rev"]) if match["rev"] else None
        return _download_recipe(source, repo_id, RECIPE_FILE, "model", revision)

    names = ", ".join(bundled) or "none installed"
    raise RecipeError(f"unknown recipe {source!r} (bundled recipes: {names}); give {RECIPE_FORMS}")


# ------------------------------------------------------------------------------------------------------------ push


def _first_line(exc: BaseException, secret: str | None = None) -> str:
    """One line saying what went wrong, with the token (should a server echo it) masked."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return text


def _weight_files(model_dir: Path) -> list[str]:
    if (model_dir / WEIGHTS_FILE).is_file():
        return [WEIGHTS_FILE]
    index = model_dir / WEIGHTS_INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"{index} is not a valid safetensors index ({exc})") from exc
        missing = [s for s in shards if not (model_dir / s).is_file()]
        if missing:
            raise UserError(f"{model_dir} is missing weight shards listed in {WEIGHTS_INDEX}: {', '.join(missing)}")
        return [WEIGHTS_INDEX, *shards]
    if any(model_dir.glob("pytorch_model*.bin")):
        raise UserError(
            f"{model_dir} holds PyTorch .bin weights only; push uploads safetensors: re-save the model with "
            f"`model.save_pretrained(dir, safe_serialization=True)`"
        )
    raise UserError(f"{model_dir} has no {WEIGHTS_FILE}: push needs the folder written by `hf-pins train`")


def _files_to_upload(model_dir: Path, include_onnx: bool) -> list[str]:
    """Relative paths (files, and the onnx/ folder when asked) to carry from `model_dir`; UserError when incomplete."""
    if not model_dir.is_dir():
        raise UserError(f"model directory {model_dir} not found")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise UserError(
            f"{model_dir} is missing {', '.join(missing)}: push needs the folder written by `hf-pins train`"
        )
    files = _weight_files(model_dir)
    files += [n for n in (*CONFIG_FILES, *TOKENIZER_FILES, RECIPE_FILE, REPORT_FILE) if (model_dir / n).is_file()]
    files += sorted(p.name for p in model_dir.glob("benchmark*.json") if p.is_file())
    files += [n for n in PLOT_FILES if (model_dir / n).is_file()]
    for name in files:  # the card reads these: a broken one is reported here, by its own path
        if name.endswith(".json"):
            try:
                json.loads((model_dir / name).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UserError(f"{model_dir / name} is not valid JSON ({exc})") from exc
    if include_onnx:
        onnx = model_dir / ONNX_DIR
        if not onnx.is_dir() or not any(onnx.glob("*.onnx")):
            raise UserError(
                f"{onnx} holds no .onnx file: run `hf-pins export {model_dir} --output {onnx}` first, "
                f"or drop --include-onnx"
            )
        files.append(ONNX_DIR)
    return list(dict.fromkeys(files))


def _link_or_copy(src: str, dst: str) -> None:
    """Hard-link when the file system allows (no second copy of the weights), else copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _assemble(model_dir: Path, folder: Path, repo_id: str, include_onnx: bool, *, link: bool = False) -> list[str]:
    """Write the upload folder: the model's files, plots (drawn when missing) and a freshly rendered README.md.

    `link` hard-links instead of copying: only for a private temporary folder, never for one the user gets to edit.
    """
    place = _link_or_copy if link else shutil.copy2
    files = _files_to_upload(model_dir, include_onnx)
    for name in files:
        src, dst = model_dir / name, folder / name
        if src.is_dir():
            shutil.copytree(src, dst, copy_function=place)
        else:
            place(str(src), str(dst))
    if not all((folder / name).is_file() for name in PLOT_FILES):
        # Drawn from the report into the upload folder: the model directory itself is left untouched (a plot
        # hard-linked above is unlinked first, or drawing would write through the link into the model directory).
        for name in PLOT_FILES:
            (folder / name).unlink(missing_ok=True)
        files += [p.name for p in write_training_plots(model_dir, out_dir=folder) if p.name not in files]
    from .card import render_model_card  # jinja2 and the card template: only when a card is made

    # The card describes the folder being uploaded, so it is rendered from that folder.
    (folder / CARD_FILE).write_text(render_model_card(folder, repo_id=repo_id), encoding="utf-8")
    return [*files, CARD_FILE]


def _retry_command(model_dir: Path, repo_id: str, private: bool, revision: str | None, include_onnx: bool) -> str:
    parts = ["hf-pins", "push", str(model_dir), "--repo-id", repo_id]
    if private:
        parts.append("--private")
    if revision:
        parts += ["--revision", revision]
    if include_onnx:
        parts.append("--include-onnx")
    return " ".join(shlex.quote(p) for p in parts)


def push_model(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    include_onnx: bool = False,
    dry_run_dir: str | Path | None = None,
    token: str | None = None,
) -> str:
    """Upload a trained sparse model with its card, recipe, report, benchmarks and plots; return where it went.

    With `dry_run_dir`, the exact upload folder is written there and nothing is sent (the returned string is that
    folder). Otherwise the repo is created if needed and the folder is uploaded in one commit; the URL is returned.
    Local files are never modified, so a failed upload can simply be retried.
    """
    model_dir = Path(model_dir)
    try:
        validate_repo_id(repo_id)
    except ValueError as exc:
        raise UserError(f"--repo-id {repo_id!r} is not a Hub repo id; give OWNER/NAME") from exc

    if dry_run_dir is not None:
        out = Path(dry_run_dir)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UserError(f"--dry-run {out} is not a new or empty folder; give one that is")
        _files_to_upload(model_dir, include_onnx)  # fail before creating anything
        io.check_writable(out, "--dry-run")
        # Built in a staging folder and moved into place when complete: a dry run writes the whole upload or nothing.
        with io.stop_on_signals("push --dry-run", keeps=f"nothing was written to {out}") as stop, \
                io.staged_dir(out, "--dry-run") as staging:
            files = _assemble(model_dir, staging, repo_id, include_onnx)
            stop.check()
        logger.info("dry run: wrote %d files for %s into %s; nothing uploaded", len(files), repo_id, out)
        return str(out)

    retry = _retry_command(model_dir, repo_id, private, revision, include_onnx)
    _files_to_upload(model_dir, include_onnx)
    if token is None and huggingface_hub.get_token() is None:
        raise UserError(f"no Hugging Face token found: run `hf auth login` or set HF_TOKEN, then: {retry}")

    api = huggingface_hub.HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="hf-pins-push-") as tmp:
        try:
            files = _assemble(model_dir, Path(tmp), repo_id, include_onnx, link=True)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                raise
            raise io.output_error(exc, tmp, "the upload folder") from None
        logger.info("uploading %d files to %s", len(files), repo_id)
        try:
            api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
            api.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                repo_type="model",
                revision=revision,
                commit_message="Upload sparse model with hf-pins",
            )
        except (OSError, ValueError) as exc:  # HTTP, connection and offline errors are OSError; bad input ValueError
            raise UserError(
                f"upload to {repo_id} failed ({_first_line(exc, token or huggingface_hub.get_token())}); "
                f"nothing local was changed, retry with: {retry}"
            ) from exc
    url = f"{api.endpoint}/{repo_id}"
    return f"{url}/tree/{quote(revision, safe='')}" if revision else url
