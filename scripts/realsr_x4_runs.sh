#!/usr/bin/env bash
# x4 on the RealSR V3 crops in datasets/ (001-030 of both cameras train, 031-035 validate), one option file per run
# (its name: is the run's name, its experiments/ folder):
#   Table 1: DML M=8 (shipped as realsr-x4), M=4, M=16, DirectNet, DirectKPN, learned uniform kernel (one budget,
#            that of options/train_dml_realsr_crops_x4.yml: 4000 iterations, batch 8 of 96x96 HR, Adam 1e-3 halved
#            at 3000), and DSGAN (options/train_dsgan_realsr_crops_x4.yml, its own budget);
#   Table 2: one RGB x4 SR network trained on (a) real, (b) Syn-DML, (c) Syn-bicubic, (d) Syn-Real-ESRGAN,
#            (e) real + Syn-DML, (f) Syn-DSGAN, (g) real + Syn-DSGAN pairs, and (b2) Syn-DML with the fitted noise
#            (options/train_srx4_realsr_*.yml, one budget). (f) and (g) read the DSGAN committed in
#            model_zoo/realsr_x4_degradation/: after retraining DSGAN, run scripts/realsr_x4_collect.sh before them.
# Runs JOBS at a time (default 2, one per core, each with THREADS threads; JOBS=0 starts all at once, for a GPU).
#   bash scripts/realsr_x4_runs.sh                  # everything, Table 1 first
#   ONLY="RealSRx4_DML SRx4_a-real" bash scripts/realsr_x4_runs.sh   # some runs, by name, in that order
# A rerun resumes each run from its last state (--auto_resume) and skips finished ones.
# EXTRA: --force_yml entries for every run, for tiny dry runs only; DEADLINE (s) stops every run then.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
PY=${PY:-.venv/bin/python}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
DEADLINE=${DEADLINE:-0}
read -r -a EXTRA <<< "${EXTRA:-}"
mkdir -p experiments/logs

RUNS=(  # NAME OPTION_FILE, one run per line; NAME is the option file's name:
  "RealSRx4_DML options/train_dml_realsr_crops_x4.yml"
  "RealSRx4_DML-M4 options/train_dml_realsr_crops_x4_m4.yml"
  "RealSRx4_DML-M16 options/train_dml_realsr_crops_x4_m16.yml"
  "RealSRx4_DirectNet options/train_directnet_realsr_crops_x4.yml"
  "RealSRx4_DirectKPN options/train_directkpn_realsr_crops_x4.yml"
  "RealSRx4_UniformKernel options/train_uniformkernel_realsr_crops_x4.yml"
  "DSGAN_RealSRcrops_x4 options/train_dsgan_realsr_crops_x4.yml"
  "SRx4_a-real options/train_srx4_realsr_real.yml"
  "SRx4_b-syndml options/train_srx4_realsr_syndml.yml"
  "SRx4_b2-syndml_fittednoise options/train_srx4_realsr_syndml_fittednoise.yml"
  "SRx4_c-synbicubic options/train_srx4_realsr_synbicubic.yml"
  "SRx4_d-synrealesrgan options/train_srx4_realsr_synrealesrgan.yml"
  "SRx4_e-real_syndml options/train_srx4_realsr_real_syndml.yml"
  "SRx4_f-syndsgan options/train_srx4_realsr_syndsgan.yml"
  "SRx4_g-real_syndsgan options/train_srx4_realsr_real_syndsgan.yml"
)

finished() {  # finished NAME: its log says the training ended
  grep -q "End of training" "experiments/logs/$1.log" 2>/dev/null
}

train() {  # train NAME OPTION_FILE
  local name=$1 opt=$2
  if finished "$name"; then echo "$name: finished before, skipped"; return; fi
  echo "$name: started $(date +%T)"
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS timeout -s TERM "$DEADLINE" \
    "$PY" -m dml_basicsr train -opt "$opt" --auto_resume ${EXTRA[@]:+--force_yml "${EXTRA[@]}"} \
    >> "experiments/logs/$name.log" 2>&1
  echo "$name: exit $? $(date +%T)"
}

declare -A SPEC
ORDER=()
for line in "${RUNS[@]}"; do
  read -r -a run <<< "$line"
  SPEC[${run[0]}]=$line
  ORDER+=("${run[0]}")
done
[ -n "${ONLY:-}" ] && read -r -a ORDER <<< "$ONLY"

for name in "${ORDER[@]}"; do
  [ -n "${SPEC[$name]:-}" ] || { echo "$name: no such run (see RUNS in $0)"; exit 2; }
  read -r -a run <<< "${SPEC[$name]}"
  if [ "$JOBS" != 0 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  fi
  train "${run[@]}" &
done
wait
grep -H "Best:" experiments/logs/*x4*.log 2>/dev/null | sed 's/.*logs\///' | tail -n 100
