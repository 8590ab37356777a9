#!/usr/bin/env bash
# Commit-ready copies of the x4 RealSR runs of scripts/realsr_x4_runs.sh: each finished run's last checkpoint
# (net_g_latest.pth, weights only) copied into model_zoo/realsr_x4_sr/ (Table 2) or model_zoo/realsr_x4_degradation/
# (Table 1) and listed in that folder's models.yml with its network_g, sha256 and the command that trained it (its
# option file, whose name: is the run's). A row is replaced by label; the committed rows of runs that are not in
# experiments/ here are kept as they are (and named); a new label is added at the end.
#   bash scripts/realsr_x4_collect.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SR_NET='{type: MSRResNet, num_in_ch: 3, num_out_ch: 3, num_feat: 32, num_block: 8, upscale: 4}'
declare -A HEADER=(
  [realsr_x4_sr]="# Table 2 at x4 on RealSR (docs/results.md, \"Results at x4 on RealSR\"): one RGB MSRResNet x4 (32 features, 8 blocks) per kind
# of training pair, the same loss (L1), budget (3000 iterations of batch 16 at 96x96 HR) and HR patches for every row;
# trained on the RealSR V3 x4 crops 001-030 (Canon 5D3, Nikon D810; research use), tested on 031-035.
# Re-test every row with one command: basicsr test -opt options/test_srx4_realsr_manifest.yml
# (on LR photographs without ground truth: options/test_srx4_manifest_lr_photos.yml). Made by scripts/realsr_x4_collect.sh."
  [realsr_x4_degradation]="# Table 1 at x4 on RealSR (docs/results.md, \"Results at x4 on RealSR\"): the learned degradation models (HR -> LR, Y), one
# budget (4000 iterations of batch 8 at 96x96 HR), trained on the RealSR V3 x4 crops 001-030 of both cameras
# (research use), validated on 031-035 (synthetic vs real LR, Y, 7-pixel LR crop). DML, M=8 is the shipped realsr-x4.
# DSGAN is RGB (color: rgb), trained unpaired with its own losses and budget (options/train_dsgan_realsr_crops_x4.yml).
# Re-test every row with one command: basicsr test -opt options/test_degradation_realsr_x4_manifest.yml
# Made by scripts/realsr_x4_collect.sh."
)

collect() {  # collect FOLDER LABEL RUN OPTION_FILE NETWORK_G [MODEL_TYPE [COLOR]]
  local folder=model_zoo/$1 label=$2 run=$3 opt=$4 net=$5 model_type=${6:-} color=${7:-}
  local source=experiments/$run/models/net_g_latest.pth target=model_zoo/$1/${3,,}.pth
  if [ ! -f "$source" ]; then  # stopped before its end: its last checkpoint, the label says which
    source=$(ls experiments/$run/models 2>/dev/null | grep -E '^net_g_[0-9]+\.pth$' | sort -t_ -k3 -n | tail -n 1 || true)
    if [ -z "$source" ]; then echo "$run: no checkpoint here, the committed row '$label' (if any) kept"; return; fi
    source=experiments/$run/models/$source
    local iters=${source##*net_g_}; iters=${iters%.pth}
    label="$label (stopped at $iters iterations)"
    echo "$run: not finished, its checkpoint of iteration $iters listed as '$label'"
  fi
  if [ "$run" = RealSRx4_DML ]; then
    target=dml_basicsr/degradation/pretrained/realsr_x4.pth  # shipped in the wheel: listed, not copied
  else
    cp "$source" "$target"
  fi
  local new=; [ -f "$folder/models.yml" ] || new=1
  "$PY" -m dml_basicsr.utils.model_manifest add --manifest "$folder/models.yml" --label "$label" \
    --checkpoint "$target" --network-g "$net" ${model_type:+--model-type "$model_type"} ${color:+--color "$color"} \
    --command "basicsr train -opt $opt --auto_resume"
  if [ -n "$new" ]; then  # its comment lines on top (the manifest tool keeps them on every later write)
    { echo "${HEADER[$1]}"; cat "$folder/models.yml"; } > "$folder/models.yml.new" && mv "$folder/models.yml.new" "$folder/models.yml"
  fi
}

collect realsr_x4_sr '(a) real' SRx4_a-real options/train_srx4_realsr_real.yml "$SR_NET"
collect realsr_x4_sr '(b) Syn-DML' SRx4_b-syndml options/train_srx4_realsr_syndml.yml "$SR_NET"
collect realsr_x4_sr '(b2) Syn-DML fitted noise' SRx4_b2-syndml_fittednoise \
  options/train_srx4_realsr_syndml_fittednoise.yml "$SR_NET"
collect realsr_x4_sr '(c) Syn-bicubic' SRx4_c-synbicubic options/train_srx4_realsr_synbicubic.yml "$SR_NET"
collect realsr_x4_sr '(d) Syn-Real-ESRGAN' SRx4_d-synrealesrgan options/train_srx4_realsr_synrealesrgan.yml "$SR_NET"
collect realsr_x4_sr '(e) real + Syn-DML' SRx4_e-real_syndml options/train_srx4_realsr_real_syndml.yml "$SR_NET"
collect realsr_x4_sr '(f) Syn-DSGAN' SRx4_f-syndsgan options/train_srx4_realsr_syndsgan.yml "$SR_NET"
collect realsr_x4_sr '(g) real + Syn-DSGAN' SRx4_g-real_syndsgan options/train_srx4_realsr_real_syndsgan.yml "$SR_NET"

DML='type: DMLNet, num_in_ch: 1, kernel_size: 15, scale: 4, num_feat: 32, basis_init: random'
collect realsr_x4_degradation "DML, M=4" RealSRx4_DML-M4 options/train_dml_realsr_crops_x4_m4.yml \
  "{$DML, num_basis: 4}" DMLModel
collect realsr_x4_degradation "DML, M=8" RealSRx4_DML options/train_dml_realsr_crops_x4.yml "{$DML, num_basis: 8}" DMLModel
collect realsr_x4_degradation "DML, M=16" RealSRx4_DML-M16 options/train_dml_realsr_crops_x4_m16.yml \
  "{$DML, num_basis: 16}" DMLModel
collect realsr_x4_degradation DirectNet RealSRx4_DirectNet options/train_directnet_realsr_crops_x4.yml \
  '{type: DirectNet, num_in_ch: 1, scale: 4, num_feat: 32}' DMLModel
collect realsr_x4_degradation DirectKPN RealSRx4_DirectKPN options/train_directkpn_realsr_crops_x4.yml \
  '{type: DirectKPN, num_in_ch: 1, kernel_size: 15, scale: 4, num_feat: 32}' DMLModel
collect realsr_x4_degradation 'Uniform kernel (learned)' RealSRx4_UniformKernel \
  options/train_uniformkernel_realsr_crops_x4.yml '{type: UniformKernelNet, num_in_ch: 1, kernel_size: 15, scale: 4}' DMLModel
collect realsr_x4_degradation DSGAN DSGAN_RealSRcrops_x4 options/train_dsgan_realsr_crops_x4.yml \
  '{type: DSGANDegradation, num_in_ch: 3, scale: 4, num_feat: 64, num_block: 8}' DSGANModel rgb
"$PY" -m dml_basicsr.utils.model_manifest check model_zoo/realsr_x4_sr/models.yml
"$PY" -m dml_basicsr.utils.model_manifest check model_zoo/realsr_x4_degradation/models.yml
