//! Board time (issue 14) end to end on the twin: racing and screening runs, the confirmed
//! recommendation, `--prior`, and bench's board-time figures with and without `--mismatch`.

use serde_json::Value;
use std::path::Path;

mod common;
use common::{edgetune, json_of};

fn tune_json(args: &[&str], out: &Path) -> Value {
    json_of(
        edgetune()
            .arg("tune")
            .args(args)
            .args(["-q", "--json", "--out"])
            .arg(out),
    )
}

#[test]
fn the_default_tune_screens_races_and_confirms_what_it_recommends() {
    let dir = tempfile::tempdir().unwrap();
    let fast = tune_json(&["-m", "resnet18", "-d", "nano"], &dir.path().join("fast"));
    let slow = tune_json(
        &[
            "-m",
            "resnet18",
            "-d",
            "nano",
            "--no-race",
            "--screen-inferences",
            "0",
            "--prior",
            "none",
        ],
        &dir.path().join("slow"),
    );
    assert_eq!(fast["exploration"]["race"], true);
    assert_eq!(fast["exploration"]["screen_inferences"], 400);
    assert_eq!(fast["prior"], "the catalogue's digital twin");
    assert_eq!(fast["best_confirmed"], true);
    // The recommendation is stated at the full protocol, though exploring rows were screened.
    let rows = fast["measurements"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["screened_inferences"].is_u64()));
    let best = &fast["best"];
    let row = rows
        .iter()
        .find(|r| {
            r["cpu_freq_khz"] == best["cpu_freq_khz"]
                && r["gpu_freq_hz"] == best["gpu_freq_hz"]
                && r["batch_size"] == best["batch_size"]
        })
        .unwrap();
    assert!(row["screened_inferences"].is_null() && row["runs"].as_u64().unwrap() >= 3);
    // The plain search has no exploration block and spends far more board time.
    assert!(slow.get("exploration").is_none());
    let (f, s) = (
        fast["tuning_time_s"].as_f64().unwrap(),
        slow["tuning_time_s"].as_f64().unwrap(),
    );
    assert!(f < 0.5 * s, "board time {f:.0} s against {s:.0} s");
    // And finds as good a configuration (within the twin's noise).
    let (fe, se) = (
        best["energy_j"].as_f64().unwrap(),
        slow["best"]["energy_j"].as_f64().unwrap(),
    );
    assert!(fe < 1.05 * se, "{fe} J against {se} J");
    let md = std::fs::read_to_string(dir.path().join("fast/report.md")).unwrap();
    assert!(md.contains("screening: ") && md.contains("not final figures"));
}

#[test]
fn an_earlier_tune_is_a_prior_for_another_model_and_another_board() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    tune_json(&["-m", "resnet18", "-d", "nano"], &first);
    let p = first.to_str().unwrap();
    for (m, d) in [("mobilenet-v2", "nano"), ("resnet18", "xavier-nx")] {
        let r = tune_json(
            &["-m", m, "-d", d, "--prior", p],
            &dir.path().join(format!("{m}-{d}")),
        );
        assert!(
            r["prior"].as_str().unwrap().contains("earlier study"),
            "{}",
            r["prior"]
        );
        assert_eq!(r["best_confirmed"], true);
    }
    // What is not an earlier tune is refused as bad input.
    for bad in [dir.path().join("nope"), dir.path().to_path_buf()] {
        edgetune()
            .args(["tune", "-m", "resnet18", "-d", "nano", "-q", "--prior"])
            .arg(&bad)
            .arg("--out")
            .arg(dir.path().join("x"))
            .assert()
            .code(2);
    }
}

#[test]
fn bench_reports_board_time_and_takes_a_mismatched_twin() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], out: &str| -> Value {
        json_of(
            edgetune()
                .args([
                    "bench",
                    "--strategies",
                    "bayes",
                    "--seeds",
                    "2",
                    "--models",
                    "alexnet",
                ])
                .args(["--devices", "nano", "--json", "--out"])
                .arg(dir.path().join(out))
                .args(extra),
        )
    };
    let plain = run(&[], "plain");
    let mismatch = run(&["--mismatch"], "mismatch");
    for b in [&plain, &mismatch] {
        let s = &b["strategies"]["bayes"];
        let h = s["board_time_h"]["median"].as_f64().unwrap();
        assert!(h > 0.0 && h < 2.0, "{h}");
        assert!(s["board_time_h_cells"].as_f64().unwrap() > 0.0);
        assert!(b["runs"][0]["board_time_h"].as_f64().unwrap() > 0.0);
    }
    // The perturbed boards have minima of their own: the studies do not all end at the same
    // configurations as on the catalogue's twin.
    assert_ne!(plain["runs"], mismatch["runs"]);
    // A table has no twin to perturb, and bench takes no earlier study as prior.
    let table = dir.path().join("t.csv");
    std::fs::write(&table, "cpu_freq_khz,gpu_freq_hz,batch_size,energy_j\n").unwrap();
    let t = table.to_str().unwrap();
    for (extra, says) in [
        (
            ["--mismatch", "--table", t],
            "a --table has no twin to perturb",
        ),
        (["--prior", t, "--mismatch"], "only tune takes"),
    ] {
        edgetune()
            .args(["bench", "--seeds", "1"])
            .args(extra)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
}

#[test]
fn limits_nothing_can_meet_stop_the_search_early_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    for (i, limit) in [["--max-latency-ms", "50"], ["--max-power-w", "0.5"]]
        .iter()
        .enumerate()
    {
        let mut args = vec!["-m", "yolov4-tiny", "-d", "nano"];
        args.extend(limit);
        let r = tune_json(&args, &dir.path().join(format!("hopeless-{i}")));
        let n = r["measured_configs"].as_u64().unwrap();
        assert!(n <= 10, "{limit:?}: {n} measurements");
        let why = r["stop_reason"].as_str().unwrap();
        assert!(
            why.starts_with("no configuration can meet the limits"),
            "{why}"
        );
        assert_eq!(r["best_feasible"], false);
        // The least infeasible recommendation is a confirmed figure too (with the latency limit
        // the strategy moves to another configuration once its first choice is confirmed).
        assert_eq!(r["best_confirmed"], true, "{limit:?}");
    }
    // A limit the board can meet is searched as usual.
    let r = tune_json(
        &["-m", "yolov4-tiny", "-d", "nano", "--max-power-w", "2.4"],
        &dir.path().join("feasible"),
    );
    assert_eq!(r["best_feasible"], true);
}

#[test]
fn a_rough_board_s_bench_prints_its_landscape_beside_the_real_tables() {
    let dir = tempfile::tempdir().unwrap();
    let b = json_of(
        edgetune()
            .args(["bench", "--rough", "--json", "--strategies", "bayes,random"])
            .args(["--models", "resnet18", "--devices", "nano", "--seeds", "3"])
            .args(["--budget", "30", "--out"])
            .arg(dir.path().join("bench")),
    );
    assert_eq!(b["source"], "rough twin");
    let rows = b["landscape"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for l in rows {
        assert_eq!(l["inside"], true, "{l}");
    }
    // Each study measured a board of its own, judged against its own rough grid: bayes's
    // recommendations beat random's.
    let med = |s: &str| {
        b["strategies"][s]["final_regret_pct"]["median"]
            .as_f64()
            .unwrap()
    };
    assert!(
        med("bayes") < med("random"),
        "{} {}",
        med("bayes"),
        med("random")
    );
    let md = std::fs::read_to_string(dir.path().join("bench/bench.md")).unwrap();
    assert!(
        md.contains("## The rough boards against real tables"),
        "{md}"
    );
}
