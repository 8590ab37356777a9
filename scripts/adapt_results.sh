#!/usr/bin/env bash
# The adaptation study of docs/adapt.md, on the RealSR V3 x4 crops in datasets/ (CPU, JOBS runs at a time).
#   1. the one-camera sources: options/train_dml_realsr_crops_x4_{canon,nikon}.yml (4000 iterations each);
#   2. how the defaults were chosen: variants at k=5 on development scenes (Canon -> Nikon, pairs from 001-020,
#      tested on 021-030: no test scene), 600 iterations, every 100th checkpoint tested;
#   3. the study: k = 1, 2, 5, 10 pairs of the other camera from 001-030, tested on its 031-035, both directions.
#   4. the SR consequence: one x4 network per row of options/train_srx4_nikon5_*.yml, tested on Nikon 031-035.
#   5. collect: the SR networks of 4. copied into model_zoo/realsr_x4_adapt_sr/ with their manifest, re-tested from it by
#      options/test_srx4_nikon5_manifest.yml.
# Usage: bash scripts/adapt_results.sh [sources|defaults|study|sr|collect|all]   (default: all; finished runs skipped)
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
    --variant basis:1e-4 --variant basis:3e-4 --variant basis:1e-3 --variant basis+last-layer:1e-4 \
    --variant last-layer:1e-3 --variant basis:1e-3:gt=64 --variant basis:1e-3:gt=128 --variant basis:1e-3:aug=flip
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
if [[ "$WHAT" == collect || "$WHAT" == all ]]; then
  folder=model_zoo/realsr_x4_adapt_sr
  net='{type: MSRResNet, num_in_ch: 3, num_out_ch: 3, num_feat: 32, num_block: 8, upscale: 4}'
  mkdir -p "$folder" && rm -f "$folder/models.yml"
  declare -A LABEL=([a-adapted]='(a) Syn-DML, adapted with 5 Nikon pairs' [b-unadapted]='(b) Syn-DML, unadapted (Canon only)'
                    [c-synbicubic]='(c) Syn-bicubic' [d-synleastsquares]='(d) Syn, least-squares kernel of the 5 pairs'
                    [e-real]='(e) the 5 real Nikon pairs')
  for r in a-adapted b-unadapted c-synbicubic d-synleastsquares e-real; do
    cp "experiments/SRx4_Nikon5_$r/models/net_g_latest.pth" "$folder/srx4_nikon5_$r.pth"
    "$PY" -m dml_basicsr.utils.model_manifest add --manifest "$folder/models.yml" --label "${LABEL[$r]}" \
      --checkpoint "$folder/srx4_nikon5_$r.pth" --network-g "$net" \
      --command "basicsr train -opt options/train_srx4_nikon5_$r.yml --auto_resume"
  done
  { echo "# The SR consequence of basicsr adapt (docs/adapt.md): one RGB MSRResNet x4 (32 features, 8 blocks) per row, the same
# loss, budget (3000 iterations) and HR patches (Urban100 + the HR of Nikon 002, 013, 014, 025, 028); tested on the real
# LR of Nikon 031-035 (RealSR V3 x4 crops, research use). Re-test: basicsr test -opt options/test_srx4_nikon5_manifest.yml
# Made by: bash scripts/adapt_results.sh collect"; cat "$folder/models.yml"; } > "$folder/models.yml.new"
  mv "$folder/models.yml.new" "$folder/models.yml"
  "$PY" -m dml_basicsr.utils.model_manifest check "$folder/models.yml"
fi
