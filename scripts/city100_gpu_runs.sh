#!/usr/bin/env bash
# Table 1 (degradation models) and Table 2 (VDSR on real / Syn-DML / Syn-Gaussian / real+Syn-DML pairs) of the City100
# section of docs/results.md: the 15 training runs below, every one started at once on one GPU (they are small; the
# GPU interleaves them), each `basicsr train -opt` of its option file as it is (budgets, data and schedule are in
# the files). They read datasets/City100_NikonD5500_center640, the central 640x640 of each City100 pair, which is
# made here from datasets/City100_NikonD5500 if it is missing (scripts/city100_center_crops.py). Run from the
# project root:
#   DEADLINE=450 bash scripts/city100_gpu_runs.sh
# DEADLINE (seconds, 0 = none) stops every run then; checkpoints are written every 250 (Table 1) or 500 (Table 2)
# iterations.
# ONLY: the names of the runs to start (their option files' name, space-separated, e.g. "City100GPU_DML_x1");
# default all.
# EXTRA: --force_yml entries for every run, ONLY for a tiny dry run on a CPU (e.g. "train:total_iter=2
# datasets:train:gt_size=32"); the reported runs use none. Logs: experiments/logs/<name>.log.
# DATA_ROOT (default ../shared/data, relative to the project root): datasets/<name> is linked to each of its folders
# (scripts/link_datasets.sh); where it is not a folder (a GPU machine with the data carried into datasets/), nothing
# is linked and datasets/ is read as it is.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d "${DATA_ROOT:-../shared/data}" ]; then
  bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
fi
PY=${PY:-python3}
DEADLINE=${DEADLINE:-0}
read -r -a EXTRA <<< "${EXTRA:-}"
CROPS=datasets/City100_NikonD5500_center640
OPTIONS=(
  options/train_city100gpu_dml_x1.yml options/train_city100gpu_directnet_x1.yml
  options/train_city100gpu_uniformkernel_x1.yml options/train_city100gpu_directkpn_x1.yml
  options/train_city100gpu_dml_x2.yml options/train_city100gpu_directnet_x2.yml
  options/train_city100gpu_uniformkernel_x2.yml options/train_city100gpu_directkpn_x2.yml
  options/train_city100gpu_directkpn-lr1e-3_x1.yml
  options/train_city100gpu_dml-m4_x1.yml options/train_city100gpu_dml-m16_x1.yml
  options/train_city100gpu_vdsr-real_x1.yml options/train_city100gpu_vdsr-syndml_x1.yml
  options/train_city100gpu_vdsr-gaussian_x1.yml options/train_city100gpu_vdsr-real_syndml_x1.yml
)
if [ ! -d "$CROPS" ]; then
  "$PY" scripts/city100_center_crops.py --src datasets/City100_NikonD5500 --out "$CROPS" || exit 2
fi
mkdir -p experiments/logs
for opt in "${OPTIONS[@]}"; do
  name=$(sed -n 's/^name: *//p' "$opt")
  case " ${ONLY:-$name} " in *" $name "*) ;; *) continue;; esac
  timeout -s TERM "$DEADLINE" "$PY" -m dml_basicsr train -opt "$opt" ${EXTRA[@]+--force_yml "${EXTRA[@]}"} \
    > "experiments/logs/$name.log" 2>&1 &
done
wait
grep -H -E "Best:" experiments/logs/*.log | sed 's/.*logs\///' | tail -n 100
