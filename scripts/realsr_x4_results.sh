#!/usr/bin/env bash
# The x4 tables of docs/results.md (RealSR V3 crops, scenes 031-035 of both cameras), from the committed networks:
#   Table 1 (degradation fidelity: synthetic vs real LR, Y, 7-pixel LR crop): every row of
#     model_zoo/realsr_x4_degradation/models.yml (options/test_degradation_realsr_x4_manifest.yml), plus the
#     closed-form rows fitted on 001-030 (scripts/kernel_baselines.py) and MATLAB bicubic, each its own test option file;
#   Table 2 (SR quality: Y PSNR/SSIM without border crop, LPIPS on RGB): every row of model_zoo/realsr_x4_sr/models.yml
#     (options/test_srx4_realsr_manifest.yml), and bicubic upsampling of the real LR
#     (scripts/bicubic_upsampling_reference.py);
#   the validation curves (docs/pictures/realsr_x4_curves_*.png) of the training runs of scripts/realsr_x4_runs.sh,
#     each picture only when every run it shows is in experiments/ here.
# Run from the project root; what is already tested is skipped, so it can be rerun.
# Results: results/realsr_x4_table1.md, results/realsr_x4_table2.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
PY=${PY:-.venv/bin/python}
BASICSR=${BASICSR:-.venv/bin/basicsr}
FIT=experiments/RealSRx4_KernelFit
tested() { [ -f "results/$1/metrics_RealSRcrops_val.csv" ]; }

[ -f "$FIT/fit.yml" ] || "$PY" scripts/kernel_baselines.py --dataset realsr --dataroot datasets/RealSR_V3_x4_crops \
  --scale 4 --out "$FIT"
sigma=$("$PY" -c "import yaml; print(yaml.safe_load(open('$FIT/fit.yml'))['gaussian']['best_sigma'])")
written=$("$PY" -c "import yaml; print(yaml.safe_load(open('options/test_gaussian_realsr_crops_x4.yml'))['network_g']['sigma'])")
if [ "$sigma" != "$written" ]; then
  echo "the fit gives sigma $sigma, options/test_gaussian_realsr_crops_x4.yml has $written: edit the option file" >&2
  exit 1
fi
tested Bicubic_RealSRcrops_x4 || "$BASICSR" test -opt options/test_kernels_realsr_crops_x4.yml
tested Gaussian_RealSRcrops_x4 || "$BASICSR" test -opt options/test_gaussian_realsr_crops_x4.yml
tested LeastSquares_RealSRcrops_x4 || "$BASICSR" test -opt options/test_leastsquares_realsr_crops_x4.yml
tested BicubicUp_RealSRcrops_x4 || "$PY" scripts/bicubic_upsampling_reference.py \
  --opt options/test_srx4_realsr_manifest.yml --name BicubicUp_RealSRcrops_x4
rows_tested() {  # rows_tested NAME SLUG...: every row's folder of the manifest test NAME holds its metrics
  local name=$1 slug
  shift
  for slug in "$@"; do tested "${name}_$slug" || return 1; done
}
T1_ROWS=(Uniform-kernel-learned DirectNet DirectKPN DML-M-4 DML-M-8 DML-M-16 DSGAN)
T2_ROWS=(a-real b-Syn-DML b2-Syn-DML-fitted-noise c-Syn-bicubic d-Syn-Real-ESRGAN e-real-Syn-DML f-Syn-DSGAN
         g-real-Syn-DSGAN)
rows_tested Degradation_x4_manifest "${T1_ROWS[@]}" || \
  "$BASICSR" test -opt options/test_degradation_realsr_x4_manifest.yml
rows_tested SRx4_manifest "${T2_ROWS[@]}" || "$BASICSR" test -opt options/test_srx4_realsr_manifest.yml

T1=results/Degradation_x4_manifest T2=results/SRx4_manifest
"$BASICSR" report --dataset RealSRcrops_val --metrics psnr,ssim --output results/realsr_x4_table1.md \
  --label "MATLAB bicubic /4_x4=results/Bicubic_RealSRcrops_x4" \
  --label "Best Gaussian (sigma $sigma, fitted on 001-030)_x4=results/Gaussian_RealSRcrops_x4" \
  --label "Least-squares 15x15 kernel (closed form, 001-030)_x4=results/LeastSquares_RealSRcrops_x4" \
  --label "Uniform kernel (learned)_x4=${T1}_Uniform-kernel-learned" \
  --label "DirectNet_x4=${T1}_DirectNet" --label "DirectKPN_x4=${T1}_DirectKPN" \
  --label "DML, M=4_x4=${T1}_DML-M-4" --label "DML, M=8 (shipped: realsr-x4)_x4=${T1}_DML-M-8" \
  --label "DML, M=16_x4=${T1}_DML-M-16" --label "DSGAN (RGB, unpaired)_x4=${T1}_DSGAN"
"$BASICSR" report --dataset RealSRcrops_val --metrics psnr,ssim,lpips --output results/realsr_x4_table2.md \
  --label "(a) real_x4=${T2}_a-real" --label "(b) Syn-DML_x4=${T2}_b-Syn-DML" \
  --label "(b2) Syn-DML fitted noise_x4=${T2}_b2-Syn-DML-fitted-noise" \
  --label "(c) Syn-bicubic_x4=${T2}_c-Syn-bicubic" --label "(d) Syn-Real-ESRGAN_x4=${T2}_d-Syn-Real-ESRGAN" \
  --label "(e) real + Syn-DML_x4=${T2}_e-real-Syn-DML" --label "(f) Syn-DSGAN_x4=${T2}_f-Syn-DSGAN" \
  --label "(g) real + Syn-DSGAN_x4=${T2}_g-real-Syn-DSGAN" \
  --label "no learning: MATLAB bicubic x4 upsampling of the real LR_x4=results/BicubicUp_RealSRcrops_x4"

has() { [ -f "$1/metrics_RealSRcrops_val.csv" ]; }
plot() {  # plot OUTPUT TITLE METRIC LABEL=FOLDER...: the curves, only when every run is here (else the picture is kept)
  local output=$1 title=$2 metric=$3 entry
  shift 3
  for entry in "$@"; do
    has "${entry##*=}" || { echo "kept $output: ${entry##*=} is not here"; return 0; }
  done
  "$PY" scripts/plot_validation_curves.py --dataset RealSRcrops_val --metric "$metric" --output "$output" \
    --title "$title" "$@"
}
plot docs/pictures/realsr_x4_curves_table1.png "x4 degradation models: validation on RealSR crops 031-035 (Y, 7-px crop)" \
  psnr "DML M=8=experiments/RealSRx4_DML" "DML M=4=experiments/RealSRx4_DML-M4" \
  "DML M=16=experiments/RealSRx4_DML-M16" "DirectNet=experiments/RealSRx4_DirectNet" \
  "DirectKPN=experiments/RealSRx4_DirectKPN" "Uniform kernel=experiments/RealSRx4_UniformKernel"
plot docs/pictures/realsr_x4_curves_dsgan.png "x4 DSGAN: validation on RealSR crops 031-035 (Y, 7-px crop)" \
  psnr "DSGAN=experiments/DSGAN_RealSRcrops_x4"
for metric in psnr lpips; do
  plot docs/pictures/realsr_x4_curves_table2_$metric.png "x4 SR network (MSRResNet 32x8) on RealSR crops 031-035" \
    $metric "(a) real=experiments/SRx4_a-real" "(b) Syn-DML=experiments/SRx4_b-syndml" \
    "(b2) Syn-DML fitted noise=experiments/SRx4_b2-syndml_fittednoise" \
    "(c) Syn-bicubic=experiments/SRx4_c-synbicubic" "(d) Syn-Real-ESRGAN=experiments/SRx4_d-synrealesrgan" \
    "(e) real + Syn-DML=experiments/SRx4_e-real_syndml"
  plot docs/pictures/realsr_x4_curves_table2_dsgan_$metric.png "x4 SR network (MSRResNet 32x8) on RealSR crops 031-035" \
    $metric "(f) Syn-DSGAN=experiments/SRx4_f-syndsgan" "(g) real + Syn-DSGAN=experiments/SRx4_g-real_syndsgan"
done
cat results/realsr_x4_table1.md results/realsr_x4_table2.md
