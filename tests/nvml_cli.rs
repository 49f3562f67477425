//! The nvml backend end to end on a simulated GPU (`EDGETUNE_FAKE_NVML`, the NVML seam): backend
//! choice, `sweep` and `tune` over batch sizes with real timing, clock locking and its reset,
//! `devices`, `restore`, and the errors. The real GPU is exercised on the GPU test machine.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;

/// A simulated H100 drawing 300 W, clocks 345/1410/1980 MHz, logging locks to `dir/nvml.log`.
fn fake(dir: &Path, root: bool) -> PathBuf {
    let spec = serde_json::json!({
        "gpus": [{
            "name": "NVIDIA H100 80GB HBM3",
            "power_w": 300.0,
            "step_ms": 20,
            "counter_start_mj": u64::MAX - 1000,
            "clocks_mhz": [345, 1410, 1980],
        }],
        "root": root,
        "log": dir.join("nvml.log"),
    });
    let p = dir.join("fake-nvml.json");
    std::fs::write(&p, spec.to_string()).unwrap();
    p
}

/// edgetune on the fake GPU, with its state files under `dir`.
fn std_cmd(fake: &Path, dir: &Path) -> std::process::Command {
    let mut c = common::std_edgetune();
    c.env("EDGETUNE_STATE_FILE", dir.join("state/restore.json"))
        .env("EDGETUNE_FAKE_NVML", fake);
    c
}

fn edgetune(fake: &Path, dir: &Path) -> Command {
    Command::from_std(std_cmd(fake, dir))
}

/// A workload whose time per inference falls with the batch size: 20 us + 200 us / batch.
const WORKLOAD: &str = "python3 -c 'import sys, time; b, n = int(sys.argv[1]), int(sys.argv[2]); print(\"EDGETUNE_BEGIN\", flush=True); time.sleep(n * (2e-5 + 2e-4 / b)); print(\"EDGETUNE_END\", flush=True)' {batch} {inferences}";

fn study<'a>(cmd: &'a mut Command, out: &Path) -> &'a mut Command {
    cmd.args([
        "-m",
        "resnet18",
        "--device",
        "gpu",
        "--batch-sizes",
        "1,4,16",
    ])
    .args([
        "--inferences",
        "320",
        "--warmup",
        "0",
        "--min-runs",
        "2",
        "--max-runs",
        "3",
    ])
    .args([
        "--min-window-s",
        "0.3",
        "--workload-cmd",
        WORKLOAD,
        "--json",
        "-q",
        "--out",
    ])
    .arg(out)
}

#[test]
fn sweep_and_tune_over_batch_sizes_agree_on_a_gpu() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), true);
    let o = study(edgetune(&f, t.path()).arg("sweep"), &t.path().join("sweep"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["backend"], "nvml");
    assert_eq!(s["device"], "gpu:0");
    let rows = s["grid"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        let (e, time) = (
            r["energy_j"].as_f64().unwrap(),
            r["time_s"].as_f64().unwrap(),
        );
        // 300 W over the window (a 20 ms counter step, spread over the repeats).
        assert!((e / time - 300.0).abs() < 30.0, "{r}");
        // Not locked without the flag: not a knob, so not in the output.
        assert!(r.get("gpu_freq_hz").is_none(), "{r}");
    }
    // Smaller batches cost more time per inference, so more energy.
    let e: Vec<f64> = rows
        .iter()
        .map(|r| r["energy_j"].as_f64().unwrap())
        .collect();
    assert!(e[0] > e[1] && e[1] > e[2], "{e:?}");
    assert_eq!(s["min"]["batch_size"], 16);

    let o = study(edgetune(&f, t.path()).arg("tune"), &t.path().join("tune"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["backend"], "nvml");
    assert_eq!(r["best"]["batch_size"], 16);
    let notes = r["notes"].to_string();
    assert!(notes.contains("not locked"), "{notes}");
    // No lock was ever taken, and the profile says there is nothing to set.
    assert!(!t.path().join("nvml.log").exists());
    let script = std::fs::read_to_string(t.path().join("tune/apply-profile.sh")).unwrap();
    assert!(
        script.contains("nothing to set. Run inference at batch 16"),
        "{script}"
    );
    assert!(!t.path().join("tune/nvpmodel.conf").exists());
}

#[test]
fn locked_clocks_are_tuned_and_reset_and_restore_undoes_a_killed_run() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), true);
    let o = study(edgetune(&f, t.path()).arg("tune"), &t.path().join("tune"))
        .args([
            "--allow-clock-control",
            "--strategy",
            "grid",
            "--fix",
            "batch=16",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["measurements"].as_array().unwrap().len(), 3);
    let log = std::fs::read_to_string(t.path().join("nvml.log")).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    for mhz in [345, 1410, 1980] {
        assert!(
            calls.contains(&format!("lock 0 {mhz} {mhz}").as_str()),
            "{log}"
        );
    }
    assert_eq!(*calls.last().unwrap(), "reset 0", "{log}");
    let script = std::fs::read_to_string(t.path().join("tune/apply-profile.sh")).unwrap();
    assert!(
        script.contains("nvidia-smi -i 0 --lock-gpu-clocks="),
        "{script}"
    );
    let record = t.path().join("state/nvml-restore.json");
    assert!(!record.exists());

    // A run killed with the clocks locked leaves its record: tune refuses, restore resets.
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    std::fs::write(
        &record,
        r#"{"gpu":0,"name":"NVIDIA H100 80GB HBM3","graphics_clock_mhz_at_start":1980}"#,
    )
    .unwrap();
    study(edgetune(&f, t.path()).arg("tune"), &t.path().join("again"))
        .arg("--allow-clock-control")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("edgetune restore"));
    edgetune(&f, t.path())
        .arg("restore")
        .assert()
        .success()
        .stdout(predicate::str::contains("reset the locked clocks of GPU 0"));
    assert!(!record.exists());
    let log = std::fs::read_to_string(t.path().join("nvml.log")).unwrap();
    assert_eq!(log.lines().last().unwrap(), "reset 0");
}

#[test]
fn devices_lists_the_gpus() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), true);
    edgetune(&f, t.path())
        .arg("devices")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "GPU gpu:0 NVIDIA H100 80GB HBM3 (backend nvml): 3 graphics clocks 345-1980 MHz",
        ))
        .stdout(predicate::str::contains("energy counter yes"));
    let o = edgetune(&f, t.path())
        .args(["devices", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["gpus"][0]["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(v["gpus"][0]["power_w"], 300.0);
}

#[test]
fn gpu_mistakes_exit_2_with_a_reason() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), true);
    let missing = t.path().join("no-such-spec.json");
    let cases: Vec<(PathBuf, Vec<&str>, &str)> = vec![
        (
            missing.clone(),
            vec!["tune", "-m", "resnet18", "--backend", "nvml"],
            "NVML could not be loaded",
        ),
        (
            missing,
            vec!["tune", "-m", "resnet18", "--device", "gpu"],
            "NVML could not be loaded",
        ),
        (
            f.clone(),
            vec![
                "tune",
                "-m",
                "resnet18",
                "--device",
                "gpu:3",
                "--workload-cmd",
                "true",
            ],
            "no NVIDIA GPU `gpu:3` here; NVML lists gpu:0 NVIDIA H100",
        ),
        (
            f.clone(),
            vec![
                "tune",
                "-m",
                "resnet18",
                "-d",
                "nano",
                "--allow-clock-control",
            ],
            "--backend nvml",
        ),
        (
            f.clone(),
            vec![
                "measure",
                "-m",
                "resnet18",
                "-d",
                "gpu",
                "--cpu-freq",
                "1",
                "--gpu-freq",
                "1",
                "-b",
                "8",
                "--workload-cmd",
                "true",
            ],
            "gpu:0 has no CPU clock to pin here; leave out --cpu-freq",
        ),
        (
            f.clone(),
            vec![
                "measure",
                "-m",
                "resnet18",
                "-d",
                "gpu",
                "--gpu-freq",
                "1410MHz",
                "-b",
                "8",
                "--workload-cmd",
                "true",
            ],
            "`edgetune baseline` measures them there",
        ),
    ];
    // tune on the fake GPU with a workload, and one mistake.
    let tune = [
        "tune",
        "-m",
        "resnet18",
        "-d",
        "gpu",
        "--workload-cmd",
        "true",
    ];
    let cases = cases.into_iter().chain(
        [
            (&["--min-window-s=-1"][..], "--min-window-s"),
            (&["--fix", "gpu=1410MHz"][..], "--allow-clock-control"),
        ]
        .map(|(extra, msg)| (f.clone(), [&tune[..], extra].concat(), msg)),
    );
    for (spec, args, msg) in cases {
        edgetune(&spec, t.path())
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
    }
}

/// Runs edgetune on the fake with `args`, sends SIGINT once `ready(stderr so far)` holds, and
/// returns the exit status and the whole stderr.
fn interrupted(
    f: &Path,
    dir: &Path,
    args: &[&str],
    ready: impl Fn(&str) -> bool,
) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = std_cmd(f, dir)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (e2, mut pipe) = (err.clone(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            e2.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let started = std::time::Instant::now();
    while !ready(&err.lock().unwrap()) {
        assert!(
            started.elapsed().as_secs() < 60,
            "never ready: {}",
            err.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stderr = err.lock().unwrap().clone();
    (status, stderr)
}

#[test]
fn sigint_with_locked_clocks_resets_them() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), true);
    let out = t.path().join("out");
    let log = t.path().join("nvml.log");
    let (status, stderr) = interrupted(
        &f,
        t.path(),
        &[
            "tune",
            "-m",
            "resnet18",
            "-d",
            "gpu",
            "--allow-clock-control",
            "--batch-sizes",
            "4",
            "--inferences",
            "320",
            "--warmup",
            "0",
            "--min-window-s",
            "0",
            "--workload-cmd",
            "sleep 0.2",
            "--out",
            out.to_str().unwrap(),
        ],
        |_| std::fs::read_to_string(&log).is_ok_and(|l| l.contains("lock")),
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log.lines().last().unwrap(), "reset 0", "{log}");
    assert!(!t.path().join("state/nvml-restore.json").exists());
}

#[test]
fn an_interrupted_sweep_keeps_what_it_measured() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), true);
    let out = t.path().join("sweep");
    let (status, stderr) = interrupted(
        &f,
        t.path(),
        &[
            "sweep",
            "-m",
            "resnet18",
            "-d",
            "gpu",
            "--batch-sizes",
            "1,2,4,8",
            "--inferences",
            "320",
            "--warmup",
            "0",
            "--min-runs",
            "2",
            "--max-runs",
            "2",
            "--min-window-s",
            "0",
            "--workload-cmd",
            "sleep 0.15",
            "--out",
            out.to_str().unwrap(),
        ],
        // Once the first configuration is in, during the second.
        |err| err.contains("1/4:"),
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let n = s["grid"].as_array().unwrap().len();
    assert!((1..4).contains(&n), "{n} rows");
    assert!(stderr.contains("they are in sweep.json"), "{stderr}");
}

/// Where NVML lists no GPU, `devices` says so instead of nothing.
#[test]
fn devices_says_when_there_is_no_nvidia_gpu() {
    let t = tempfile::tempdir().unwrap();
    let spec = t.path().join("none.json");
    std::fs::write(&spec, r#"{"gpus": []}"#).unwrap();
    edgetune(&spec, t.path())
        .arg("devices")
        .assert()
        .success()
        .stdout(predicate::str::contains("NVIDIA GPUs: none found"));
}

/// A workload whose time does not grow with its inference count (it ignores {inferences})
/// asks the screening for ~2^32 inferences to fill its window: that count is capped, not
/// wrapped to 0 (which divided by zero in the protocol), and its confirmation goes on at the
/// window its runs were measured in (it started each round from scratch: a tune that never
/// ended).
#[test]
fn a_workload_that_ignores_its_count_does_not_overflow_the_screening() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), false);
    let out = t.path().join("out");
    let o = edgetune(&f, t.path())
        .args([
            "tune",
            "-q",
            "-m",
            "resnet18",
            "-d",
            "gpu",
            "--batch-sizes",
            "1,4,16",
        ])
        .args([
            "--workload-cmd",
            "sleep 0.1",
            "--budget",
            "3",
            "--max-runs",
            "3",
            "--out",
        ])
        .arg(&out)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.join("report.json").exists());
}

/// Issue 26: `measure` locks a GPU's clock (with --allow-clock-control) and resets it; `baseline`
/// measures the default clocks at any batch sizes, for a model the catalogue lacks.
#[test]
fn measure_and_baseline_run_on_a_gpu() {
    let t = tempfile::tempdir().unwrap();
    let f = fake(t.path(), true);
    let quick = [
        "--workload-cmd",
        WORKLOAD,
        "--inferences",
        "320",
        "--warmup",
        "0",
        "--min-runs",
        "1",
        "--max-runs",
        "1",
        "--min-window-s",
        "0.1",
        "-q",
    ];
    let o = edgetune(&f, t.path())
        .args(["measure", "-m", "resnet18", "-d", "gpu", "-b", "1"])
        .args(["--gpu-freq", "1410MHz", "--allow-clock-control"])
        .args(quick)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("resnet18 on gpu:0 (GPU), GPU 1410.0 MHz"),
        "{out}"
    );
    let log = std::fs::read_to_string(t.path().join("nvml.log")).unwrap();
    let calls: Vec<&str> = log.lines().collect();
    assert!(calls.contains(&"lock 0 1410 1410"), "{log}");
    assert_eq!(*calls.last().unwrap(), "reset 0", "{log}");
    let o = edgetune(&f, t.path())
        // `--batch-sizes`, as tune and sweep name it, works here too.
        .args([
            "baseline",
            "-m",
            "my-detector",
            "-d",
            "gpu",
            "--batch-sizes",
            "1,3",
        ])
        .args(quick)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["model"], "my-detector");
    assert_eq!(r["backend"], "nvml");
    let m = r["measurements"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    // The workload's time per inference falls with the batch size (20 us + 200 us / batch).
    let per_inf = |i: usize| m[i]["time_s"].as_f64().unwrap() / 320.0;
    assert!(per_inf(0) > 1.5 * per_inf(1), "{m:?}");
}
