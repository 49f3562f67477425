//! kill -9 at seeded random moments of studies on the twin (made to take wall time with
//! `--twin-sleep`), each then resumed to the end (issue 18). Nothing may be lost or measured
//! twice: grid and random studies end with the same configurations, in the same order, as an
//! uninterrupted run; every study reuses every measurement its journal held.
//!
//! `EDGETUNE_SOAK_KILLS` kills per strategy (default 2: 8 kills, a few seconds in the test
//! suite); `EDGETUNE_SOAK_KILLS=13 cargo test --release --test kill_soak` is the 52-kill soak.

use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

mod common;
use common::std_edgetune;

/// Wall seconds per simulated second: a study of 12 takes about a second.
const SLEEP: &str = "0.0004";

/// The study's options (without `--out`, `--resume` or `--twin-sleep`).
fn study(strategy: &str) -> Vec<String> {
    let budget = if strategy == "bayes" { "14" } else { "12" };
    [
        "tune",
        "-m",
        "resnet18",
        "-d",
        "nano",
        "-q",
        "--inferences",
        "320",
        "--seed",
        "5",
        "--strategy",
        strategy,
        "--budget",
        budget,
    ]
    .map(String::from)
    .to_vec()
}

/// The configurations of a journal's measurement records, in order.
fn journaled(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "measurement")
        .map(|v| v["config"].to_string())
        .collect()
}

fn run(args: &[String]) -> std::process::Output {
    std_edgetune().args(args).output().unwrap()
}

/// Resumes the study in `out` to its end; a kill before its folder or a whole journal header
/// existed leaves nothing to resume, and the study starts again.
fn finish(strategy: &str, out: &Path) -> Value {
    let resume = [
        study(strategy),
        vec!["--resume".into(), out.display().to_string()],
    ]
    .concat();
    let o = run(&resume);
    if o.status.code() == Some(2) && journaled(out).is_empty() {
        // Killed before its folder or journal was made (a slow start on a busy machine).
        if out.exists() {
            std::fs::remove_dir_all(out).unwrap();
        }
        let fresh = [
            study(strategy),
            vec!["--out".into(), out.display().to_string()],
        ]
        .concat();
        let o = run(&fresh);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn kill_9_at_any_moment_then_resume_loses_and_repeats_nothing() {
    let kills: usize = std::env::var("EDGETUNE_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = tempfile::tempdir().unwrap();
    let mut next = common::seeded(0x9e37_79b9);
    for strategy in ["grid", "random", "coordinate", "bayes"] {
        // The uninterrupted study, at the same pace: kills fall anywhere within its length.
        let reference = dir.path().join(format!("{strategy}-ref"));
        let args = [
            study(strategy),
            ["--twin-sleep", SLEEP, "--out"].map(String::from).to_vec(),
            vec![reference.display().to_string()],
        ];
        let t0 = std::time::Instant::now();
        assert!(run(&args.concat()).status.success());
        let length_ms = t0.elapsed().as_millis().max(1) as u64;
        let whole = journaled(&reference);
        for k in 0..kills {
            let out = dir.path().join(format!("{strategy}-{k}"));
            let mut child = std_edgetune()
                .args(study(strategy))
                .args(["--twin-sleep", SLEEP, "--out"])
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(next() % length_ms));
            let _ = child.kill();
            child.wait().unwrap();
            let before = journaled(&out);
            let report = finish(strategy, &out);
            let after = journaled(&out);
            let what = format!("{strategy}, kill {k} after {} measurements", before.len());
            eprintln!("SOAK {what}");
            // Nothing measured twice, nothing journaled dropped from the study.
            let mut unique = after.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), after.len(), "{what}: a configuration twice");
            assert_eq!(after[..before.len()], before[..], "{what}");
            assert_eq!(report["measured_configs"], after.len(), "{what}");
            if report["resumed_configs"] != 0 {
                assert_eq!(report["resumed_configs"], before.len(), "{what}");
            }
            if strategy == "grid" || strategy == "random" {
                assert_eq!(after, whole, "{what}: not the uninterrupted study's");
            }
        }
    }
}
