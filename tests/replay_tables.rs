//! Real recorded tables (issue 15, section 1): holes, single readings, a knob with one value,
//! and the bench on noisy single-shot tables generated from the twin.

use serde_json::Value;

mod common;
use common::{edgetune, json_of};

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
    // Drop every 20th configuration (never the header nor the last row, the sweep's DVFS one).
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
    let r: Value = json_of(
        edgetune()
            .args([
                "tune", "-m", "resnet18", "-d", "nano", "--json", "-q", "--budget", "60",
            ])
            .arg("--table")
            .arg(&table)
            .arg("--out")
            .arg(dir.path().join("tune")),
    );
    // The batch column has one value: a fixed knob, not an axis.
    assert_eq!(r["grid_size"], 15 * 12);
    // sweep.csv carries the sweep's DVFS row: it is the baseline, one reading of it.
    assert_eq!(r["baseline"]["kind"], "dvfs");
    assert_eq!(r["baseline"]["runs"], 1);
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
    let b: Value = json_of(
        edgetune()
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
            .arg(dir.path().join("b")),
    );
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

#[test]
fn a_table_varying_cores_and_memory_clock_round_trips_every_knob() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("cpu_cores,emc_freq_hz,gpu_freq_hz,energy_j,time_s\n");
    for (i, (c, e, g)) in [2u32, 4]
        .iter()
        .flat_map(|c| [800_000_000u64, 1_600_000_000].map(move |e| (c, e)))
        .flat_map(|(c, e)| [460_800_000u64, 921_600_000].map(move |g| (*c, e, g)))
        .enumerate()
    {
        // The minimum: 2 cores, the fast memory clock, the slow GPU clock.
        let energy = if (c, e, g) == (2, 1_600_000_000, 460_800_000) {
            90.0
        } else {
            100.0 + i as f64
        };
        body += &format!("{c},{e},{g},{energy},12\n");
    }
    let table = dir.path().join("knobs.csv");
    std::fs::write(&table, body).unwrap();
    let out = dir.path().join("tune");
    let r: Value = json_of(
        edgetune()
            .args([
                "tune",
                "-m",
                "resnet18",
                "-d",
                "nano",
                "--json",
                "-q",
                "--strategy",
                "grid",
                "--table",
            ])
            .arg(&table)
            .arg("--out")
            .arg(&out),
    );
    assert_eq!(r["best"]["cpu_cores"], 2);
    assert_eq!(r["best"]["emc_freq_hz"], 1_600_000_000u64);
    assert_eq!(r["best"]["gpu_freq_hz"], 460_800_000u64);
    let profile = std::fs::read_to_string(out.join("profile.toml")).unwrap();
    assert!(
        profile.contains("cpu_cores = 2") && profile.contains("emc_freq_hz = 1600000000"),
        "{profile}"
    );
    let script = std::fs::read_to_string(out.join("apply-profile.sh")).unwrap();
    assert!(
        script.contains("echo 0 > /sys/devices/system/cpu/cpu2/online"),
        "{script}"
    );
    assert!(
        script.contains("echo 1 > /sys/devices/system/cpu/cpu1/online"),
        "{script}"
    );
    assert!(script.contains("1600000000"), "{script}");
    let nvp = std::fs::read_to_string(out.join("nvpmodel.conf")).unwrap();
    assert!(
        nvp.contains("CPU_ONLINE CORE_3 0") && nvp.contains("CPU_ONLINE CORE_0 1"),
        "{nvp}"
    );
}
