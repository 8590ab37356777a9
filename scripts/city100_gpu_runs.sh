#!/usr/bin/env bash
# Table 1 (degradation models) and Table 2 (VDSR on real / Syn-DML / Syn-Gaussian / real+Syn-DML pairs) on
# City100 NikonD5500, every run started at once on one GPU (they are small; the GPU interleaves them).
# One budget per table: Table 1 ITERS iterations of batch 16 at 192x192 (Adam 1e-3 halved at 3/4 of it; DirectKPN
# also at 1e-4), Table 2 ITERS iterations of batch 16 at 96x96 (Adam 1e-4). Validation on DATA's scenes 031-040.
#   DATA=datasets/City100_NikonD5500 bash scripts/city100_gpu_runs.sh
# DATA may be a folder of central crops (scripts/city100_center_crops.py) where the whole set cannot travel.
# DEADLINE (seconds, 0 = none) stops every run then; checkpoints are written every ITERS/8 iterations.
# EXTRA: more --force_yml entries for every run (e.g. to make them tiny for a dry run on a CPU).
# ONLY: the names of the runs to start (space-separated); default all.
set -uo pipefail
DATA=${DATA:-datasets/City100_NikonD5500}
ITERS=${ITERS:-2000}
PY=${PY:-python3}
DEADLINE=${DEADLINE:-0}
read -r -a EXTRA <<< "${EXTRA:-}"
mkdir -p experiments/logs
COMMON=(datasets:val:dataroot=$DATA train:total_iter=$ITERS
        "train:scheduler:milestones=[$((ITERS * 3 / 4))]" datasets:train:num_worker_per_gpu=1
        datasets:train:dataset_enlarge_ratio=1000 logger:print_freq=50)
T1=(datasets:train:dataroot=$DATA datasets:train:gt_size=192 datasets:train:batch_size_per_gpu=16 val:val_freq=$((ITERS / 8))
    logger:save_checkpoint_freq=$((ITERS / 8)))
T2=(val:val_freq=$((ITERS / 4)) logger:save_checkpoint_freq=$((ITERS / 4)))
X2=(scale=2 network_g:scale=2 datasets:train:lr_downscale=2 datasets:val:lr_downscale=2)

launch() {  # launch NAME OPTION_FILE FORCE_YML...
  local name=$1 opt=$2
  shift 2
  timeout -s TERM "$DEADLINE" "$PY" -m dml_basicsr train -opt "$opt" --force_yml name="$name" "${COMMON[@]}" "$@" \
    "${EXTRA[@]}" > "experiments/logs/$name.log" 2>&1 &
}

if [ -n "${ONLY:-}" ]; then run() { case " $ONLY " in *" $1 "*) launch "$@";; esac; }; else run() { launch "$@"; }; fi
for s in 1 2; do
  scale=(); [ "$s" = 2 ] && scale=("${X2[@]}")
  run City100GPU_DML_x$s options/train_dml_city100.yml "${T1[@]}" "${scale[@]}"
  run City100GPU_DirectNet_x$s options/train_directnet_city100.yml "${T1[@]}" "${scale[@]}"
  run City100GPU_UniformKernel_x$s options/train_uniformkernel_city100.yml "${T1[@]}" "${scale[@]}"
  run City100GPU_DirectKPN_x$s options/train_directkpn_city100.yml "${T1[@]}" "${scale[@]}" train:optim_g:lr=0.0001
done
run City100GPU_DirectKPN-lr1e-3_x1 options/train_directkpn_city100.yml "${T1[@]}"
run City100GPU_DML-M4_x1 options/train_dml_city100.yml "${T1[@]}" network_g:num_basis=4
run City100GPU_DML-M16_x1 options/train_dml_city100.yml "${T1[@]}" network_g:num_basis=16
run City100GPU_VDSR-real_x1 options/train_vdsr_city100_real.yml "${T2[@]}" datasets:train:dataroot=$DATA
for k in syndml gaussian; do
  run City100GPU_VDSR-$k\_x1 options/train_vdsr_city100_$k.yml "${T2[@]}" datasets:train:dataroot_gt=$DATA
done
run City100GPU_VDSR-real_syndml_x1 options/train_vdsr_city100_real_syndml.yml "${T2[@]}" \
  datasets:train:dataroot_gt=$DATA datasets:train:real:dataroot=$DATA
wait
grep -H -E "Best:" experiments/logs/*.log | sed 's/.*logs\///' | tail -n 100
