"""Recipes from anywhere and `hf-pins push`, with the Hub intercepted at the huggingface_hub boundary."""

import hashlib
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import yaml
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
from test_card import build_model_dir

from hf_pins import hub
from hf_pins.cli import main
from hf_pins.errors import RecipeError, UserError

# A missing file on the Hub: huggingface_hub 1.x raises RemoteEntryNotFoundError (EntryNotFoundError became a plain
# base class it shares with LocalEntryNotFoundError); 0.x raises EntryNotFoundError.
REMOTE_ENTRY_NOT_FOUND = getattr(huggingface_hub.errors, "RemoteEntryNotFoundError", EntryNotFoundError)


def hub_error(cls, message: str, status: int):
    """The error huggingface_hub raises for a failed request. From hub 1.0 it requires the HTTP response; the stand-in
    holds the fields the error reads, since the Hub's network is what these tests cannot reach."""
    return cls(message, response=SimpleNamespace(status_code=status, headers={}, request=None))

FAKE_TOKEN = "hf_FAKEtokenFORtestsONLY1234567890abcd"


@pytest.fixture
def hub_downloads(monkeypatch, tmp_path):
    """Intercept HfApi.hf_hub_download: record each call and serve a recipe file from a fake Hub."""
    calls = []

    def fake_download(self, repo_id, filename, *, repo_type=None, revision=None, **kwargs):
        calls.append({"repo_id": repo_id, "filename": filename, "repo_type": repo_type, "revision": revision})
        path = tmp_path / "fake-hub" / (repo_type or "model") / repo_id / (revision or "main") / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("task: rte\n")
        return str(path)

    monkeypatch.setattr(HfApi, "hf_hub_download", fake_download)
    return calls


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test on any upload: dry runs and user errors must not reach the Hub."""
    def refuse(*args, **kwargs):
        raise AssertionError("the Hub was called")

    for name in ("create_repo", "create_branch", "upload_folder", "hf_hub_download"):
        monkeypatch.setattr(HfApi, name, refuse)


# ---------------------------------------------------------------------------------------------- recipe sources


def test_local_file_and_model_directory(tmp_path, no_network):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("task: rte\n")
    assert hub.resolve_recipe_source(str(recipe)) == recipe
    model = tmp_path / "model"
    model.mkdir()
    (model / "recipe.yaml").write_text("task: rte\n")
    assert hub.resolve_recipe_source(str(model)) == model / "recipe.yaml"


def test_directory_without_recipe_is_a_recipe_error(tmp_path, no_network):
    with pytest.raises(RecipeError, match="has no recipe.yaml"):
        hub.resolve_recipe_source(str(tmp_path))


@pytest.mark.parametrize("source", ["missing.yaml", "./configs/missing", "a/b/c.yml"])
def test_missing_local_file_is_not_sent_to_the_hub(source, no_network):
    with pytest.raises(RecipeError, match="not found") as info:
        hub.resolve_recipe_source(source)
    assert source in str(info.value) and "hf://" in str(info.value)  # names the source and the accepted forms


def test_bundled_recipe_by_name(no_network):
    bundled = hub.bundled_recipes()
    assert {"demo", "minilm-rte", "bert-base-rte"} <= set(bundled)  # the package ships its recipes
    name, path = next(iter(bundled.items()))
    assert hub.resolve_recipe_source(name) == path
    assert hub.resolve_recipe_source(name + ".yaml") == path
    assert path.parent == hub.bundled_recipes_dir()


@pytest.mark.parametrize("source, expected", [
    ("hf://me/pruned/recipe.yaml", ("me/pruned", "recipe.yaml", "model", None)),
    ("hf://me/pruned@v1/configs/rte.yaml", ("me/pruned", "configs/rte.yaml", "model", "v1")),
    ("hf://me/pruned@refs%2Fpr%2F3/recipe.yaml", ("me/pruned", "recipe.yaml", "model", "refs/pr/3")),
    ("hf://datasets/me/recipes/glue/rte.yaml", ("me/recipes", "glue/rte.yaml", "dataset", None)),
    ("hf://datasets/me/recipes@main/rte.yaml", ("me/recipes", "rte.yaml", "dataset", "main")),
    ("hf://me/pruned", ("me/pruned", "recipe.yaml", "model", None)),
    ("me/pruned", ("me/pruned", "recipe.yaml", "model", None)),
    ("me/pruned@a1b2c3", ("me/pruned", "recipe.yaml", "model", "a1b2c3")),
])
def test_hub_sources(source, expected, hub_downloads):
    path = hub.resolve_recipe_source(source)
    (call,) = hub_downloads
    assert (call["repo_id"], call["filename"], call["repo_type"], call["revision"]) == expected
    assert path.is_file() and path.name == Path(expected[1]).name


@pytest.mark.parametrize("error, fragment", [
    (hub_error(REMOTE_ENTRY_NOT_FOUND, "404 Client Error: Entry Not Found", 404), "has no file recipe.yaml"),
    (hub_error(RepositoryNotFoundError, "401 Client Error: Repository Not Found", 401), "not found, or private/gated"),
    (hub_error(HfHubHTTPError, "500 Server Error", 500), "500 Server Error"),
])
def test_hub_failures_become_recipe_errors(monkeypatch, error, fragment):
    def fail(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(HfApi, "hf_hub_download", fail)
    with pytest.raises(RecipeError, match=fragment) as info:
        hub.resolve_recipe_source("me/pruned")
    assert "'me/pruned'" in str(info.value)


def test_offline_and_not_cached_is_a_recipe_error(monkeypatch, tmp_path):
    # The real hf_hub_download, offline, on an empty cache: it must fail fast without any network.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RecipeError, match="not in the local cache"):
        hub.resolve_recipe_source("hf://me/never-downloaded/recipe.yaml")


@pytest.mark.parametrize("source", ["", "not a recipe!", "hf://only-one-part", "no-such-bundled-name"])
def test_unresolvable_sources_list_the_accepted_forms(source, no_network):
    with pytest.raises(RecipeError) as info:
        hub.resolve_recipe_source(source)
    assert "bundled recipe name" in str(info.value) and "hf://OWNER/REPO" in str(info.value)


# ------------------------------------------------------------------------------------------------------ recipes


def test_recipes_command_lists_task_model_and_method(capsys):
    bundled = hub.bundled_recipes()
    # demo, intents (own data), nine BERT-base GLUE recipes, five MiniLM ones, two structured MiniLM ones
    assert len(bundled) == 18
    assert {"minilm-sst2-structured", "minilm-sst2-compound"} <= set(bundled)
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "TASK", "MODEL", "METHOD", "SPARSITY"]
    for name, path in bundled.items():
        data = yaml.safe_load(path.read_text())
        row = next(line.split() for line in out.splitlines() if line.split()[:1] == [name])
        assert row[1] == str(data["task"]) and row[2] == str(data["model"]["name_or_path"])
        assert row[3] == str(data["pruning"]["method"])
    name, path = next(iter(bundled.items()))
    assert main(["recipes", name]) == 0 and capsys.readouterr().out == path.read_text()
    assert main(["recipes", "no-such-recipe"]) == 2


# --------------------------------------------------------------------------------------------------------- push


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_no_token(folder: Path, *texts: str):
    for path in folder.rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path
    for text in texts:
        assert FAKE_TOKEN not in text


@pytest.fixture
def model_dir(tmp_path):
    return build_model_dir(tmp_path / "run")


def test_dry_run_writes_the_exact_upload_folder(model_dir, tmp_path, capsys, caplog, monkeypatch, no_network):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    for path in model_dir.glob("*.png"):
        path.unlink()  # plots are drawn when missing, into the upload folder only
    (model_dir / "training_args.bin").write_bytes(b"pickle")  # training leftovers stay home
    (model_dir / "checkpoint-10").mkdir()
    (model_dir / "checkpoint-10" / "optimizer.pt").write_bytes(b"state")
    before = snapshot(model_dir)
    out = tmp_path / "upload"
    caplog.set_level(logging.DEBUG)
    assert main(["push", str(model_dir), "--repo-id", "me/x", "--dry-run", str(out)]) == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out and "nothing uploaded" in captured.out

    names = {p.name for p in out.iterdir()}
    # The vocabulary's files depend on the transformers release that saved the tokenizer (5.x: tokenizer.json only).
    vocabulary = {name for name in ("vocab.txt", "tokenizer.json") if (model_dir / name).is_file()}
    assert vocabulary and vocabulary <= names
    assert {"README.md", "config.json", "model.safetensors", "tokenizer_config.json", "recipe.yaml",
            "pruning_report.json", "sparsity_per_layer.png", "schedule.png"} <= names
    assert not {"training_args.bin", "checkpoint-10"} & names and all(p.is_file() for p in out.iterdir())
    assert (out / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    card = ModelCard.load(out / "README.md")
    assert {"pruning", "sparse"} <= set(card.data.tags)
    (result,) = card.data.eval_results
    assert result.metric_type == "accuracy" and result.metric_value == 0.68 and result.dataset_split == "validation"
    overall = yaml.safe_load((model_dir / "pruning_report.json").read_text())["overall"]
    assert f"**{overall:.1%} sparsity**" in card.text and f"**{overall:.1%}** of the" in card.text
    assert "hf-pins train hf://me/x/recipe.yaml" in card.text
    assert snapshot(model_dir) == before  # the model directory is untouched
    assert_no_token(out, captured.out, captured.err, caplog.text)


def test_dry_run_refuses_a_non_empty_folder(model_dir, tmp_path, capsys, no_network):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["push", str(model_dir), "--repo-id", "me/x", "--dry-run", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(out) in err[0]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("remove, fragment", [
    ("recipe.yaml", "recipe.yaml"),
    ("pruning_report.json", "pruning_report.json"),
    ("model.safetensors", "model.safetensors"),
    ("tokenizer_config.json", "tokenizer_config.json"),
])
def test_incomplete_model_dir_is_a_user_error_and_writes_nothing(model_dir, tmp_path, capsys, no_network,
                                                                 remove, fragment):
    (model_dir / remove).unlink()
    out = tmp_path / "upload"
    assert main(["push", str(model_dir), "--repo-id", "me/x", "--dry-run", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not out.exists()


def test_broken_json_is_reported_by_its_own_path(model_dir, tmp_path, capsys, no_network):
    (model_dir / "benchmark.json").write_text("{not json")
    assert main(["push", str(model_dir), "--repo-id", "me/x", "--dry-run", str(tmp_path / "out")]) == 2
    assert str(model_dir / "benchmark.json") in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_sharded_safetensors_are_carried_whole(model_dir, tmp_path, no_network):
    (model_dir / "model.safetensors").unlink()
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = {"metadata": {}, "weight_map": {"a.weight": shards[0], "b.weight": shards[1]}}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    (model_dir / shards[0]).write_bytes(b"one")
    with pytest.raises(UserError, match=shards[1]):
        hub.push_model(model_dir, "me/x", dry_run_dir=tmp_path / "a")
    (model_dir / shards[1]).write_bytes(b"two")
    hub.push_model(model_dir, "me/x", dry_run_dir=tmp_path / "b")
    assert {"model.safetensors.index.json", *shards} <= {p.name for p in (tmp_path / "b").iterdir()}


def test_missing_model_dir_and_bad_repo_id(tmp_path, capsys, no_network):
    assert main(["push", str(tmp_path / "nope"), "--repo-id", "me/x", "--dry-run", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(UserError, match="repo id"):
        hub.push_model(tmp_path, "not a/valid/id", dry_run_dir=tmp_path / "o")


def test_onnx_export_only_when_asked(model_dir, tmp_path, no_network):
    with pytest.raises(UserError, match="run `hf-pins export .* --output .*onnx` first"):
        hub.push_model(model_dir, "me/x", include_onnx=True, dry_run_dir=tmp_path / "a")
    (model_dir / "onnx").mkdir()
    (model_dir / "onnx" / "model.onnx").write_bytes(b"onnx")
    (model_dir / "onnx" / "config.json").write_text("{}")
    hub.push_model(model_dir, "me/x", dry_run_dir=tmp_path / "b")
    assert not (tmp_path / "b" / "onnx").exists()
    hub.push_model(model_dir, "me/x", include_onnx=True, dry_run_dir=tmp_path / "c")
    assert (tmp_path / "c" / "onnx" / "model.onnx").read_bytes() == b"onnx"
    assert 'runtime.load(f"{model_dir}/onnx")' in (tmp_path / "c" / "README.md").read_text()


@pytest.fixture
def fake_hub(monkeypatch):
    """Intercept repo creation and upload; keep what each call saw, including the upload folder's bytes."""
    seen = {}

    def create_repo(self, repo_id, *, token=None, private=None, repo_type=None, exist_ok=False, **kwargs):
        seen["create_repo"] = {"repo_id": repo_id, "private": private, "repo_type": repo_type, "exist_ok": exist_ok,
                               "token": token or self.token}
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id, *, branch, repo_type=None, exist_ok=False, **kwargs):
        seen["create_branch"] = {"repo_id": repo_id, "branch": branch, "exist_ok": exist_ok}

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, revision=None, commit_message=None, **kwargs):
        folder = Path(folder_path)
        seen["upload_folder"] = {"repo_id": repo_id, "repo_type": repo_type, "revision": revision,
                                 "files": {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
                                           if p.is_file()}}
        return "commit"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return seen


def test_push_uploads_with_the_token_and_never_writes_it(model_dir, fake_hub, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    (model_dir / "schedule.png").unlink()  # one plot missing: both are redrawn in the upload folder only
    before = snapshot(model_dir)
    url = hub.push_model(model_dir, "me/x", private=True, revision="sparse-80", token=FAKE_TOKEN)
    assert url.endswith("/me/x/tree/sparse-80")
    assert fake_hub["create_repo"] == {"repo_id": "me/x", "private": True, "repo_type": "model", "exist_ok": True,
                                       "token": FAKE_TOKEN}
    assert fake_hub["create_branch"]["branch"] == "sparse-80"
    upload = fake_hub["upload_folder"]
    assert upload["repo_id"] == "me/x" and upload["revision"] == "sparse-80" and upload["repo_type"] == "model"
    assert {"README.md", "model.safetensors", "config.json", "recipe.yaml", "pruning_report.json",
            "sparsity_per_layer.png", "schedule.png"} <= set(upload["files"])
    assert all(FAKE_TOKEN.encode() not in data for data in upload["files"].values())
    captured = capsys.readouterr()
    assert_no_token(model_dir, captured.out, captured.err, caplog.text)
    assert snapshot(model_dir) == before


def test_push_command_takes_the_token_from_the_environment(model_dir, fake_hub, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    caplog.set_level(logging.DEBUG)
    assert main(["push", str(model_dir), "--repo-id", "me/x"]) == 0
    captured = capsys.readouterr()
    assert "pushed to" in captured.out and captured.out.strip().endswith("/me/x")
    assert fake_hub["create_repo"]["private"] is False and "create_branch" not in fake_hub
    assert huggingface_hub.get_token() == FAKE_TOKEN  # huggingface_hub resolves it at request time
    assert all(FAKE_TOKEN.encode() not in data for data in fake_hub["upload_folder"]["files"].values())
    assert_no_token(model_dir, captured.out, captured.err, caplog.text)


def test_failed_upload_keeps_local_files_and_says_how_to_retry(model_dir, fake_hub, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)

    def broken_upload(self, **kwargs):
        message = f"503 Server Error: Service Unavailable (token {FAKE_TOKEN})\nRequest ID: 1"
        raise hub_error(HfHubHTTPError, message, 503)

    monkeypatch.setattr(HfApi, "upload_folder", broken_upload)
    caplog.set_level(logging.DEBUG)
    before = snapshot(model_dir)
    code = main(["push", str(model_dir), "--repo-id", "me/x", "--private"])
    captured = capsys.readouterr()
    assert code == 2
    (line,) = captured.err.strip().splitlines()
    assert "503 Server Error" in line and f"hf-pins push {model_dir} --repo-id me/x --private" in line
    assert snapshot(model_dir) == before
    assert_no_token(model_dir, captured.out, captured.err, caplog.text)


def test_push_without_any_token_stops_before_the_hub(model_dir, monkeypatch, tmp_path, no_network):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(UserError, match="hf auth login"):
        hub.push_model(model_dir, "me/x")


def test_trained_model_pushes_end_to_end(tmp_path, tiny_recipe, capsys, no_network):
    """The real `hf-pins train` output, not a hand-made folder, goes through push."""
    out = tmp_path / "trained"
    assert main(["train", str(tiny_recipe), "--output-dir", str(out)]) == 0
    upload = tmp_path / "upload"
    assert main(["push", str(out), "--repo-id", "me/tiny", "--dry-run", str(upload)]) == 0
    card = ModelCard.load(upload / "README.md")
    assert {"pruning", "sparse", "hf-pins", "pins"} <= set(card.data.tags)
    assert "not GLUE data" in card.text  # the recipe trains on the shipped demo sample
    assert (upload / "sparsity_per_layer.png").is_file() and (upload / "schedule.png").is_file()
    assert hub.resolve_recipe_source(str(out)) == out / "recipe.yaml"
