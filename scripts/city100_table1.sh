#!/usr/bin/env bash
# Table 1 (left half) of the paper on real camera pairs you have here: City100 NikonD5500, scenes
# 001-030 train, 031-040 validate, Y channel, 7-pixel crop. Trains DML and the ablations with one
# schedule (ITERS iterations each, default 500), evaluates a fixed Gaussian, and prints the table.
#   bash scripts/city100_table1.sh            # from the project root, after scripts/setup.sh
# Experiments go to experiments/City100T1_<method>_x1, the table to results/city100_table1.md.
set -euo pipefail
ITERS=${ITERS:-500}
BASICSR=${BASICSR:-.venv/bin/basicsr}
FORCE=(train:total_iter=$ITERS val:val_freq=$ITERS logger:save_checkpoint_freq=$ITERS)
declare -A METHOD=([dml]=DML [directnet]=DirectNet [directkpn]=DirectKPN [uniformkernel]=UniformKernel)
for key in dml uniformkernel directnet directkpn; do
  name=City100T1_${METHOD[$key]}_x1
  if [ -f "experiments/$name/models/net_g_$ITERS.pth" ]; then
    echo "$name: already trained, skipped"
    continue
  fi
  "$BASICSR" train -opt "options/train_${key}_city100.yml" --force_yml name=$name "${FORCE[@]}"
done
"$BASICSR" test -opt options/test_gaussian_city100.yml --force_yml name=City100T1_Gaussian_x1
"$BASICSR" report --dataset City100_val --scale 1 --metrics psnr,ssim --output results/city100_table1.md \
  --label "Gaussian, sigma 1 (fixed)=results/City100T1_Gaussian_x1" \
  --label "Uniform kernel (learned)=experiments/City100T1_UniformKernel_x1" \
  --label "DirectNet=experiments/City100T1_DirectNet_x1" \
  --label "DirectKPN=experiments/City100T1_DirectKPN_x1" \
  --label "DML=experiments/City100T1_DML_x1"
