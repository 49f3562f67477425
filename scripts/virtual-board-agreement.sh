#!/usr/bin/env bash
# Agreement of the jetson backend, measuring a virtual board through its sysfs files, with the
# digital twin it emulates: for each board and model, `edgetune emulate` runs a virtual board,
# `edgetune tune --backend jetson --strategy grid` measures every GPU step at the top CPU clock
# and batch 8 through the real backend (poller thread, trapezoid integration, restore), and each
# energy is compared with the twin's noiseless value scaled by the time scale.
#   scripts/virtual-board-agreement.sh [models...]      (default: resnet18 mobilenet-v2 bert-tiny)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
B=$PWD/target/release/edgetune
SCALE=${SCALE:-0.05}
N=${INFERENCES:-320}
MODELS=${*:-resnet18 mobilenet-v2 bert-tiny}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
printf '| board | model | configurations | median deviation | worst deviation | DVFS baseline deviation | recommended GPU (board / twin) | true energy above the twin pick |\n|---|---|---|---|---|---|---|---|\n'
for board in nano xavier-nx; do
  cpu=$([ "$board" = nano ] && echo 1479MHz || echo 1907.2MHz)
  for m in $MODELS; do
    root=$work/$board-$m
    "$B" emulate -q --board "$board" --root "$root" --sensor-refresh-ms 20 --time-scale="$SCALE" &
    emu=$!
    while [ ! -e "$root/run/edgetune-emulator/config.json" ]; do sleep 0.05; done
    "$B" tune -q --json -m "$m" --backend jetson --sysfs-root "$root" --poll-ms 10 \
      --workload-cmd "$B emulate-infer --root $root --model {model} --batch {batch} --inferences {inferences}" \
      --inferences "$N" --warmup 0 --min-runs 2 --max-runs 3 --strategy grid \
      --batch-sizes 8 --fix cpu=$cpu -o "$work/out-$board-$m" > "$work/board.json"
    kill -TERM $emu; wait $emu || true
    "$B" sweep -q --json -m "$m" -d "$board" --noise off --batch 8 --inferences "$N" -o "$work/sweep-$board-$m" > "$work/twin.json"
    "$B" baseline -q --json -m "$m" -d "$board" --noise off -b 8 --inferences "$N" --min-runs 1 --max-runs 1 > "$work/dvfs.json"
    python3 - "$work/board.json" "$work/twin.json" "$work/dvfs.json" "$SCALE" "$board" "$m" <<'PY'
import json, statistics, sys
board, twin, dvfs = (json.load(open(p)) for p in sys.argv[1:4])
scale, name, model = float(sys.argv[4]), sys.argv[5], sys.argv[6]
truth = {(g["cpu_freq_khz"], g["gpu_freq_hz"]): g["energy_j"] for g in twin["grid"]}
dev = [abs(m["energy_j"] / (truth[(m["cpu_freq_khz"], m["gpu_freq_hz"])] * scale) - 1) for m in board["measurements"]]
base = dvfs["measurements"][0]["energy_j"] if "measurements" in dvfs else dvfs[0]["energy_j"]
bdev = abs(board["baseline"]["energy_j"] / (base * scale) - 1)
cpu = board["best"]["cpu_freq_khz"]
e_twin, twin_best = min((e, g) for (c, g), e in truth.items() if c == cpu)
gap = truth[(cpu, board["best"]["gpu_freq_hz"])] / e_twin - 1
print(f"| {name} | {model} | {len(dev)} | {100*statistics.median(dev):.2f} % | {100*max(dev):.2f} % | {100*bdev:.2f} % | {board['best']['gpu_freq_hz']/1e6:.1f} / {twin_best/1e6:.1f} MHz | {100*gap:.2f} % |")
PY
  done
done
