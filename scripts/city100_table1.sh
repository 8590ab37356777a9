#!/usr/bin/env bash
# Table 1 (left half) of the paper on real camera pairs you have here: City100 NikonD5500, scenes
# 001-030 train, 031-040 validate, Y channel, 7-pixel crop. For each scale in SCALES (default "1 2")
# it trains DML and the ablations with one schedule (ITERS iterations each, default 400), evaluates
# no blur and a fixed Gaussian, and prints one table: methods as rows, scales as column groups.
#   x1: the LR on the HR grid (as the official DML code and RealSR V2);
#   x2: the LR downscaled by 2 (INTER_AREA), the network downsamples (paper Eq. 1, RealSR V3).
# Run from the project root, after scripts/setup.sh:   bash scripts/city100_table1.sh
# Experiments go to experiments/City100T1_<method>_x<s>, the table to results/city100_table1.md.
# Runs already trained are skipped, so an interrupted script can be restarted.
set -euo pipefail
ITERS=${ITERS:-400}
SCALES=${SCALES:-1 2}
BASICSR=${BASICSR:-.venv/bin/basicsr}
declare -A METHOD=([dml]=DML [directnet]=DirectNet [directkpn]=DirectKPN [uniformkernel]=UniformKernel)
LABELS=()
for s in $SCALES; do
  SCALE_OPTS=(scale=$s network_g:scale=$s)
  if [ "$s" != 1 ]; then
    SCALE_OPTS+=(datasets:train:lr_downscale=$s datasets:val:lr_downscale=$s)
  fi
  for key in dml uniformkernel directnet directkpn; do
    name=City100T1_${METHOD[$key]}_x$s
    if [ -f "experiments/$name/models/net_g_$ITERS.pth" ]; then
      echo "$name: already trained, skipped"
    else
      "$BASICSR" train -opt "options/train_${key}_city100.yml" --force_yml name=$name "${SCALE_OPTS[@]}" \
        train:total_iter=$ITERS val:val_freq=$ITERS logger:save_checkpoint_freq=$ITERS
    fi
  done
  test_opts=(scale=$s network_g:scale=$s)
  [ "$s" != 1 ] && test_opts+=(datasets:test_1:lr_downscale=$s)
  "$BASICSR" test -opt options/test_gaussian_city100.yml --force_yml name=City100T1_Identity_x$s \
    network_g:kernel=identity "${test_opts[@]}"
  "$BASICSR" test -opt options/test_gaussian_city100.yml --force_yml name=City100T1_Gaussian_x$s "${test_opts[@]}"
  LABELS+=(--label "No blur (identity)_x$s=results/City100T1_Identity_x$s"
           --label "Gaussian sigma 1 (fixed)_x$s=results/City100T1_Gaussian_x$s"
           --label "Uniform kernel (learned)_x$s=experiments/City100T1_UniformKernel_x$s"
           --label "DirectNet_x$s=experiments/City100T1_DirectNet_x$s"
           --label "DirectKPN_x$s=experiments/City100T1_DirectKPN_x$s"
           --label "DML_x$s=experiments/City100T1_DML_x$s")
done
"$BASICSR" report --dataset City100_val --metrics psnr,ssim --output results/city100_table1.md "${LABELS[@]}"
