#!/usr/bin/env bash
# Make datasets/<name> (BasicSR's convention, what every option file reads) a link to each dataset folder of DATA
# (default: ../shared/data, where this project's data lives): City100_NikonD5500, RealSR_V3_x4_crops, Urban100_HR,
# RealSRSet_LR, ... Existing entries of datasets/ are left as they are. Usage: bash scripts/link_datasets.sh [DATA]
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d "${1:-../shared/data}" ]]; then
  [[ -d datasets ]] && exit 0  # the data is laid out in datasets/ already
  echo "link_datasets.sh: ${1:-../shared/data} is not a folder and there is no datasets/ (see docs/datasets.md)" >&2
  exit 2
fi
DATA="$(cd "${1:-../shared/data}" && pwd)"
mkdir -p datasets
for folder in "$DATA"/*/; do
  name="$(basename "$folder")"
  [[ -e "datasets/$name" || -L "datasets/$name" ]] || ln -s "$DATA/$name" "datasets/$name"
done
ls datasets
