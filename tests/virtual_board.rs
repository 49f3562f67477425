//! The whole loop on a virtual Jetson: `edgetune emulate` keeps a sysfs tree alive (clocks follow
//! writes, INA3221 rails refresh on their own clock from the twin's power), and `edgetune tune
//! --backend jetson` drives it through the real backend with `emulate-infer` as its workload
//! command, poller thread and all.

use edgetune::catalog::Catalog;
use edgetune::device::FreqSetting;
use edgetune::twin::truth;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::emulator::{knobs, Emulator};

const TIME_SCALE: f64 = 0.05;
const INFERENCES: u32 = 320;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("edgetune")
}

fn cmd() -> Command {
    common::std_edgetune()
}

/// One small study: resnet18 at batch 8 with one knob fixed, few inferences and runs.
fn study_args(fix: &str, seed: &str, budget: &str) -> Vec<String> {
    let n = INFERENCES.to_string();
    [
        "tune",
        "-m",
        "resnet18",
        "--inferences",
        &n,
        "--warmup",
        "0",
        "--min-runs",
        "2",
        "--max-runs",
        "3",
        "--batch-sizes",
        "8",
        "--fix",
        fix,
        "--seed",
        seed,
        "--budget",
        budget,
        "--json",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The study on the virtual board under `root`, through the jetson backend.
fn tune_args(root: &Path, fix: &str, seed: &str, budget: &str) -> Vec<String> {
    let workload = format!(
        "{} emulate-infer --root {} --model {{model}} --batch {{batch}} --inferences {{inferences}}",
        bin().display(),
        root.display()
    );
    let mut v = study_args(fix, seed, budget);
    v.extend([
        "--backend".into(),
        "jetson".into(),
        "--poll-ms".into(),
        "10".into(),
        "--sysfs-root".into(),
        root.display().to_string(),
        "--workload-cmd".into(),
        workload,
    ]);
    v
}

fn setting(m: &Value) -> FreqSetting {
    FreqSetting::Pinned {
        cpu_freq_khz: m["cpu_freq_khz"].as_u64().unwrap(),
        gpu_freq_hz: m["gpu_freq_hz"].as_u64().unwrap(),
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    }
}

#[test]
fn tune_through_the_virtual_boards_files_agrees_with_the_twin_and_leaves_it_as_found() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("nano");
    let mut emu = Emulator::start("nano", &root, TIME_SCALE);
    let before = knobs(&root);
    let cat = Catalog::load(None).unwrap();
    let (board, model) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());

    let started = Instant::now();
    let o = cmd()
        .args(tune_args(&root, "cpu=1479MHz", "7", "8"))
        .arg("--out")
        .arg(t.path().join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["backend"], "jetson");
    // The report says the board is the virtual one, and that its figures are scaled.
    let notes = r["notes"].to_string();
    assert!(
        notes.contains("virtual Jetson") && notes.contains(&format!("time scale {TIME_SCALE}")),
        "{notes}"
    );
    // Where the figures are shown, they are the virtual board's, not a board's.
    assert_eq!(r["emulated"], true);
    let out = t.path().join("out");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Measured on edgetune's **virtual Jetson**"),
        "{md}"
    );
    let profile = std::fs::read_to_string(out.join("profile.toml")).unwrap();
    assert!(profile.contains("virtual Jetson") && !profile.contains("measured on the board"));
    // Energy measured through the rail files against the twin's, configuration by configuration.
    let mut worst: f64 = 0.0;
    for m in r["measurements"].as_array().unwrap() {
        let want = truth(board, model, &setting(m), 8, INFERENCES).energy_j * TIME_SCALE;
        let got = m["energy_j"].as_f64().unwrap();
        worst = worst.max((got / want - 1.0).abs());
    }
    let b = &r["baseline"];
    let want = truth(board, model, &FreqSetting::Dvfs, 8, INFERENCES).energy_j * TIME_SCALE;
    let dvfs_dev = (b["energy_j"].as_f64().unwrap() / want - 1.0).abs();
    eprintln!(
        "virtual board: worst pinned deviation {:.2} %, DVFS baseline {:.2} %, {:.1} s",
        worst * 100.0,
        dvfs_dev * 100.0,
        started.elapsed().as_secs_f64()
    );
    assert!(
        worst < 0.05,
        "pinned energies off the twin by up to {:.1} %",
        worst * 100.0
    );
    assert!(
        dvfs_dev < 0.05,
        "DVFS baseline off the twin by {:.1} %",
        dvfs_dev * 100.0
    );

    // The same study on the twin itself, noiseless: same recommendation, or as good within 3 %.
    let o = cmd()
        .args(study_args("cpu=1479MHz", "7", "8"))
        .args(["-d", "nano", "--backend", "sim", "--noise", "off", "--out"])
        .arg(t.path().join("sim"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = |v: &Value| truth(board, model, &setting(&v["best"]), 8, INFERENCES).energy_j;
    let gap = e(&r) / e(&s) - 1.0;
    eprintln!(
        "virtual board recommends GPU {} Hz, the noiseless twin {} Hz: {:+.2} % in true energy",
        r["best"]["gpu_freq_hz"],
        s["best"]["gpu_freq_hz"],
        gap * 100.0
    );
    assert!(
        r["best"]["gpu_freq_hz"] == s["best"]["gpu_freq_hz"] || gap.abs() <= 0.03,
        "virtual board recommends {} Hz, the twin {} Hz ({:.1} % apart)",
        r["best"]["gpu_freq_hz"],
        s["best"]["gpu_freq_hz"],
        gap * 100.0
    );
    assert_eq!(knobs(&root), before);
    assert!(!root.join("var/lib/edgetune/restore.json").exists());
    assert!(
        emu.stop().success(),
        "the emulator stops cleanly on SIGTERM"
    );
}

#[test]
fn sigint_halfway_through_a_study_on_the_virtual_board_restores_every_file() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("nx");
    let mut emu = Emulator::start("xavier-nx", &root, TIME_SCALE);
    let before = knobs(&root);
    let out = t.path().join("out");
    let mut child = cmd()
        .args(tune_args(&root, "cpu=1907.2MHz", "3", "20"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = out.join("journal.jsonl");
    let t0 = Instant::now();
    while std::fs::read_to_string(&journal).map_or(0, |j| j.lines().count()) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(40), "no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(knobs(&root), before, "the board is pinned mid-study");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(knobs(&root), before);
    assert!(!root.join("var/lib/edgetune/restore.json").exists());
    assert!(
        emu.stop().success(),
        "the emulator stops cleanly on SIGTERM"
    );
}

/// Issue 18, case 1, on the virtual board: a tune pinning one configuration after another
/// (workload `true`, so pins come fast) gets SIGINT, then a second SIGINT 0-4 ms later, at
/// seeded moments; every file edgetune may write must be as found, or restorable by `restore`.
/// `EDGETUNE_SIGNAL_TRIALS` trials (default 4).
#[test]
fn double_signals_on_the_virtual_board_leave_every_file_as_found_or_restorable() {
    let trials: usize = std::env::var("EDGETUNE_SIGNAL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("nano");
    let _emu = Emulator::start("nano", &root, TIME_SCALE);
    let before = knobs(&root);
    let state = root.join("var/lib/edgetune/restore.json");
    let mut next = common::seeded(0x51_6e41);
    let mut restored = 0;
    for trial in 0..trials {
        let out = t.path().join(format!("out-{trial}"));
        let args: Vec<String> = [
            "tune",
            "-m",
            "resnet18",
            "--inferences",
            "32",
            "--warmup",
            "0",
            "--min-runs",
            "1",
            "--max-runs",
            "1",
            "--batch-sizes",
            "8",
            "--strategy",
            "random",
            "--budget",
            "100",
            "-q",
            "--backend",
            "jetson",
            "--poll-ms",
            "5",
            "--workload-cmd",
            "true",
        ]
        .map(String::from)
        .into_iter()
        .chain(["--sysfs-root".into(), root.display().to_string()])
        .chain(["--out".into(), out.display().to_string()])
        .collect();
        let mut child = cmd()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        common::wait_for(&state, &format!("trial {trial}: the first pin"));
        std::thread::sleep(Duration::from_micros(next() % 30_000));
        assert!(common::signal(child.id(), "-INT"));
        std::thread::sleep(Duration::from_micros(next() % 4_000));
        // The second may find the process gone already.
        common::signal(child.id(), "-INT");
        assert_eq!(child.wait().unwrap().code(), Some(130), "trial {trial}");
        if state.exists() {
            restored += 1;
            let ok = cmd()
                .args(["restore", "--sysfs-root"])
                .arg(&root)
                .status()
                .unwrap();
            assert!(ok.success(), "trial {trial}");
        }
        assert_eq!(knobs(&root), before, "trial {trial}");
    }
    eprintln!("{trials} trials on the virtual board, {restored} needed `restore`");
}

/// Issue 26: `measure`, `baseline` and `sweep` on the virtual board through the jetson backend:
/// the pinned and DVFS energies agree with the twin's, the sweep of the GPU clocks at one CPU
/// clock finds the twin's cheapest step (or one within 3 % of it), and every knob is as found.
#[test]
fn measure_baseline_and_sweep_on_the_virtual_board_agree_with_the_twin() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("nano");
    let mut emu = Emulator::start("nano", &root, TIME_SCALE);
    let before = knobs(&root);
    let cat = Catalog::load(None).unwrap();
    let (board, model) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
    let run = |args: &[&str]| -> Value {
        let mut v = tune_args(&root, "cpu=1479MHz", "7", "8");
        // The study's options but for tune's own: the board, the workload, the protocol.
        v.drain(..1);
        for flag in ["--batch-sizes", "--fix", "--seed", "--budget", "--min-runs"] {
            let i = v.iter().position(|a| a == flag).unwrap();
            v.drain(i..i + 2);
        }
        v.extend(["--min-runs".into(), "1".into()]);
        let o = cmd().args(args).args(&v).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(knobs(&root), before, "{args:?} left the board changed");
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let pinned = FreqSetting::Pinned {
        cpu_freq_khz: 1_479_000,
        gpu_freq_hz: 614_400_000,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    };
    let off = |got: &Value, setting: &FreqSetting| {
        let want = truth(board, model, setting, 8, INFERENCES).energy_j * TIME_SCALE;
        (got["energy_j"].as_f64().unwrap() / want - 1.0).abs()
    };
    let m = run(&[
        "measure",
        "--cpu-freq",
        "1479MHz",
        "--gpu-freq",
        "614.4MHz",
        "-b",
        "8",
    ]);
    assert_eq!(m["backend"], "jetson");
    let dev = off(&m["measurements"][0], &pinned);
    assert!(dev < 0.05, "measure off the twin by {:.1} %", dev * 100.0);
    let b = run(&["baseline", "-b", "8"]);
    let dev = off(&b["measurements"][0], &FreqSetting::Dvfs);
    assert!(dev < 0.05, "baseline off the twin by {:.1} %", dev * 100.0);
    let out = t.path().join("sweep");
    let s = run(&[
        "sweep",
        "--batch",
        "8",
        "--fix",
        "cpu=1479MHz",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(s["grid"].as_array().unwrap().len(), 12);
    let e = |gpu_freq_hz: u64| {
        let at = FreqSetting::Pinned {
            cpu_freq_khz: 1_479_000,
            gpu_freq_hz,
            emc_freq_hz: None,
            cpu_cores: None,
            power_mode: None,
        };
        truth(board, model, &at, 8, INFERENCES).energy_j
    };
    let cheapest = board
        .gpu
        .frequencies_hz
        .iter()
        .map(|f| e(*f))
        .fold(f64::INFINITY, f64::min);
    let chosen = e(s["min"]["gpu_freq_hz"].as_u64().unwrap());
    assert!(
        chosen <= cheapest * 1.03,
        "sweep's minimum {chosen} J vs the twin's {cheapest} J"
    );
    assert!(emu.stop().success());
}

/// Issue 26: `tune -m yolov4-tiny -d <orin>` on each Orin's virtual board (JetPack 6 paths,
/// hwmon rails; AGX Orin's power the sum of its rails): the energies read through the rail files
/// agree with the twin's, and every knob is as found.
#[test]
fn tune_on_each_orin_virtual_board_agrees_with_the_twin_and_leaves_it_as_found() {
    let cat = Catalog::load(None).unwrap();
    let model = cat.model("yolov4-tiny").unwrap();
    for id in ["orin-nano", "orin-nx", "agx-orin"] {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join(id);
        let mut emu = Emulator::start(id, &root, TIME_SCALE);
        let before = knobs(&root);
        let board = cat.board(id).unwrap();
        let top_cpu = format!("cpu_freq_khz={}", board.cpu.frequencies_khz.last().unwrap());
        let mut args = tune_args(&root, &top_cpu, "3", "2");
        // An Orin runs YOLOv4-tiny about ten times as fast as the Nano runs ResNet-18: ten times
        // the inferences keep each window many sensor refreshes long.
        (args[2], args[4]) = ("yolov4-tiny".into(), (10 * INFERENCES).to_string());
        let o = cmd()
            .args(&args)
            .args(["-d", id, "--out"])
            .arg(t.path().join("out"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (r["device"].as_str(), r["emulated"].as_bool()),
            (Some(id), Some(true))
        );
        let mut worst: f64 = 0.0;
        for m in r["measurements"].as_array().unwrap() {
            let want = truth(board, model, &setting(m), 8, 10 * INFERENCES).energy_j * TIME_SCALE;
            let got = m["energy_j"].as_f64().unwrap();
            assert!(
                (got / want - 1.0).abs() < 0.05,
                "{id}: {got} J, the twin {want} J"
            );
            worst = worst.max((got / want - 1.0).abs());
        }
        eprintln!(
            "virtual {id}: worst deviation from the twin {:.2} %",
            worst * 100.0
        );
        assert_eq!(knobs(&root), before, "{id}");
        assert!(emu.stop().success());
    }
}
