#!/usr/bin/env bash
# Re-counts the parameters and multiply-accumulates of every built-in model and records the MACs
# in models/*.toml (see count-macs.py). Needs the torch feature's set-up:
#   ./scripts/count-macs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./scripts/setup-torch.sh)"
cargo build --release --features torch
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
for f in models/*.toml; do
  grep -q '^\[built\]' "$f" || continue
  id="$(sed -n 's/^id = "\(.*\)"/\1/p' "$f" | head -1)"
  ./target/release/edgetune infer --model "$id" --batch 1 --torch-device cpu \
    --save-torchscript "$dir/$id.pt"
done
"$EDGETUNE_TORCH_PYTHON" scripts/count-macs.py "$dir"
