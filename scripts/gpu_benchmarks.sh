#!/usr/bin/env bash
# Every CUDA figure of docs/benchmarks.md in one call, for the borrowed GPU machine (the CUDA targets of the
# synthesis-speed issue: DML synthesis against Real-ESRGAN's, its share of VDSR and MSRResNet x4 steps, the DML
# training step against the bare weight network, the operator against unfold and the matmul rate).
# On the device machine, from the project root (the wheels prepared as DEVELOPERS.md says):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
#   OUT=$OUT bash scripts/gpu_benchmarks.sh
# Each benchmark's output goes to $OUT/<benchmark>.md, one after the other; one that fails does not stop the
# others, and its exit status ends its file. QUICK=1 DEVICE=cpu PY=.venv/bin/python: the same commands at tiny
# sizes, a dry run on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-results/gpu_benchmarks}
mkdir -p "$OUT"
if [ "${QUICK:-0}" = 1 ]; then
  PEER=(--size 128 --batch 1 --repeats 1)
  SHARE=(--batch 1 --patch 48 --steps 1 --warmup 1)
  STEPS=(--batch 2 --patch 48 --scale 4 --steps 1 --train-iters 2)
  OPERATOR=(--batch 1 --size 48 --scales 4 --reps 1 --ref-reps 1 --matmul 256 --no-memory)
else
  PEER=(--repeats 20)
  SHARE=(--batch 16 --patch 192 --steps 10)  # the paper's batch and patch
  STEPS=(--batch 16 --patch 192 --scale 4 --steps 10)
  OPERATOR=(--batch 16)
fi

run() {  # run NAME SCRIPT ARGS...: SCRIPT's stdout and stderr, then its exit status, in $OUT/NAME.md
  local name=$1
  shift
  echo "$name: started $(date +%T)"
  { "$PY" "$@"; echo "exit status $?"; } > "$OUT/$name.md" 2>&1
  echo "$name: $(tail -n 1 "$OUT/$name.md") $(date +%T)"
}

{ nvidia-smi 2>&1 || true; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } \
  > "$OUT/device.md" 2>&1
run peer_degradation benchmarks/peer_degradation.py --device "$DEVICE" "${PEER[@]}"
run online_synthesis_share benchmarks/online_synthesis_share.py --device "$DEVICE" "${SHARE[@]}"
run training_steps benchmarks/training_steps.py --device "$DEVICE" "${STEPS[@]}"
run operator benchmarks/operator.py --device "$DEVICE" "${OPERATOR[@]}"
