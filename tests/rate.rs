//! A fixed arrival rate (`tune --rate`, issue 26) on the twin: energy counts the idle between
//! inferences at each configuration's clocks, keeping the rate is a limit, and where the idle is
//! cheap the recommendation races to idle instead of crawling at the lowest clock that keeps up.

use edgetune::catalog::Catalog;
use edgetune::device::FreqSetting;
use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;

mod common;
use common::{edgetune, json_of};

/// `tune -m yolov4-tiny -d board` on the twin with `args`, its report.json.
fn tune_json(board: &str, args: &[&str], out: &Path) -> Value {
    json_of(
        edgetune()
            .args(["tune", "-m", "yolov4-tiny", "-d", board])
            .args(args)
            .args(["-q", "--json", "--out"])
            .arg(out),
    )
}

fn knobs(r: &Value) -> (u64, u64, u32) {
    let b = &r["best"];
    (
        b["cpu_freq_khz"].as_u64().unwrap(),
        b["gpu_freq_hz"].as_u64().unwrap(),
        b["batch_size"].as_u64().unwrap() as u32,
    )
}

/// The noiseless twin's energy for 3200 YOLOv4-tiny inferences arriving at `rate` per second on
/// `board`, `None` where the configuration cannot keep up.
fn at_rate(
    cat: &Catalog,
    board: &str,
    (cpu, gpu, batch): (u64, u64, u32),
    rate: f64,
) -> Option<f64> {
    let (b, m) = (cat.board(board).unwrap(), cat.model("yolov4-tiny").unwrap());
    let setting = FreqSetting::Pinned {
        cpu_freq_khz: cpu,
        gpu_freq_hz: gpu,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    };
    let p = edgetune::twin::truth(b, m, &setting, batch, 3200);
    let arrival_s = 3200.0 / rate;
    let idle_w = edgetune::twin::idle_power_at_mw(b, &setting) / 1e3;
    (p.time_s <= arrival_s).then_some(p.energy_j + idle_w * (arrival_s - p.time_s))
}

#[test]
fn at_a_low_rate_the_recommendation_races_to_idle_below_plain_tune_s_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::load(None).unwrap();
    let rate = 1.5;
    let plain = knobs(&tune_json("nano", &[], &dir.path().join("plain")));
    let r = tune_json("nano", &["--rate", "1.5"], &dir.path().join("rate"));
    let best = knobs(&r);
    // Energy per inference now includes the idle: plain tune's clocks pay for a static power
    // the board draws anyway while it waits, so the rate's recommendation runs slower.
    assert!(
        best.0 < plain.0 && best.1 < plain.1,
        "{best:?} vs {plain:?}"
    );
    let e_best = at_rate(&cat, "nano", best, rate).expect("the recommendation keeps the rate");
    let e_plain = at_rate(&cat, "nano", plain, rate).unwrap();
    assert!(e_plain > 1.05 * e_best, "{e_plain} vs {e_best}");
    // Near the grid's optimum at this rate.
    let b = cat.board("nano").unwrap();
    let mut optimum = f64::INFINITY;
    for c in &b.cpu.frequencies_khz {
        for g in &b.gpu.frequencies_hz {
            for batch in [4, 8, 16, 32, 64] {
                optimum = optimum
                    .min(at_rate(&cat, "nano", (*c, *g, batch), rate).unwrap_or(f64::INFINITY));
            }
        }
    }
    assert!(e_best < 1.03 * optimum, "{e_best} vs {optimum}");
    // Race to idle: it finishes well before the last inference arrives, and crawling at the
    // lowest GPU clock that keeps up (same CPU clock and batch) costs more.
    let busy_s = r["best"]["time_s"].as_f64().unwrap();
    assert!(busy_s < 0.8 * 3200.0 / rate, "busy {busy_s} s");
    let crawl = b
        .gpu
        .frequencies_hz
        .iter()
        .find_map(|g| at_rate(&cat, "nano", (best.0, *g, best.2), rate))
        .unwrap();
    assert!(crawl > 1.03 * e_best, "crawl {crawl} vs {e_best}");
    // The report says what the rate changed.
    let a = &r["at_rate"];
    assert_eq!(a["rate_hz"], 1.5);
    let arrival_s = a["arrival_s"].as_f64().unwrap();
    assert!((arrival_s - 3200.0 / 1.5).abs() < 1e-9);
    let idle_w = a["best_idle_power_w"].as_f64().unwrap();
    let energy = r["best"]["energy_j"].as_f64().unwrap();
    let expected = energy + idle_w * (arrival_s - busy_s);
    assert!((a["best_energy_j"].as_f64().unwrap() - expected).abs() < 1e-6 * expected);
    let saving = r["saving_pct"].as_f64().unwrap();
    let base = a["baseline_energy_j"].as_f64().unwrap();
    assert!((saving - (1.0 - expected / base) * 100.0).abs() < 1e-6);
    assert_eq!(r["constraints"][0]["name"], "rate");
    let md = std::fs::read_to_string(dir.path().join("rate/report.md")).unwrap();
    assert!(md.contains("At **1.5 inferences/s**"), "{md}");
    let profile = std::fs::read_to_string(dir.path().join("rate/profile.toml")).unwrap();
    assert!(profile.contains("rate_hz = 1.5") && profile.contains("energy_at_rate_j"));
}

/// The camera case: 30 inferences per second, on AGX Orin (a Nano cannot run YOLOv4-tiny
/// that fast). Plain tune's clocks cost several percent more at that rate; the rate's
/// recommendation idles most of the time, its CPU clock above the lowest that keeps up.
#[test]
fn at_30_per_second_on_agx_orin_the_recommendation_differs_and_races_to_idle() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::load(None).unwrap();
    let (board, rate) = ("agx-orin", 30.0);
    let plain = knobs(&tune_json(board, &[], &dir.path().join("plain")));
    let r = tune_json(board, &["--rate", "30"], &dir.path().join("rate"));
    let best = knobs(&r);
    let e_best = at_rate(&cat, board, best, rate).unwrap();
    let e_plain = at_rate(&cat, board, plain, rate).unwrap();
    // The twin's optimum at this rate, over the whole grid.
    let b = cat.board(board).unwrap();
    let mut optimum = (f64::INFINITY, (0, 0, 0));
    for c in &b.cpu.frequencies_khz {
        for g in &b.gpu.frequencies_hz {
            for batch in [4, 8, 16, 32, 64] {
                match at_rate(&cat, board, (*c, *g, batch), rate) {
                    Some(e) if e < optimum.0 => optimum = (e, (*c, *g, batch)),
                    _ => {}
                }
            }
        }
    }
    assert_ne!(best, plain);
    assert!(e_plain > 1.05 * e_best, "{e_plain} vs {e_best}");
    assert!(e_best < 1.01 * optimum.0, "{e_best} vs {}", optimum.0);
    // It races, then idles: busy for a third of the time the frames take to arrive.
    let busy = r["best"]["time_s"].as_f64().unwrap() * rate / 3200.0;
    assert!(busy < 0.6, "busy {busy}");
    // At the optimum, crawling at the lowest CPU clock that keeps up costs more.
    let (_, (_, gpu, batch)) = optimum;
    let crawl = b
        .cpu
        .frequencies_khz
        .iter()
        .find_map(|c| at_rate(&cat, board, (*c, gpu, batch), rate))
        .unwrap();
    assert!(crawl > 1.005 * optimum.0, "crawl {crawl} vs {}", optimum.0);
}

#[test]
fn a_rate_no_configuration_keeps_is_said_and_bad_rates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // YOLOv4-tiny on a Nano does about 16 inferences per second at most.
    edgetune()
        .args([
            "tune",
            "-m",
            "yolov4-tiny",
            "-d",
            "nano",
            "-q",
            "--budget",
            "6",
        ])
        .args(["--rate", "60", "--out"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "NO measured configuration met them",
        ))
        .stdout(predicate::str::contains("at 60 inferences/s"));
    for (args, msg) in [
        (vec!["--rate", "0"], "--rate"),
        (
            vec!["--rate", "30", "--objective", "time"],
            "leave out --objective",
        ),
        (vec!["--rate", "30", "--pareto"], "leave out --objective"),
        (vec!["--idle-window-s", "2"], "--rate"),
    ] {
        edgetune()
            .args(["tune", "-m", "resnet18", "-d", "nano", "-q"])
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
    }
    edgetune()
        .args([
            "tune",
            "-m",
            "inceptionv3",
            "-d",
            "xavier-nx",
            "-q",
            "--rate",
            "30",
        ])
        .arg("--table")
        .arg(common::sysfs_tree::fixture_dir(
            "tables/loudva-xavier-nx-inceptionv3-powermodes.csv",
        ))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a recorded table has none"));
    edgetune()
        .args(["bench", "--seeds", "1", "--rate", "30"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bench does not judge --rate"));
}
