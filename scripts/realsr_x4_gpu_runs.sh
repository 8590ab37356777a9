#!/usr/bin/env bash
# The x4 RealSR tables with larger budgets, for a GPU: every run started at once (they are small; the GPU interleaves
# them). The same option files as scripts/realsr_x4_runs.sh (the CPU runs), with:
#   Table 1 (degradation models): the paper's batch 16 of 192x192 HR patches, T1_ITERS iterations (lr 1e-3 halved at
#     3/4), validated every T1_ITERS/8;
#   Table 2 (rows (a)-(e)): three SR networks per row, each RGB x4: the CPU runs' MSRResNet (32x8), the paper's VDSR
#     (20 layers, 64 features) and RCAN (5 groups x 10 blocks, 64 features), T2_ITERS iterations of batch 16 at
#     96x96 HR (lr halved at 3/4), validated every T2_ITERS/4.
#   DATA=datasets/RealSR_V3_x4_crops URBAN=datasets/Urban100_HR bash scripts/realsr_x4_gpu_runs.sh
# On a machine that cannot take ../shared (a 64 MiB transfer), DATA and URBAN may name copies (the RealSR crops are
# 28 MB; Urban100_HR is 63 MB: a few of its photographs, or crops of them, fit beside them).
# DEADLINE (seconds, 0 = none) stops every run then; checkpoints every validation, so --auto_resume continues them
# (a rerun skips runs whose log says they finished). ONLY: the names of the runs to start (space-separated).
# EXTRA: more --force_yml entries for every run (e.g. tiny budgets for a dry run on a CPU).
# DATA_ROOT (default ../shared/data, relative to the project root): datasets/<name> is linked to each of its folders
# (scripts/link_datasets.sh), so the defaults of DATA and URBAN are found; where it is not a folder (a GPU machine
# with the data carried into datasets/, or DATA and URBAN naming copies), nothing is linked.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d "${DATA_ROOT:-../shared/data}" ]; then
  bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
fi
DATA=${DATA:-datasets/RealSR_V3_x4_crops}
URBAN=${URBAN:-datasets/Urban100_HR}
T1_ITERS=${T1_ITERS:-8000}
T2_ITERS=${T2_ITERS:-20000}
PY=${PY:-python3}
DEADLINE=${DEADLINE:-0}
read -r -a EXTRA <<< "${EXTRA:-}"
mkdir -p experiments/logs
T1=(datasets:train:dataroot=$DATA datasets:val:dataroot=$DATA datasets:train:gt_size=192
    datasets:train:batch_size_per_gpu=16 train:total_iter=$T1_ITERS "train:scheduler:milestones=[$((T1_ITERS * 3 / 4))]"
    val:val_freq=$((T1_ITERS / 8)) logger:save_checkpoint_freq=$((T1_ITERS / 8)))
T2=(datasets:val:dataroot=$DATA train:total_iter=$T2_ITERS "train:scheduler:milestones=[$((T2_ITERS * 3 / 4))]"
    val:val_freq=$((T2_ITERS / 4)) logger:save_checkpoint_freq=$((T2_ITERS / 4)))
# network_g replaced whole (a --force_yml value is YAML data: a JSON mapping without spaces survives the splitting).
declare -A NETS=(
  [MSRResNet]=''
  [VDSR]='network_g={"type":"VDSR","num_in_ch":3,"num_out_ch":3,"num_feat":64,"num_conv":20,"upscale":4}'
  [RCAN]='network_g={"type":"DMLRCAN","num_in_ch":3,"num_out_ch":3,"num_feat":64,"num_group":5,"num_block":10,"squeeze_factor":16,"upscale":4}'
)
# Where each Table-2 row reads its training data.
declare -A ROW_DATA=(
  [a-real]="datasets:train:dataroot=$DATA"
  [b-syndml]="datasets:train:dataroot_gt=$DATA"
  [c-synbicubic]="datasets:train:dataroot_gt=$DATA"
  [d-synrealesrgan]="datasets:train:dataroot_gt=$DATA"
  [e-real_syndml]="datasets:train:dataroot_gt=$URBAN datasets:train:real:dataroot=$DATA"
)
declare -A ROW_FILE=([a-real]=real [b-syndml]=syndml [c-synbicubic]=synbicubic [d-synrealesrgan]=synrealesrgan
                     [e-real_syndml]=real_syndml)

launch() {  # launch NAME OPTION_FILE FORCE_YML...
  local name=$1 opt=$2
  shift 2
  if grep -q "End of training" "experiments/logs/$name.log" 2>/dev/null; then return; fi
  timeout -s TERM "$DEADLINE" "$PY" -m dml_basicsr train -opt "$opt" --auto_resume --force_yml name="$name" "$@" \
    "${EXTRA[@]}" >> "experiments/logs/$name.log" 2>&1 &
}
if [ -n "${ONLY:-}" ]; then run() { case " $ONLY " in *" $1 "*) launch "$@";; esac; }; else run() { launch "$@"; }; fi

run RealSRx4GPU_DML options/train_dml_realsr_crops_x4.yml "${T1[@]}"
run RealSRx4GPU_DML-M4 options/train_dml_realsr_crops_x4.yml "${T1[@]}" network_g:num_basis=4
run RealSRx4GPU_DML-M16 options/train_dml_realsr_crops_x4.yml "${T1[@]}" network_g:num_basis=16
for arch in directnet directkpn uniformkernel; do
  run RealSRx4GPU_$arch options/train_${arch}_realsr_crops_x4.yml "${T1[@]}"
done
for net in MSRResNet VDSR RCAN; do
  for row in "${!ROW_FILE[@]}"; do
    read -r -a data <<< "${ROW_DATA[$row]}"
    run "SRx4GPU_${net}_$row" "options/train_srx4_realsr_${ROW_FILE[$row]}.yml" "${T2[@]}" "${data[@]}" ${NETS[$net]}
  done
done
wait
grep -H -E "Best:" experiments/logs/*GPU_*.log | sed 's/.*logs\///' | tail -n 200
