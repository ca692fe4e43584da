#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job: the CultureSPA recipe on the embedded SmolLM2-135M model,
# 3 cultures, 13 WVS topics x 3 generated questions, LoRA for 1 epoch, WVS before/after. Extra arguments
# override recipe fields, e.g. `bash scripts/quickstart.sh cultures=[DEU,JPN] survey=/path/to/wvs`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
culturealign run recipes/culturespa.yaml "$@"
