#!/usr/bin/env bash
# The "Results on real camera pairs" tables of docs/results.md from the runs of scripts/city100_gpu_runs.sh: every model
# tested on the WHOLE images of City100 scenes 031-040 (Y, 7-pixel crop), the closed-form rows fitted on scenes
# 001-030 (scripts/kernel_baselines.py), then `basicsr report`. Run from the project root; the
# experiments must be under experiments/ (EXP_PREFIX, default City100GPU_). Results: results/Full_*,
# results/city100_table1.md, results/city100_table2.md. What is already tested is skipped, so it can be rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/link_datasets.sh "${DATA_ROOT:-../shared/data}" > /dev/null  # datasets/<name>, as the option files read
PY=${PY:-.venv/bin/python}
BASICSR=${BASICSR:-.venv/bin/basicsr}
P=${EXP_PREFIX:-City100GPU_}
DATA=${DATA:-datasets/City100_NikonD5500}

"$PY" scripts/city100_evaluate.py experiments/$P*
tested() { [ -f "results/$1/metrics_City100_val.csv" ]; }
LABELS1=()
for s in 1 2; do
  fit=experiments/City100_KernelFit_x$s
  [ -f "$fit/fit.yml" ] || "$PY" scripts/kernel_baselines.py --scale "$s" --dataroot "$DATA" --out "$fit"
  sigma=$("$PY" -c "import yaml; print(yaml.safe_load(open('$fit/fit.yml'))['gaussian']['best_sigma'])")
  down=(); [ "$s" != 1 ] && down=(datasets:test_1:lr_downscale=$s)
  tested Full_Identity_x$s || "$BASICSR" test -opt options/test_gaussian_city100.yml --force_yml name=Full_Identity_x$s scale=$s \
    network_g:scale=$s network_g:kernel=identity datasets:test_1:dataroot=$DATA "${down[@]}"
  tested Full_Gaussian_x$s || "$BASICSR" test -opt options/test_gaussian_city100.yml --force_yml name=Full_Gaussian_x$s scale=$s \
    network_g:scale=$s network_g:sigma=$sigma network_g:kernel_size=15 datasets:test_1:dataroot=$DATA "${down[@]}"
  tested Full_LeastSquares_x$s || "$BASICSR" test -opt options/test_leastsquares_city100.yml \
    --force_yml name=Full_LeastSquares_x$s scale=$s \
    network_g:scale=$s path:pretrain_network_g=$fit/net_g_leastsquares.pth datasets:test_1:dataroot=$DATA \
    "${down[@]}"
  LABELS1+=(--label "No blur (identity)_x$s=results/Full_Identity_x$s"
            --label "Best Gaussian (sigma fitted on 001-030)_x$s=results/Full_Gaussian_x$s"
            --label "Least-squares 15x15 kernel (closed form, 001-030)_x$s=results/Full_LeastSquares_x$s"
            --label "Uniform kernel (learned)_x$s=results/Full_${P}UniformKernel_x$s"
            --label "DirectNet_x$s=results/Full_${P}DirectNet_x$s"
            --label "DirectKPN (lr 1e-4)_x$s=results/Full_${P}DirectKPN_x$s"
            --label "DML, M=8_x$s=results/Full_${P}DML_x$s")
done
LABELS1+=(--label "DirectKPN (lr 1e-3)_x1=results/Full_${P}DirectKPN-lr1e-3_x1"
          --label "DML, M=4_x1=results/Full_${P}DML-M4_x1" --label "DML, M=16_x1=results/Full_${P}DML-M16_x1")
"$BASICSR" report --dataset City100_val --metrics psnr,ssim --output results/city100_table1.md "${LABELS1[@]}"
"$BASICSR" report --dataset City100_val --metrics psnr,ssim,lpips --output results/city100_table2.md \
  --label "(a) real pairs 001-030_x1=results/Full_${P}VDSR-real_x1" \
  --label "(b) Syn-DML (online, sigma 5)_x1=results/Full_${P}VDSR-syndml_x1" \
  --label "(c) Syn-Gaussian (online, sigma 5)_x1=results/Full_${P}VDSR-gaussian_x1" \
  --label "(d) real + Syn-DML_x1=results/Full_${P}VDSR-real_syndml_x1" \
  --label "no SR (the real LR itself)_x1=results/Full_Identity_x1"
