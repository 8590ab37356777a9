#!/usr/bin/env bash
# The adaptation study of docs/adapt.md, on the RealSR V3 x4 crops in datasets/ (CPU, JOBS runs at a time).
#   1. the one-camera sources: options/train_dml_realsr_crops_x4_{canon,nikon}.yml (4000 iterations each);
#   2. how the defaults were chosen: variants at k=5 on development scenes (Canon -> Nikon, pairs from 001-020,
#      tested on 021-030: no test scene), 600 iterations, every 100th checkpoint tested;
#   3. the study: k = 1, 2, 5, 10 pairs of the other camera from 001-030, tested on its 031-035, both directions.
#   4. the SR consequence: one x4 network per row of options/train_srx4_nikon5_*.yml, tested on Nikon 031-035.
# Usage: bash scripts/adapt_results.sh [sources|defaults|study|sr|all]   (default: all; finished runs are skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
PY="${PY:-.venv/bin/python}"
JOBS="${JOBS:-2}"
OUT="${OUT:-results/adapt_study}"
WHAT="${1:-all}"
CANON=experiments/DML_RealSRcrops_x4_Canononly/models/net_g_4000.pth
NIKON=experiments/DML_RealSRcrops_x4_Nikononly/models/net_g_4000.pth

if [[ "$WHAT" == sources || "$WHAT" == all ]]; then
  for cam in canon nikon; do
    OMP_NUM_THREADS=1 .venv/bin/basicsr train -opt "options/train_dml_realsr_crops_x4_$cam.yml" --auto_resume &
  done
  wait
fi
if [[ "$WHAT" == defaults || "$WHAT" == all ]]; then
  "$PY" scripts/adapt_study.py --source "$CANON" --camera Nikon --ks 5 --pool 1 20 --test 21 30 --iters 600 \
    --val-freq 100 --jobs "$JOBS" --out "$OUT/defaults_canon_to_nikon" \
    --variant all:2e-5 --variant all:5e-5 --variant all:1e-4 --variant all:2e-4 \
    --variant basis:1e-4 --variant basis:3e-4 --variant basis:1e-3 --variant basis+last-layer:1e-4
fi
if [[ "$WHAT" == study || "$WHAT" == all ]]; then
  # both directions at once, one run at a time each
  "$PY" scripts/adapt_study.py --source "$CANON" --camera Nikon --ks 1 2 5 10 --jobs 1 --out "$OUT/canon_to_nikon" &
  "$PY" scripts/adapt_study.py --source "$NIKON" --camera Canon --ks 1 2 5 10 --jobs 1 --out "$OUT/nikon_to_canon" &
  wait
fi
if [[ "$WHAT" == sr || "$WHAT" == all ]]; then
  rows=(a-adapted b-unadapted c-synbicubic d-synleastsquares e-real)
  printf '%s\n' "${rows[@]}" | xargs -P "$JOBS" -I{} env OMP_NUM_THREADS=1 \
    .venv/bin/basicsr train -opt options/train_srx4_nikon5_{}.yml --auto_resume
  .venv/bin/basicsr report --dataset RealSRcrops_val --scale 4 --output "$OUT/sr_nikon5.md" \
    $(for r in "${rows[@]}"; do echo "--label ($r)=experiments/SRx4_Nikon5_$r"; done)
fi
