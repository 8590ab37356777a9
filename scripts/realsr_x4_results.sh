#!/usr/bin/env bash
# The x4 tables of docs/results.md (RealSR V3 crops, scenes 031-035 of both cameras) from the runs of scripts/realsr_x4_runs.sh:
#   Table 1 (degradation fidelity: synthetic vs real LR, Y, 7-pixel LR crop): the learned models' last validation
#     (whole 512x512 images), plus the closed-form rows fitted on 001-030 (scripts/kernel_baselines.py) and MATLAB
#     bicubic, tested with `basicsr test`;
#   Table 2 (SR quality: Y PSNR/SSIM without border crop, LPIPS on RGB): the SR networks' last validation, and
#     bicubic upsampling of the real LR (scripts/bicubic_upsampling_reference.py);
#   the validation curves (docs/pictures/realsr_x4_curves_*.png).
# Run from the project root; what is already tested is skipped, so it can be rerun.
# Results: results/realsr_x4_table1.md, results/realsr_x4_table2.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
PY=${PY:-.venv/bin/python}
BASICSR=${BASICSR:-.venv/bin/basicsr}
DATA=${DATA:-datasets/RealSR_V3_x4_crops}
FIT=experiments/RealSRx4_KernelFit
tested() { [ -f "results/$1/metrics_RealSRcrops_val.csv" ]; }

[ -f "$FIT/fit.yml" ] || "$PY" scripts/kernel_baselines.py --dataset realsr --dataroot "$DATA" --scale 4 --out "$FIT"
sigma=$("$PY" -c "import yaml; print(yaml.safe_load(open('$FIT/fit.yml'))['gaussian']['best_sigma'])")
tested Bicubic_RealSRcrops_x4 || "$BASICSR" test -opt options/test_kernels_realsr_crops_x4.yml \
  --force_yml datasets:test_1:dataroot="$DATA"
tested Gaussian_RealSRcrops_x4 || "$BASICSR" test -opt options/test_kernels_realsr_crops_x4.yml \
  --force_yml name=Gaussian_RealSRcrops_x4 network_g:kernel=gaussian network_g:sigma="$sigma" network_g:kernel_size=15 \
  datasets:test_1:dataroot="$DATA"
tested LeastSquares_RealSRcrops_x4 || "$BASICSR" test -opt options/test_leastsquares_realsr_crops_x4.yml \
  --force_yml path:pretrain_network_g="$FIT/net_g_leastsquares.pth" datasets:test_1:dataroot="$DATA"
tested BicubicUp_RealSRcrops_x4 || "$PY" scripts/bicubic_upsampling_reference.py \
  --opt options/test_srx4_realsr_manifest.yml --name BicubicUp_RealSRcrops_x4

has() { [ -f "$1/metrics_RealSRcrops_val.csv" ]; }
stopped() {  # stopped FOLDER: ' (stopped at N iterations)' for a training run that did not reach its end
  local folder=$1
  [[ $folder == experiments/* ]] || return 0
  grep -q "End of training" "$folder"/train_*.log 2>/dev/null && return 0
  echo " (stopped at $(tail -n 1 "$folder/metrics_RealSRcrops_val.csv" | cut -d, -f1) iterations)"
}
rows() {  # rows LABEL_xS=FOLDER...: --label options of the folders that hold results (the others are named)
  local entry folder label
  for entry in "$@"; do
    folder=${entry##*=} label=${entry%=*}
    if has "$folder"; then
      printf '%s\0' --label "${label%_x4}$(stopped "$folder")_x4=$folder"
    else
      echo "not in the table (no results): $folder" >&2
    fi
  done
}
mapfile -d '' LABELS1 < <(rows \
  "MATLAB bicubic /4_x4=results/Bicubic_RealSRcrops_x4" \
  "Best Gaussian (sigma $sigma, fitted on 001-030)_x4=results/Gaussian_RealSRcrops_x4" \
  "Least-squares 15x15 kernel (closed form, 001-030)_x4=results/LeastSquares_RealSRcrops_x4" \
  "Uniform kernel (learned)_x4=experiments/RealSRx4_UniformKernel" \
  "DirectNet_x4=experiments/RealSRx4_DirectNet" \
  "DirectKPN_x4=experiments/RealSRx4_DirectKPN" \
  "DML, M=4_x4=experiments/RealSRx4_DML-M4" \
  "DML, M=8 (shipped: realsr-x4)_x4=experiments/RealSRx4_DML" \
  "DML, M=16_x4=experiments/RealSRx4_DML-M16")
"$BASICSR" report --dataset RealSRcrops_val --metrics psnr,ssim --output results/realsr_x4_table1.md "${LABELS1[@]}"
mapfile -d '' LABELS2 < <(rows \
  "(a) real_x4=experiments/SRx4_a-real" \
  "(b) Syn-DML_x4=experiments/SRx4_b-syndml" \
  "(b2) Syn-DML fitted noise_x4=experiments/SRx4_b2-syndml_fittednoise" \
  "(c) Syn-bicubic_x4=experiments/SRx4_c-synbicubic" \
  "(d) Syn-Real-ESRGAN_x4=experiments/SRx4_d-synrealesrgan" \
  "(e) real + Syn-DML_x4=experiments/SRx4_e-real_syndml" \
  "no learning: MATLAB bicubic x4 upsampling of the real LR_x4=results/BicubicUp_RealSRcrops_x4")
"$BASICSR" report --dataset RealSRcrops_val --metrics psnr,ssim,lpips --output results/realsr_x4_table2.md "${LABELS2[@]}"

curves() {  # curves LABEL=FOLDER...: those that hold results
  local entry
  for entry in "$@"; do has "${entry##*=}" && printf '%s\0' "$entry"; done
}
mapfile -d '' CURVES1 < <(curves "DML M=8=experiments/RealSRx4_DML" "DML M=4=experiments/RealSRx4_DML-M4" \
  "DML M=16=experiments/RealSRx4_DML-M16" "DirectNet=experiments/RealSRx4_DirectNet" \
  "DirectKPN=experiments/RealSRx4_DirectKPN" "Uniform kernel=experiments/RealSRx4_UniformKernel")
"$PY" scripts/plot_validation_curves.py --dataset RealSRcrops_val --output docs/pictures/realsr_x4_curves_table1.png \
  --title "x4 degradation models: validation on RealSR crops 031-035 (Y, 7-px crop)" "${CURVES1[@]}"
mapfile -d '' CURVES2 < <(curves "(a) real=experiments/SRx4_a-real" "(b) Syn-DML=experiments/SRx4_b-syndml" \
  "(b2) Syn-DML fitted noise=experiments/SRx4_b2-syndml_fittednoise" \
  "(c) Syn-bicubic=experiments/SRx4_c-synbicubic" "(d) Syn-Real-ESRGAN=experiments/SRx4_d-synrealesrgan" \
  "(e) real + Syn-DML=experiments/SRx4_e-real_syndml")
for metric in psnr lpips; do
  "$PY" scripts/plot_validation_curves.py --dataset RealSRcrops_val --metric $metric \
    --output docs/pictures/realsr_x4_curves_table2_$metric.png \
    --title "x4 SR network (MSRResNet 32x8) on RealSR crops 031-035" "${CURVES2[@]}"
done
cat results/realsr_x4_table1.md results/realsr_x4_table2.md
