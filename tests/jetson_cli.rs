//! End-to-end tests of the jetson backend on copies of the sysfs fixture trees: a real
//! `edgetune` process drives the files, runs a workload command, is interrupted or killed, and
//! the board must end as it was found.

use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;
use common::edgetune;
use common::sysfs_tree::{fixture, fixture_dir, same, tree};
use common::wait_for;
use std::process::Stdio;
use std::time::Duration;

/// `edgetune restore` on `root`, then the tree must be as it was.
#[track_caller]
fn restore_and_check(root: &Path, before: &std::collections::BTreeMap<PathBuf, Vec<u8>>) {
    edgetune()
        .args(["restore", "--sysfs-root"])
        .arg(root)
        .assert()
        .success()
        .stdout(predicate::str::contains("restored"));
    same(&tree(root), before);
}

/// A JetPack 6 tree whose board no search-spaces file describes (a Thor's name on the Orin
/// Nano's layout).
fn unknown_board() -> (tempfile::TempDir, PathBuf) {
    let (t, root) = fixture("orin-nano-jp6");
    std::fs::write(
        root.join("proc/device-tree/model"),
        "NVIDIA Jetson AGX Thor Developer Kit\0",
    )
    .unwrap();
    (t, root)
}

fn state(root: &Path) -> PathBuf {
    root.join("var/lib/edgetune/restore.json")
}

fn tune_args(root: &Path, out: &Path, workload: &str, budget: &str) -> Vec<String> {
    let mut v: Vec<String> = ["tune", "-m", "resnet18"].map(String::from).to_vec();
    v.extend(quick_with(root, workload));
    v.extend([
        "--budget".into(),
        budget.into(),
        "--strategy".into(),
        "random".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    v
}

#[test]
fn devices_prints_the_nanos_knobs_and_rails() {
    edgetune()
        .args(["devices", "--sysfs-root"])
        .arg(fixture_dir("nano-jp4"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("NVIDIA Jetson Nano Developer Kit")
                .and(predicate::str::contains("JetPack 4"))
                .and(predicate::str::contains(
                    "policy0 (cpus 0,1,2,3): governor schedutil",
                ))
                .and(predicate::str::contains(
                    "GPU 57000000.gpu (gpu): governor nvhost_podgov",
                ))
                .and(predicate::str::contains("POM_5V_IN 4798 mW"))
                .and(predicate::str::contains("board power = POM_5V_IN")),
        );
    let o = edgetune()
        .args(["devices", "--json", "--sysfs-root"])
        .arg(fixture_dir("xavier-nx-jp5"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["this_machine"];
    assert_eq!(m["board"], "xavier-nx");
    assert_eq!(m["cpu"].as_array().unwrap().len(), 3);
    assert_eq!(m["rails"][0]["name"], "VDD_IN");
    assert!((m["total_power_mw"].as_f64().unwrap() - 4361.472).abs() < 1e-6);
    let nx = v["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "xavier-nx")
        .unwrap();
    assert_eq!(nx["backends"], serde_json::json!(["jetson", "sim"]));
    // An explicit root that is not a board is an error, not a silent catalogue listing.
    let empty = tempfile::tempdir().unwrap();
    edgetune()
        .args(["devices", "--sysfs-root"])
        .arg(empty.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("device-tree/model"));
}

#[test]
fn tune_on_a_fixture_board_measures_the_rails_and_leaves_it_as_found() {
    let (t, root) = fixture("nano-jp4");
    // A hot CPU zone (issue 26: board temperature recorded so throttling shows).
    std::fs::write(root.join("sys/class/thermal/thermal_zone1/temp"), "85000\n").unwrap();
    let before = tree(&root);
    let out = t.path().join("out");
    edgetune()
        .args(tune_args(&root, &out, "sleep 0.15", "3"))
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "measuring on this NVIDIA Jetson Nano",
        ))
        .stdout(predicate::str::contains("measured on the board"));
    same(&tree(&root), &before);
    assert!(!state(&root).exists());
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["backend"], "jetson");
    let m = &r["measurements"][0];
    // The fixture's POM_5V_IN reads 4798 mW throughout: energy = 4.798 W x window.
    let rails = &m["rail_energy_j"];
    let e_in = rails["POM_5V_IN"].as_f64().unwrap();
    assert!((e_in - m["energy_j"].as_f64().unwrap()).abs() < 1e-9);
    assert!((rails["POM_5V_GPU"].as_f64().unwrap() / e_in - 1851.0 / 4798.0).abs() < 1e-9);
    assert!(m["time_s"].as_f64().unwrap() >= 0.15);
    assert!(r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("cur_freq")));
    let notes = r["notes"].to_string();
    assert!(
        notes.contains("thermal zones): AO-therm 29.5-29.5 C, CPU-therm 85.0-85.0 C")
            && notes.contains("the board ran hot"),
        "{notes}"
    );
    // The snapshot taken before the first write is kept with the reports.
    let snap: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("restore.json")).unwrap()).unwrap();
    assert!(!snap["entries"].as_array().unwrap().is_empty());
}

/// Issue 26: the three Orin boards on their JetPack 6 fixture trees: `tune -m yolov4-tiny -d
/// <board>` finds the board, measures through its hwmon rails (AGX Orin's summed over both
/// ina3221s) and leaves every file as it was found.
#[test]
fn tune_runs_on_each_orin_fixture_and_leaves_it_as_found() {
    for (tree_name, id, name, power_w) in [
        (
            "orin-nano-jp6",
            "orin-nano",
            "NVIDIA Jetson Orin Nano",
            2.957,
        ),
        (
            "orin-nano-jp5",
            "orin-nano",
            "NVIDIA Jetson Orin Nano",
            2.957,
        ),
        ("orin-nx-jp6", "orin-nx", "NVIDIA Jetson Orin NX", 9.475),
        ("agx-orin-jp6", "agx-orin", "NVIDIA Jetson AGX Orin", 14.211),
    ] {
        let (t, root) = fixture(tree_name);
        let before = tree(&root);
        let out = t.path().join("out");
        let mut args: Vec<String> = ["tune", "-m", "yolov4-tiny", "-d", id]
            .map(String::from)
            .to_vec();
        args.extend(
            tune_args(&root, &out, "sleep 0.05", "2")
                .into_iter()
                .skip(3),
        );
        edgetune()
            .args(&args)
            .assert()
            .success()
            .stderr(predicate::str::contains(format!(
                "measuring on this {name}"
            )));
        same(&tree(&root), &before);
        assert!(!state(&root).exists());
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(r["backend"], "jetson");
        assert_eq!(r["device"], id);
        let m = &r["measurements"][0];
        let power = m["energy_j"].as_f64().unwrap() / m["time_s"].as_f64().unwrap();
        assert!((power / power_w - 1.0).abs() < 0.01, "{id}: {power} W");
        let notes = r["notes"].to_string();
        assert!(!notes.contains("the catalogue expects"), "{id}: {notes}");
    }
}

/// Issue 26: at a rate the protocol measures an idle window at each configuration's clocks on
/// the board itself (the poller runs on while the workload waits) and counts it in the energy.
#[test]
fn a_rate_measures_the_idle_power_on_the_board_and_leaves_it_as_found() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let out = t.path().join("out");
    edgetune()
        .args(tune_args(&root, &out, "sleep 0.15", "2"))
        .args(["--rate", "20", "--idle-window-s", "0.3"])
        .assert()
        .success()
        .stdout(predicate::str::contains("at 20 inferences/s"));
    same(&tree(&root), &before);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // The fixture's POM_5V_IN reads 4798 mW throughout, busy or idle.
    let a = &r["at_rate"];
    let idle_w = a["best_idle_power_w"].as_f64().unwrap();
    assert!((idle_w - 4.798).abs() < 0.05, "{idle_w}");
    let (e, busy_s) = (
        r["best"]["energy_j"].as_f64().unwrap(),
        r["best"]["time_s"].as_f64().unwrap(),
    );
    // Ten inferences at 20 per second arrive over 0.5 s; the sleep-0.15 workload keeps up.
    let expected = e + idle_w * (0.5 - busy_s);
    assert!((a["best_energy_j"].as_f64().unwrap() - expected).abs() < 1e-9);
    assert!(a["baseline_idle_power_w"].as_f64().unwrap() > 4.0);
}

#[test]
fn emc_adds_the_memory_clock_as_a_knob_and_restores_it() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let out = t.path().join("out");
    let mut args = tune_args(&root, &out, "true", "4");
    args.push("--emc".into());
    edgetune()
        .args(&args)
        .assert()
        .success()
        .stdout(predicate::str::contains("memory"));
    same(&tree(&root), &before);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // 15 CPU x 12 GPU x 5 batch sizes x 7 memory rates.
    assert_eq!(r["grid_size"], 15 * 12 * 5 * 7);
    assert!(r["best"]["emc_freq_hz"].as_u64().is_some());
    let profile = std::fs::read_to_string(out.join("profile.toml")).unwrap();
    assert!(profile.contains("emc_freq_hz"));
    let sh = std::fs::read_to_string(out.join("apply-profile.sh")).unwrap();
    assert!(sh.contains("override.emc"));
    // apply takes the memory clock from the profile; restore releases it.
    edgetune()
        .args(["apply", "--sysfs-root"])
        .arg(&root)
        .arg(out.join("profile.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("memory"));
    let flag = root.join("sys/kernel/debug/clk/override.emc/clk_state");
    assert_eq!(std::fs::read_to_string(&flag).unwrap(), "1\n");
    restore_and_check(&root, &before);
}

#[test]
fn a_workload_that_fails_at_one_configuration_does_not_stop_the_study() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let out = t.path().join("out");
    // Every batch size at one clock pair; batch 16 "runs out of memory".
    let mut args = tune_args(
        &root,
        &out,
        "sh -c 'test {batch} -ne 16 || { echo CUDA out of memory at batch {batch} >&2; exit 3; }'",
        "5",
    );
    args.extend(["--fix", "cpu=921.6MHz", "--fix", "gpu=614.4MHz"].map(String::from));
    edgetune()
        .args(&args)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "1 configuration could not be measured",
        ));
    same(&tree(&root), &before);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["measurements"].as_array().unwrap().len(), 4);
    assert_eq!(r["failed"][0]["batch_size"], 16);
    assert!(r["failed"][0]["error"]
        .as_str()
        .unwrap()
        .contains("CUDA out of memory at batch 16"));
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"type\":\"failed\""));
    // A workload that works once (the baseline) and then breaks: three failures in a row stop
    // the study, and with nothing measured it exits 1.
    let out2 = t.path().join("out2");
    let counter = t.path().join("calls");
    std::fs::write(&counter, "0").unwrap();
    let once = format!(
        "sh -c 'n=$(cat {c}); echo $((n+1)) > {c}; test $n -lt 1'",
        c = counter.display()
    );
    let args = tune_args(&root, &out2, &once, "20");
    edgetune()
        .args(&args)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "failed at every configuration tried",
        ));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["failed"].as_array().unwrap().len(), 3);
    assert!(r["stop_reason"]
        .as_str()
        .unwrap()
        .contains("3 configurations in a row"));
    same(&tree(&root), &before);
}

#[test]
fn a_failing_workload_stops_the_study_keeps_the_journal_and_restores() {
    let (t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let out = t.path().join("out");
    edgetune()
        .args(tune_args(
            &root,
            &out,
            "sh -c 'echo model file missing >&2; exit 4'",
            "3",
        ))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("model file missing"));
    same(&tree(&root), &before);
    assert!(out.join("journal.jsonl").exists());
}

fn spawn_tune(root: &Path, out: &Path) -> std::process::Child {
    common::std_edgetune()
        .args(tune_args(root, out, "sleep 0.3", "50"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, sig: &str) {
    assert!(common::signal(child.id(), sig));
}

#[test]
fn sigint_sigterm_and_sighup_restore_the_board_and_exit_130() {
    for sig in ["-INT", "-TERM", "-HUP"] {
        let (t, root) = fixture("nano-jp4");
        let before = tree(&root);
        let out = t.path().join("out");
        let child = spawn_tune(&root, &out);
        // The state file appears just before the first write; let a few runs go by.
        wait_for(&state(&root), "the state file");
        std::thread::sleep(Duration::from_millis(700));
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{sig}: {err}");
        assert!(err.contains("--resume"), "{sig}: {err}");
        // A journal never keeps what runs or where it writes: the hint gives them again.
        assert!(
            err.contains("--workload-cmd 'sleep 0.3'")
                && err.contains(&format!("--sysfs-root {}", root.display())),
            "{sig}: {err}"
        );
        same(&tree(&root), &before);
        assert!(!state(&root).exists(), "{sig}");
        // What was measured is kept.
        let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
        assert!(journal.lines().count() >= 2, "{sig}: {journal}");
    }
}

#[test]
fn after_sigkill_tune_refuses_until_restore_puts_the_board_back() {
    let (t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let mut child = spawn_tune(&root, &t.path().join("out"));
    wait_for(&state(&root), "the state file");
    std::thread::sleep(Duration::from_millis(400));
    signal(&child, "-KILL");
    child.wait().unwrap();
    assert!(state(&root).exists());
    let pinned = tree(&root);
    assert_ne!(pinned.len(), 0);
    edgetune()
        .args(tune_args(&root, &t.path().join("out2"), "true", "2"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("edgetune restore")
                .and(predicate::str::contains("restore.json")),
        );
    assert_eq!(tree(&root), pinned, "a refused run writes nothing");
    assert!(
        !t.path().join("out2").exists(),
        "a refused run leaves no output folder (and no journal) behind"
    );
    restore_and_check(&root, &before);
    edgetune()
        .args(["restore", "--sysfs-root"])
        .arg(&root)
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to restore"));
}

#[test]
fn apply_pins_a_profile_and_restore_undoes_it() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let profile = t.path().join("profile.toml");
    let write = |board: &str, cpu: u64, gpu: u64| {
        std::fs::write(
            &profile,
            format!(
                "[profile]\nboard = \"{board}\"\nmodel = \"resnet18\"\nbackend = \"sim\"\ncpu_freq_khz = {cpu}\ngpu_freq_hz = {gpu}\nbatch_size = 8\nenergy_j = 100.0\ninferences = 3200\nsaving_pct = 10.0\n"
            ),
        )
        .unwrap();
    };
    // A frequency the board does not list: refused before anything is written.
    write("nano", 1_500_000, 614_400_000);
    edgetune()
        .args(["apply", "--sysfs-root"])
        .arg(&root)
        .arg(&profile)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1500000"));
    same(&tree(&root), &before);
    write("xavier-nx", 1_190_400, 510_000_000);
    edgetune()
        .args(["apply", "--sysfs-root"])
        .arg(&root)
        .arg(&profile)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("for board `xavier-nx`"));
    write("nano", 921_600, 614_400_000);
    for _ in 0..2 {
        edgetune()
            .args(["apply", "--sysfs-root"])
            .arg(&root)
            .arg(&profile)
            .assert()
            .success()
            .stdout(predicate::str::contains("edgetune restore"));
    }
    let g = root.join("sys/devices/57000000.gpu/devfreq/57000000.gpu");
    assert_eq!(
        std::fs::read_to_string(g.join("min_freq")).unwrap(),
        "614400000\n"
    );
    assert!(state(&root).exists());
    // Applied twice, the snapshot still holds the state from before the first apply.
    restore_and_check(&root, &before);
}

#[test]
fn jetson_input_errors_exit_2_with_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let (t, orin) = unknown_board();
    let (_t2, nano) = fixture("nano-jp4");
    let (_t3, nodebug) = fixture("nano-jp4");
    std::fs::remove_dir_all(nodebug.join("sys/kernel")).unwrap();
    let [empty, orin, nano_s, nodebug, o1, nope] = [
        empty.path().to_path_buf(),
        orin,
        nano.clone(),
        nodebug,
        t.path().join("o1"),
        t.path().join("nope.toml"),
    ]
    .map(|p| p.display().to_string());
    // `tune -m resnet18` followed by each case's words.
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--backend",
                "jetson",
                "--workload-cmd",
                "true",
                "--sysfs-root",
                &empty,
            ],
            "not a Jetson",
        ),
        (
            &[
                "--backend",
                "jetson",
                "--workload-cmd",
                "true",
                "--sysfs-root",
                &orin,
            ],
            "matches no search-spaces file",
        ),
        // Without a workload: the built-in model with the torch feature (a file that does not
        // load stops it before the board is touched), else a pointer to --workload-cmd.
        if cfg!(feature = "torch") {
            (
                &["--sysfs-root", &nano_s, "--torchscript", "/nonexistent.pt"],
                "no such file",
            )
        } else {
            (&["--sysfs-root", &nano_s], "--workload-cmd")
        },
        (
            &[
                "-d",
                "xavier-nx",
                "--workload-cmd",
                "true",
                "--sysfs-root",
                &nano_s,
            ],
            "this board is the NVIDIA Jetson Nano",
        ),
        (
            &[
                "--workload-cmd",
                "run {gpu}",
                "--sysfs-root",
                &nano_s,
                "-o",
                &o1,
            ],
            "unknown placeholder",
        ),
        (
            &[
                "--workload-cmd",
                "true",
                "--workload-timeout=-1",
                "--sysfs-root",
                &nano_s,
            ],
            "--workload-timeout",
        ),
        (
            &["-d", "nano", "--backend", "sim", "--workload-cmd", "true"],
            "--backend jetson",
        ),
        (&["-d", "nano", "--emc"], "memory-clock control"),
        (
            &["--emc", "--workload-cmd", "true", "--sysfs-root", &nodebug],
            "debugfs",
        ),
    ];
    let before = tree(&nano);
    for (words, msg) in cases {
        edgetune()
            .args(["tune", "-m", "resnet18"])
            .args(*words)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*msg).and(predicate::str::contains("panicked").not()));
    }
    edgetune()
        .args(["apply", &nope, "--sysfs-root", &nano_s])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read the profile"));
    same(&tree(&nano), &before);
}

/// Issue 18, case 2: one owner per board. While a tune measures (from its DVFS baseline on,
/// before any snapshot exists), a second tune, `apply` and `restore` are refused with exit 2
/// and the owner's pid; `restore --force` is the way round for a stuck owner.
#[test]
fn a_board_has_one_owner_at_a_time() {
    let (t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let lock = root.join("var/lib/edgetune/restore.lock");
    let mut child = spawn_tune(&root, &t.path().join("out"));
    wait_for(&lock, "the board's lock");
    let busy = |args: Vec<String>| {
        let o = edgetune().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("in use") && err.contains(&format!("pid {}", child.id())),
            "{err}"
        );
        err.to_string()
    };
    busy(tune_args(&root, &t.path().join("out2"), "true", "2"));
    let profile = t.path().join("profile.toml");
    std::fs::write(
        &profile,
        "[profile]\nboard = \"xavier-nx\"\nmodel = \"resnet18\"\nbackend = \"sim\"\ncpu_freq_khz = 1190400\ngpu_freq_hz = 510000000\nbatch_size = 8\nenergy_j = 100.0\ninferences = 3200\n",
    )
    .unwrap();
    let root_s = root.display().to_string();
    busy(vec![
        "apply".into(),
        "--sysfs-root".into(),
        root_s.clone(),
        profile.display().to_string(),
    ]);
    let err = busy(vec!["restore".into(), "--sysfs-root".into(), root_s]);
    assert!(err.contains("--force"), "{err}");
    signal(&child, "-INT");
    assert_eq!(child.wait().unwrap().code(), Some(130));
    same(&tree(&root), &before);
    assert!(!state(&root).exists());
}

/// Issue 18, case 1, as processes: a tune that pins one configuration after another gets
/// SIGINT, then a second SIGINT 0-4 ms later, at seeded moments; the board must end as found,
/// or with a snapshot that `restore` brings back. `EDGETUNE_SIGNAL_TRIALS` trials (default 6).
#[test]
fn double_signals_at_seeded_moments_leave_the_board_as_found_or_restorable() {
    let trials: usize = std::env::var("EDGETUNE_SIGNAL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let (t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let mut next = common::seeded(0xd0_0b1e);
    let mut left_a_snapshot = 0;
    for trial in 0..trials {
        let out = t.path().join(format!("out-{trial}"));
        let mut child = common::std_edgetune()
            .args(tune_args(&root, &out, "true", "200"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&state(&root), "the first pin");
        std::thread::sleep(Duration::from_micros(next() % 30_000));
        signal(&child, "-INT");
        std::thread::sleep(Duration::from_micros(next() % 4_000));
        // The second may find the process gone already.
        common::signal(child.id(), "-INT");
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "trial {trial}");
        if state(&root).exists() {
            left_a_snapshot += 1;
            restore_and_check(&root, &before);
        } else {
            same(&tree(&root), &before);
        }
    }
    eprintln!("{trials} trials, {left_a_snapshot} left a snapshot that restore brought back");
}

/// Issue 15: on a board no search-spaces file describes, the default backend says what is
/// missing too, not "no Jetson detected".
#[test]
fn an_unknown_board_is_explained_whatever_the_backend() {
    let (_t, root) = unknown_board();
    for backend in ["auto", "jetson"] {
        edgetune()
            .args([
                "tune",
                "-m",
                "resnet18",
                "--backend",
                backend,
                "--sysfs-root",
            ])
            .arg(&root)
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains("matches no search-spaces file")
                    .and(predicate::str::contains("no Jetson detected").not()),
            );
    }
}

/// Issue 25, case 3: edgetune never writes through a link. A `restore.lock` that links to
/// another file is refused (exit 2, the other file untouched, the board as found), and the
/// reports a `--resume DIR` writes replace links placed in DIR instead of writing through them.
#[test]
fn edgetune_never_writes_through_a_link() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let victim = t.path().join("victim");
    std::fs::write(&victim, "mine").unwrap();
    let lock = root.join("var/lib/edgetune/restore.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let out = t.path().join("out");
    let o = edgetune()
        .args(tune_args(&root, &out, "true", "2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine");
    std::fs::remove_file(&lock).unwrap();
    same(&tree(&root), &before);
    // A finished study's folder with links where its reports go, resumed.
    let o = edgetune()
        .args(tune_args(&root, &out, "true", "2"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in [
        "report.md",
        "report.json",
        "energy_vs_gpu.svg",
        "profile.toml",
    ] {
        let p = out.join(name);
        if p.exists() {
            std::fs::remove_file(&p).unwrap();
        }
        std::os::unix::fs::symlink(&victim, &p).unwrap();
    }
    let o = edgetune()
        .arg("tune")
        .arg("--resume")
        .arg(&out)
        .args(["--workload-cmd", "true", "--sysfs-root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine");
    let md = out.join("report.md");
    assert!(!md.symlink_metadata().unwrap().file_type().is_symlink());
}

/// The protocol's shortest settings on a fixture board, with the workload `sleep 0.1`.
fn quick(root: &Path) -> Vec<String> {
    quick_with(root, "sleep 0.1")
}

/// The protocol's shortest settings on the fixture board under `root`, running `workload`.
fn quick_with(root: &Path, workload: &str) -> Vec<String> {
    [
        "--workload-cmd",
        workload,
        "--inferences",
        "10",
        "--warmup",
        "0",
        "--min-runs",
        "1",
        "--max-runs",
        "1",
        "--poll-ms",
        "20",
        "--sysfs-root",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([root.display().to_string()])
    .collect()
}

/// Issue 26: `measure`, `baseline` and `sweep` on a board, through the same protocol and
/// restore as `tune`; a model the catalogue lacks and batch 1 run on it (the user brings the
/// workload), and the board is as found after each.
#[test]
fn measure_baseline_and_sweep_run_on_a_fixture_board_with_any_model_and_batch() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let json = |args: &[&str]| -> Value {
        let o = edgetune()
            .args(args)
            .args(quick(&root))
            .args(["--json", "-q"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {err}");
        same(&tree(&root), &before);
        assert!(!state(&root).exists());
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let pinned = [
        "measure",
        "-m",
        "yolov8n",
        "--cpu-freq",
        "1479000",
        "--gpu-freq",
        "921600000",
        "-b",
        "1",
    ];
    let m = json(&pinned);
    assert_eq!(m["backend"], "jetson");
    assert_eq!(m["model"], "yolov8n");
    let row = &m["measurements"][0];
    assert_eq!(row["batch_size"], 1);
    // The fixture's POM_5V_IN reads 4798 mW throughout.
    let power_w = row["energy_j"].as_f64().unwrap() / row["time_s"].as_f64().unwrap();
    assert!((power_w - 4.798).abs() < 1e-6, "{power_w}");
    let b = json(&["baseline", "-m", "yolov8n", "-b", "1,2"]);
    let batches: Vec<u64> = b["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["batch_size"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 2]);
    let out = t.path().join("sweep");
    let out_s = out.display().to_string();
    let s = json(&[
        "sweep",
        "-m",
        "yolov8n",
        "--batch",
        "1",
        "--fix",
        "cpu=1479MHz",
        "--out",
        &out_s,
    ]);
    // The Nano's 12 GPU steps at one CPU clock, and the DVFS baseline at batch 1.
    assert_eq!(s["grid"].as_array().unwrap().len(), 12);
    assert_eq!(s["baseline"][0]["batch_size"], 1);
    assert!(out.join("sweep.csv").exists());
    // A half pin, a clock not in the board's table: exit 2, the board untouched.
    for (args, says) in [
        (
            vec![
                "measure",
                "-m",
                "yolov8n",
                "-b",
                "1",
                "--cpu-freq",
                "1479000",
            ],
            "give both --cpu-freq and --gpu-freq",
        ),
        (
            vec![
                "measure",
                "-m",
                "yolov8n",
                "--cpu-freq",
                "1479000",
                "--gpu-freq",
                "1",
                "-b",
                "1",
            ],
            "not in the nano table",
        ),
    ] {
        edgetune()
            .args(&args)
            .args(quick(&root))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
        same(&tree(&root), &before);
    }
}

/// `--nvpmodel` for the fake nvpmodel of the fixture under `root`.
fn fake_nvpmodel(root: &Path) -> String {
    format!(
        "sh {} {}",
        fixture_dir("fake-nvpmodel.sh").display(),
        root.display()
    )
}

/// A power-mode study of the Nano fixture's two modes, each call logged to `log`.
fn mode_tune(root: &Path, out: &Path, log: &Path, workload: &str) -> std::process::Command {
    let args = quick_with(root, workload);
    let mut c = common::std_edgetune();
    c.args(["tune", "-m", "yolov8n", "--power-modes", "all"])
        .args(["--batch-sizes", "1,2", "--nvpmodel", &fake_nvpmodel(root)])
        .args(args)
        .arg("--out")
        .arg(out)
        .env("FAKE_NVPMODEL_LOG", log);
    c
}

fn mode_of(root: &Path) -> String {
    std::fs::read_to_string(root.join("var/lib/nvpmodel/status")).unwrap()
}

/// Issue 26: AGX Orin's four stock modes on its fixture, whose mode at start is JetPack's
/// default MODE_30W (2), not 0: each is switched to, and mode 2 and every file come back.
#[test]
fn agx_orin_power_modes_are_switched_and_its_default_mode_is_put_back() {
    let (t, root) = fixture("agx-orin-jp6");
    let before = tree(&root);
    let log = t.path().join("nvpmodel.log");
    let o = mode_tune(&root, &t.path().join("out"), &log, "sleep 0.05")
        .args(["-d", "agx-orin"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    for m in 0..4 {
        assert!(calls.contains(&format!("-m {m}\n")), "{calls}");
    }
    assert!(calls.ends_with("-m 2\n"), "{calls}");
    same(&tree(&root), &before);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("out/report.json")).unwrap())
            .unwrap();
    assert!(r["best"]["power_mode"].as_u64().unwrap() < 4);
}

/// Issue 26: nvpmodel power modes as the knob on a board: `tune --power-modes` switches the
/// fixture's modes through a fake `nvpmodel` (which writes each mode's caps, as the real one
/// does) and puts the mode found back, with every file, after the study, after Ctrl-C, and by
/// `edgetune restore` after a SIGKILL.
#[test]
fn power_modes_are_switched_and_the_mode_found_is_put_back() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let log = t.path().join("nvpmodel.log");
    let o = mode_tune(&root, &t.path().join("out"), &log, "sleep 0.05")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("recommended: power mode "), "{stdout}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.starts_with("-q\n") && calls.contains("-m 1\n"),
        "{calls}"
    );
    assert!(
        calls.ends_with("-m 0\n"),
        "the mode found (0) comes back last: {calls}"
    );
    same(&tree(&root), &before);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("out/report.json")).unwrap())
            .unwrap();
    assert!(r["best"]["power_mode"].is_u64(), "{}", r["best"]);
    assert!(
        r["best"].get("gpu_freq_hz").is_none(),
        "no clock was pinned"
    );

    // Ctrl-C while in mode 1: exit 130, mode 0 and every file back.
    let _ = std::fs::remove_file(&log);
    let child = mode_tune(&root, &t.path().join("int"), &log, "sleep 0.3")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !mode_of(&root).starts_with("pmode:0001") {
        assert!(t0.elapsed() < Duration::from_secs(30), "mode 1 never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    same(&tree(&root), &before);

    // SIGKILL in mode 1: the state file stays; restore (with the fake) puts mode 0 back.
    let mut child = mode_tune(&root, &t.path().join("kill"), &log, "sleep 0.3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !mode_of(&root).starts_with("pmode:0001") {
        assert!(t0.elapsed() < Duration::from_secs(60), "mode 1 never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, "-KILL");
    child.wait().unwrap();
    assert!(state(&root).exists());
    edgetune()
        .args([
            "restore",
            "--nvpmodel",
            &fake_nvpmodel(&root),
            "--sysfs-root",
        ])
        .arg(&root)
        .assert()
        .success()
        .stdout(predicate::str::contains("restored"));
    same(&tree(&root), &before);
    assert!(!state(&root).exists());
}

#[test]
fn power_mode_mistakes_exit_2_and_change_nothing() {
    let (_t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let nvp = fake_nvpmodel(&root);
    for (args, says) in [
        (
            vec!["--power-modes", "7"],
            "power mode 7 is not one of this board's (0 MAXN, 1 5W)",
        ),
        (
            vec!["--power-modes", "low"],
            "cannot read `low` as a power mode id in --power-modes",
        ),
        (
            vec!["--power-modes", "all", "--emc"],
            "--power-modes and --emc are two ways",
        ),
        (
            vec!["--power-modes", "all", "--fix", "gpu=614.4MHz"],
            "with --power-modes the modes set the clocks' caps",
        ),
    ] {
        edgetune()
            .args(["tune", "-m", "yolov8n", "--nvpmodel", &nvp])
            .args(&args)
            .args(quick(&root))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
        same(&tree(&root), &before);
    }
    // A power-mode profile is selected with nvpmodel, not pinned by `apply`.
    let profile = root.parent().unwrap().join("profile.toml");
    std::fs::write(
        &profile,
        "[profile]\nboard = \"nano\"\nmodel = \"yolov8n\"\nbackend = \"jetson\"\nbatch_size = 1\npower_mode = 1\nenergy_j = 0.2\ninferences = 10\n",
    )
    .unwrap();
    edgetune()
        .arg("apply")
        .arg(&profile)
        .arg("--sysfs-root")
        .arg(&root)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("run `sudo nvpmodel -m 1`"));
    same(&tree(&root), &before);
    // The twin has no power modes; a table's are its `power_mode` column.
    edgetune()
        .args(["tune", "-m", "resnet18", "-d", "nano", "--backend", "sim"])
        .args(["--power-modes", "all"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--power-modes switches a Jetson's nvpmodel modes (--backend jetson)",
        ));
}

/// Issue 26: `apply --persist` installs (and enables) a systemd unit that applies the profile's
/// copy at every boot; `restore` removes it with the pins; a unit of the user's in the way is
/// refused before anything is pinned.
#[test]
fn apply_persist_installs_a_boot_unit_that_restore_removes() {
    let (t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let profile = t.path().join("profile.toml");
    std::fs::write(
        &profile,
        "[profile]\nboard = \"nano\"\nmodel = \"resnet18\"\nbackend = \"sim\"\ncpu_freq_khz = 921600\ngpu_freq_hz = 614400000\nbatch_size = 8\nenergy_j = 100.0\ninferences = 3200\n",
    )
    .unwrap();
    let unit = root.join("etc/systemd/system/edgetune-profile.service");
    let apply = || {
        let mut c = edgetune();
        c.args(["apply", "--persist", "--sysfs-root"])
            .arg(&root)
            .arg(&profile);
        c
    };
    apply()
        .assert()
        .success()
        .stdout(predicate::str::contains("persisted: "));
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains("apply /etc/edgetune/profile.toml")
            && text.contains("WantedBy=multi-user.target"),
        "{text}"
    );
    let link = root.join("etc/systemd/system/multi-user.target.wants/edgetune-profile.service");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../edgetune-profile.service")
    );
    let copy = std::fs::read_to_string(root.join("etc/edgetune/profile.toml")).unwrap();
    assert!(copy.contains("cpu_freq_khz = 921600"), "{copy}");
    edgetune()
        .args(["restore", "--sysfs-root"])
        .arg(&root)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "removed the profile applied at boot",
        ));
    assert!(link.symlink_metadata().is_err() && !unit.exists());
    // The folders it made stay (empty), as a package's would; the board is as found.
    let mut now = tree(&root);
    now.retain(|p, _| {
        !p.starts_with(root.join("etc/systemd")) && !p.starts_with(root.join("etc/edgetune"))
    });
    same(&now, &before);
    // A unit of the user's: refused with exit 2, nothing pinned, the unit untouched.
    std::fs::write(&unit, "[Unit]\nDescription=mine\n").unwrap();
    let mine = tree(&root);
    apply()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not edgetune's"));
    same(&tree(&root), &mine);
}
