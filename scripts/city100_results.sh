#!/usr/bin/env bash
# The "Results on real camera pairs" tables of docs/results.md from the runs of scripts/city100_gpu_runs.sh: every
# `basicsr test -opt` of options/test_city100gpu_*.yml (each run's network on the WHOLE images of City100 scenes
# 031-040, Y, 7-pixel crop; the experiments must be under experiments/), the closed-form rows fitted on scenes 001-030
# (scripts/kernel_baselines.py) and tested by options/test_{identity,gaussian,leastsquares}_city100_x{1,2}.yml, then
# `basicsr report`. Run from the project root. Results: results/Full_*, results/city100_table1.md,
# results/city100_table2.md. What is already tested is skipped, so it can be rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
PY=${PY:-.venv/bin/python}
BASICSR=${BASICSR:-.venv/bin/basicsr}

run_test() {  # run_test OPTION_FILE: basicsr test of it, unless results/<its name>/ holds its metrics already
  local name
  name=$(sed -n 's/^name: *//p' "$1")
  [ -f "results/$name/metrics_City100_val.csv" ] || "$BASICSR" test -opt "$1"
}

for opt in options/test_city100gpu_*.yml; do run_test "$opt"; done
LABELS1=()
for s in 1 2; do
  fit=experiments/City100_KernelFit_x$s  # where options/test_leastsquares_city100_x$s.yml reads the kernel
  [ -f "$fit/fit.yml" ] || "$PY" scripts/kernel_baselines.py --scale "$s" --dataroot datasets/City100_NikonD5500 \
    --out "$fit"
  sigma=$("$PY" -c "import yaml; print(yaml.safe_load(open('$fit/fit.yml'))['gaussian']['best_sigma'])")
  gaussian=options/test_gaussian_city100_x$s.yml
  if [ "$(sed -n 's/^  sigma: *//p' "$gaussian")" != "$sigma" ]; then
    echo "city100_results.sh: the Gaussian of least error on 001-030 has sigma $sigma ($fit/fit.yml), but $gaussian" \
      "tests sigma $(sed -n 's/^  sigma: *//p' "$gaussian"): update the option file (and docs/results.md)" >&2
    exit 1
  fi
  for kind in identity gaussian leastsquares; do run_test "options/test_${kind}_city100_x$s.yml"; done
  LABELS1+=(--label "No blur (identity)_x$s=results/Full_Identity_x$s"
            --label "Best Gaussian (sigma fitted on 001-030)_x$s=results/Full_Gaussian_x$s"
            --label "Least-squares 15x15 kernel (closed form, 001-030)_x$s=results/Full_LeastSquares_x$s"
            --label "Uniform kernel (learned)_x$s=results/Full_City100GPU_UniformKernel_x$s"
            --label "DirectNet_x$s=results/Full_City100GPU_DirectNet_x$s"
            --label "DirectKPN (lr 1e-4)_x$s=results/Full_City100GPU_DirectKPN_x$s"
            --label "DML, M=8_x$s=results/Full_City100GPU_DML_x$s")
done
LABELS1+=(--label "DirectKPN (lr 1e-3)_x1=results/Full_City100GPU_DirectKPN-lr1e-3_x1"
          --label "DML, M=4_x1=results/Full_City100GPU_DML-M4_x1"
          --label "DML, M=16_x1=results/Full_City100GPU_DML-M16_x1")
"$BASICSR" report --dataset City100_val --metrics psnr,ssim --output results/city100_table1.md "${LABELS1[@]}"
"$BASICSR" report --dataset City100_val --metrics psnr,ssim,lpips --output results/city100_table2.md \
  --label "(a) real pairs 001-030_x1=results/Full_City100GPU_VDSR-real_x1" \
  --label "(b) Syn-DML (online, sigma 5)_x1=results/Full_City100GPU_VDSR-syndml_x1" \
  --label "(c) Syn-Gaussian (online, sigma 5)_x1=results/Full_City100GPU_VDSR-gaussian_x1" \
  --label "(d) real + Syn-DML_x1=results/Full_City100GPU_VDSR-real_syndml_x1" \
  --label "no SR (the real LR itself)_x1=results/Full_Identity_x1"
