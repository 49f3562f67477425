#!/usr/bin/env bash
# Runs the same commands (tune plain, with limits, Pareto, JSON and resumed; sweep; measure;
# baseline; study create, worker, study report; listings; bad input) with two edgetune
# binaries and compares every file and text they wrote, byte for byte. For refactors that
# must not change output (issue 27 checked with it against the commit before it began).
#
#   scripts/compare-outputs.sh OLD/edgetune NEW/edgetune [WORKDIR]
#
# Each binary should be named `edgetune` (clap's usage lines print the program's name).
# Differences it expects and leaves out: the reports/study-*-<timestamp> folder's name (and
# the line naming it) and the SQLite file (it holds times and process ids).
set -u
old=$(readlink -f "$1")
new=$(readlink -f "$2")
work=${3:-$(mktemp -d)}
run_all() {
    local bin=$1 out=$2
    rm -rf "$out" && mkdir -p "$out" && cd "$out" || exit 1
    run() {
        local name=$1
        shift
        "$bin" "$@" >"$name.stdout" 2>"$name.stderr"
        echo "$name rc=$?" >>rc.txt
    }
    run tune tune -m yolov4-tiny -d nano --seed 3 --out t1
    run tune-limits tune -m resnet18 -d xavier-nx --seed 4 --max-latency-ms 40 --out t2
    run tune-pareto tune -m alexnet -d nano --seed 5 --pareto --out t3
    run tune-json tune -m mobilenet-v2 -d nano --seed 6 --json --strategy coordinate --out t4
    run tune-resume tune --resume t4 --json
    run sweep sweep -m alexnet -d nano --out s1
    run measure measure -m resnet18 -d nano --cpu-freq 1479MHz --gpu-freq 921.6MHz --batch 8 --json
    run measure-text measure -m resnet18 -d nano --cpu-freq 1479MHz --gpu-freq 921.6MHz --batch 8
    run baseline baseline -m resnet18 -d xavier-nx
    run baseline-json baseline -m resnet18 -d xavier-nx --json
    run create study create --storage sqlite:s.db --study st -m yolov4-tiny -d nano --seed 7 --budget 12
    run worker worker --storage sqlite:s.db --study st --board-id b1
    run report study report --storage sqlite:s.db --study st --out r1
    run report-json study report --storage sqlite:s.db --study st --json
    run list study list --storage sqlite:s.db
    run models models
    run devices devices
    run bad-fix tune -m alexnet -d nano --fix memory=1
    run bad-storage tune -m alexnet -d nano --storage ftp:x --study s
    run bad-table tune -m alexnet -d nano --backend sim --table x.csv
    run replay-needs tune -m alexnet -d nano --backend replay
    # The timestamped folder study report makes by default, under one name.
    for d in reports/study-st-*; do mv "$d" reports/study-st; done
    sed -i 's#reports/study-st-[0-9-]*#reports/study-st#' report-json.stderr
    rm -f s.db
}
(run_all "$old" "$work/old")
(run_all "$new" "$work/new")
if diff -r "$work/old" "$work/new"; then
    echo "identical: $(find "$work/new" -type f | wc -l) files ($work)"
else
    echo "outputs differ ($work)"
    exit 1
fi
