//! The powercap backend end to end on the host fixture tree: `tune` pins the CPU clock through
//! cpufreq, reads RAPL counters (which wrap around), recommends the clock the fixture's
//! workload makes cheapest, and leaves every file as found.

mod common;

use common::sysfs_tree::{fixture, fixture_dir, same, tree};
use std::path::{Path, PathBuf};

fn workload(root: &Path) -> String {
    format!(
        "sh {} {} {{batch}} {{inferences}}",
        fixture_dir("host-workload.sh").display(),
        root.display()
    )
}

/// Every file under `root` as in `before`, but the RAPL counters (which move, as a real
/// host's do).
fn as_found_but_the_counters(root: &Path, before: &std::collections::BTreeMap<PathBuf, Vec<u8>>) {
    let mut after = tree(root);
    for z in ["intel-rapl:0", "intel-rapl:0/intel-rapl:0:1"] {
        let p = root
            .join("sys/devices/virtual/powercap/intel-rapl")
            .join(z)
            .join("energy_uj");
        after.insert(p.clone(), before[&p].clone());
    }
    same(before, &after);
}

#[test]
fn tune_on_a_host_recommends_the_cheapest_cpu_clock_and_restores_cpufreq() {
    let (t, root) = fixture("host-rapl");
    let before = tree(&root);
    let out = t.path().join("out");
    let o = common::edgetune()
        .args(["tune", "--model", "yolov4-tiny", "--backend", "powercap"])
        .arg("--sysfs-root")
        .arg(&root)
        .args(["--workload-cmd", &workload(&root)])
        .args(["--batch-sizes", "8,64", "--inferences", "320", "--no-race"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("through RAPL"), "{stderr}");
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(rep["backend"], "powercap");
    assert_eq!(rep["device"], "host");
    assert_eq!(rep["best"]["cpu_freq_khz"], 1200000);
    assert_eq!(rep["best"]["batch_size"], 64);
    // The GPU clock is not a knob here: not in the recommendation.
    assert!(rep["best"].get("gpu_freq_hz").is_none(), "{rep}");
    // 320 inferences at batch 64: 0.32 s x 1.125 / 1.2 GHz at 13.456 W, plus dram's tenth,
    // across the package counter's wrap-around.
    let e = rep["best"]["energy_j"].as_f64().unwrap();
    let want = 320.0 * 0.001 * 1.125 / 1.2 * (10.0 + 2.0 * 1.728) * 1.1;
    assert!((e - want).abs() / want < 1e-3, "{e} vs {want}");
    // The baseline ran at the governor's limits as found (2.4 GHz at most): 28.5 % more.
    let same_batch = rep["saving_same_batch_pct"].as_f64().unwrap();
    assert!((same_batch - 28.5).abs() < 0.5, "{rep}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("powercap (RAPL)"), "{md}");
    as_found_but_the_counters(&root, &before);
}

#[test]
fn powercap_mistakes_exit_2_with_what_to_do() {
    // A Jetson's tree has no RAPL.
    let (_t, root) = fixture("nano-jp4");
    common::edgetune()
        .args(["tune", "--model", "yolov4-tiny", "--backend", "powercap"])
        .arg("--sysfs-root")
        .arg(&root)
        .args(["--workload-cmd", "true"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--backend powercap: no RAPL package zone",
        ));
    // A host CPU has no GPU clock to pin.
    let (_t, root) = fixture("host-rapl");
    common::edgetune()
        .args(["measure", "--model", "yolov4-tiny", "--backend", "powercap"])
        .arg("--sysfs-root")
        .arg(&root)
        .args([
            "--workload-cmd",
            "true",
            "--gpu-freq",
            "1GHz",
            "--batch",
            "8",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "host has no GPU clock to pin; leave out --gpu-freq",
        ));
    // --emc is a Jetson's.
    common::edgetune()
        .args([
            "tune",
            "--model",
            "yolov4-tiny",
            "--backend",
            "powercap",
            "--emc",
        ])
        .arg("--sysfs-root")
        .arg(&root)
        .args(["--workload-cmd", "true"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--emc"));
}

/// A tune killed with SIGKILL leaves its state file (the limits as found); the next run is
/// refused until `edgetune restore` puts them back, as on a board.
#[test]
fn after_sigkill_restore_puts_the_cpufreq_limits_back() {
    let (t, root) = fixture("host-rapl");
    let before = tree(&root);
    let state = root.join("var/lib/edgetune/restore.json");
    let slow = format!("sh -c 'sleep 0.3; {}'", workload(&root));
    let tune = |out: &str| {
        let mut c = common::std_edgetune();
        c.args([
            "tune",
            "-q",
            "--model",
            "yolov4-tiny",
            "--backend",
            "powercap",
        ])
        .arg("--sysfs-root")
        .arg(&root)
        .args(["--workload-cmd", &slow, "--inferences", "320", "--no-race"])
        .arg("--out")
        .arg(t.path().join(out));
        c
    };
    let mut child = tune("out")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(&state, "the state file");
    // After the baseline (at the limits as found), the search pins a clock (min = max): kill
    // it then. A file read mid-write is empty: not yet a pin.
    let policy = root.join("sys/devices/system/cpu/cpufreq/policy0");
    let limits =
        || ["scaling_min_freq", "scaling_max_freq"].map(|f| std::fs::read(policy.join(f)).unwrap());
    let found = ["scaling_min_freq", "scaling_max_freq"].map(|f| before[&policy.join(f)].clone());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < until {
        let [min, max] = limits();
        if !min.is_empty() && min == max && [min, max] != found {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(common::signal(child.id(), "-KILL"));
    child.wait().unwrap();
    assert!(state.exists());
    let pinned = limits();
    assert_ne!(pinned, found, "killed while pinned");
    let o = tune("out2").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("edgetune restore"));
    assert_eq!(limits(), pinned, "a refused run writes nothing");
    let o = common::edgetune()
        .args(["restore", "--sysfs-root"])
        .arg(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && stdout.contains("restored"),
        "{stdout}"
    );
    assert!(!state.exists());
    as_found_but_the_counters(&root, &before);
}

/// `edgetune restore` asks the snapshot whose it is; one naming a backend that keeps no state
/// file was not written by edgetune, and is refused as it is.
#[test]
fn restore_refuses_a_snapshot_of_a_backend_without_one() {
    let (_t, root) = fixture("host-rapl");
    let state = root.join("var/lib/edgetune/restore.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let body = r#"{"edgetune_version":"0.1.0","created":"2026-12-03T00:00:00+00:00","pid":1,"sysfs_root":"/","dt_model":"","entries":[],"backend":"sim"}"#;
    std::fs::write(&state, body).unwrap();
    let before = tree(&root);
    common::edgetune()
        .args(["restore", "--sysfs-root"])
        .arg(&root)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "names the sim backend, which keeps no state file",
        ));
    same(&before, &tree(&root));
}

/// Issue 26: `measure` pins the CPU clock on a host (and puts cpufreq back), `sweep` measures
/// each clock, and the fixture's workload makes 1.2 GHz the cheapest.
#[test]
fn measure_and_sweep_run_on_a_host() {
    let (t, root) = fixture("host-rapl");
    let before = tree(&root);
    let host = |cmd: &[&str]| -> serde_json::Value {
        let o = common::edgetune()
            .args(cmd)
            .args(["--model", "yolov4-tiny", "--backend", "powercap"])
            .arg("--sysfs-root")
            .arg(&root)
            .args(["--workload-cmd", &workload(&root)])
            .args(["--inferences", "320", "--json", "-q"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        as_found_but_the_counters(&root, &before);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let m = host(&["measure", "--cpu-freq", "1200000", "--batch", "64"]);
    let e = m["measurements"][0]["energy_j"].as_f64().unwrap();
    let want = 320.0 * 0.001 * 1.125 / 1.2 * (10.0 + 2.0 * 1.728) * 1.1;
    assert!((e - want).abs() / want < 1e-3, "{e} vs {want}");
    let out = t.path().join("sweep");
    let s = host(&["sweep", "--batch", "64", "--out", out.to_str().unwrap()]);
    assert_eq!(s["min"]["cpu_freq_khz"], 1200000, "{s}");
    assert!(s["grid"].as_array().unwrap().len() >= 3, "{s}");
}
