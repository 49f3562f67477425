//! Real recorded tables (issue 15, section 1): holes, single readings, a knob with one value,
//! and the bench on noisy single-shot tables generated from the twin.

use serde_json::Value;

mod common;
use common::edgetune;

/// A single-batch sweep's CSV with a few rows cut out, as failed runs leave a real sweep.
fn holed_sweep(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("sweep");
    edgetune()
        .args([
            "sweep", "-m", "resnet18", "-d", "nano", "--batch", "8", "-q", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // Drop every 20th configuration (never the header nor the last, all-max row).
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || *i == lines.len() - 1 || i % 20 != 7)
        .map(|(_, l)| *l)
        .collect();
    let p = dir.join("holed.csv");
    std::fs::write(&p, kept.join("\n") + "\n").unwrap();
    p
}

#[test]
fn a_single_batch_sweep_with_holes_is_tuned_and_its_holes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let table = holed_sweep(dir.path());
    let o = edgetune()
        .args([
            "tune", "-m", "resnet18", "-d", "nano", "--json", "-q", "--budget", "60",
        ])
        .arg("--table")
        .arg(&table)
        .arg("--out")
        .arg(dir.path().join("tune"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The batch column has one value: a fixed knob, not an axis.
    assert_eq!(r["grid_size"], 15 * 12);
    assert_eq!(r["best"]["batch_size"], 8);
    // Each row is one reading: one run, never three copies of it.
    for m in r["measurements"].as_array().unwrap() {
        assert_eq!(m["runs"], 1, "{m}");
    }
    // A hole the search asked for is reported as not measured, and the study went on.
    if let Some(f) = r["failed"].as_array() {
        for x in f {
            assert!(
                x["error"].as_str().unwrap().contains("a hole in the table"),
                "{x}"
            );
        }
    }
    assert!(r["measured_configs"].as_u64().unwrap() >= 10);
}

#[test]
fn bench_replays_noisy_single_shot_tables_with_holes_generated_from_the_twin() {
    let dir = tempfile::tempdir().unwrap();
    let o = edgetune()
        .args([
            "bench",
            "--strategies",
            "bayes,random",
            "--seeds",
            "2",
            "--budget",
            "20",
        ])
        .args(["--models", "alexnet", "--devices", "nano", "--json"])
        .args(["--table-noise", "0.05", "--table-holes", "0.01", "--out"])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b: Value = serde_json::from_slice(&o.stdout).unwrap();
    for s in ["bayes", "random"] {
        let r = b["strategies"][s]["final_regret_pct"]["median"]
            .as_f64()
            .unwrap();
        assert!(r.is_finite() && r >= 0.0, "{s}: {r}");
    }
    for bad in [["--table-noise", "2"], ["--table-holes", "0.7"]] {
        edgetune()
            .args(["bench", "--seeds", "1", "--table-noise", "0.05"])
            .args(bad)
            .assert()
            .code(2);
    }
}
