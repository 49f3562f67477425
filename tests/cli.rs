//! End-to-end tests of the `edgetune` binary on the digital twin.

use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;

mod common;
use common::edgetune;

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn tune_on_the_twin_says_so_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    edgetune()
        .args([
            "tune",
            "--model",
            "yolov4-tiny",
            "--device",
            "nano",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("digital twin"))
        .stdout(predicate::str::contains("recommended: CPU"))
        .stdout(predicate::str::contains("saving vs DVFS"));
    for f in [
        "report.json",
        "report.md",
        "profile.toml",
        "nvpmodel.conf",
        "journal.jsonl",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let r = read_json(&out.join("report.json"));
    for key in [
        "model",
        "device",
        "backend",
        "strategy",
        "seed",
        "inferences",
        "grid_size",
        "measured_configs",
        "best",
        "baseline",
        "saving_pct",
        "measurements",
    ] {
        assert!(r.get(key).is_some(), "report.json lacks {key}");
    }
    assert_eq!(r["backend"], "sim");
    assert_eq!(r["grid_size"], 900);
    assert_eq!(r["baseline"]["kind"], "dvfs");
    for key in [
        "cpu_freq_khz",
        "gpu_freq_hz",
        "batch_size",
        "energy_j",
        "time_s",
        "avg_power_w",
    ] {
        assert!(r["best"].get(key).is_some(), "best lacks {key}");
    }
    // It saves energy against the governors, and measured a small part of the grid.
    assert!(r["saving_pct"].as_f64().unwrap() > 0.0);
    assert!(r["saving_same_batch_pct"].as_f64().unwrap() > 0.0);
    let n = r["measured_configs"].as_u64().unwrap();
    assert!(n > 5 && n <= 90, "{n}");
    let m = &r["measurements"][0];
    for key in ["energy_j", "time_s", "avg_power_w", "runs", "cv"] {
        assert!(m.get(key).is_some(), "measurement lacks {key}");
    }
    // One journal line per measurement (plus header and baselines), each valid JSON.
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let kinds: Vec<String> = journal
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds[0], "study");
    assert_eq!(
        kinds.iter().filter(|k| *k == "measurement").count() as u64,
        n
    );
    // The profile and the nvpmodel block carry the recommended clocks.
    let best = &r["best"];
    let profile = std::fs::read_to_string(out.join("profile.toml")).unwrap();
    let p: toml::Value = toml::from_str(&profile).unwrap();
    assert_eq!(
        p["profile"]["cpu_freq_khz"].as_integer().unwrap() as u64,
        best["cpu_freq_khz"].as_u64().unwrap()
    );
    let nvp = std::fs::read_to_string(out.join("nvpmodel.conf")).unwrap();
    assert!(nvp.contains(&format!("CPU_A57 MIN_FREQ {}", best["cpu_freq_khz"])));
    assert!(nvp.contains(&format!("GPU MAX_FREQ {}", best["gpu_freq_hz"])));
    assert!(nvp.contains("< POWER_MODEL ID="));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Recommendation") && md.contains("digital twin"));
}

#[test]
fn json_output_is_the_report_and_same_seed_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = edgetune()
            .args([
                "tune",
                "-m",
                "resnet-18",
                "-d",
                "nx",
                "--json",
                "-q",
                "--seed",
                "7",
                "--out",
            ])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let (a, b) = (run("a"), run("b"));
    assert_eq!(a["model"], "resnet18");
    assert_eq!(a["device"], "xavier-nx");
    assert_eq!(a["best"], b["best"]);
    assert_eq!(a["measurements"], b["measurements"]);
}

#[test]
fn resume_continues_from_the_journal_without_remeasuring() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let args = [
        "tune", "-m", "alexnet", "-d", "nano", "-q", "--json", "--seed", "3",
    ];
    // A first run stopped by its budget...
    edgetune()
        .args(args)
        .args(["--budget", "8", "--out"])
        .arg(&out)
        .assert()
        .success();
    let first = std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap()
        .lines()
        .count();
    // ...resumed with the same options measures nothing new. A different seed is a different
    // study, so it is refused.
    edgetune()
        .args([
            "tune", "-m", "alexnet", "-d", "nano", "-q", "--seed", "4", "--budget", "8", "--resume",
        ])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("different study").and(predicate::str::contains("seed")));
    let o = edgetune()
        .args(args)
        .args(["--budget", "8", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["resumed_configs"], 8);
    let second = std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(first, second, "resuming a finished study measured again");
    // A larger budget continues the same study: the first 8 come from the journal.
    let o = edgetune()
        .args(args)
        .args(["--budget", "20", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["resumed_configs"], 8);
    assert!(r["measured_configs"].as_u64().unwrap() > 8);
}

#[test]
fn resume_after_a_partial_journal_measures_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let args = [
        "tune",
        "-m",
        "mobilenet-v2",
        "-d",
        "nano",
        "-q",
        "--json",
        "--budget",
        "12",
    ];
    let first = edgetune()
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(first.status.success());
    let whole: Value = serde_json::from_slice(&first.stdout).unwrap();
    let journal = out.join("journal.jsonl");
    let full: Vec<String> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // Keep the header, the baseline and the first 5 measurements, as if the run had been killed.
    let kept: Vec<String> = full.iter().take(2 + 5).cloned().collect();
    std::fs::write(&journal, kept.join("\n") + "\n").unwrap();
    let o = edgetune()
        .args(args)
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["resumed_configs"], 5);
    // It went on from there (the twin's noise differs from the killed run's after the cut, so
    // the search may end elsewhere than the whole run did).
    assert!(r["measured_configs"].as_u64().unwrap() > 5);
    assert!(whole["measured_configs"].as_u64().unwrap() > 5);
}

#[test]
fn sweep_writes_the_whole_grid_and_its_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    edgetune()
        .args([
            "sweep",
            "-m",
            "yolov4-tiny",
            "-d",
            "nano",
            "--batch",
            "8",
            "--noise",
            "off",
            "-q",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("minimum:"));
    let s = read_json(&out.join("sweep.json"));
    assert_eq!(s["grid"].as_array().unwrap().len(), 15 * 12);
    let min = s["min"]["energy_j"].as_f64().unwrap();
    assert!((min / 916.7 - 1.0).abs() < 0.05, "{min}");
    assert!(s["grid"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["energy_j"].as_f64().unwrap() >= min));
    assert_eq!(s["baseline"][0]["batch_size"], 8);
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(csv.starts_with("cpu_freq_khz,gpu_freq_hz,batch_size,energy_j,time_s,avg_power_w"));
    // The header, the grid, and the DVFS row at the sweep's one batch size.
    assert_eq!(csv.lines().count(), 1 + 180 + 1);
    assert!(csv.lines().last().unwrap().ends_with(",dvfs"));
}

#[test]
fn measure_and_baseline_run_the_protocol() {
    let o = edgetune()
        .args([
            "measure",
            "-m",
            "bert-tiny",
            "-d",
            "nano",
            "--cpu-freq",
            "1479MHz",
            "--gpu-freq",
            "921600000",
            "-b",
            "8",
            "--json",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &r["measurements"][0];
    assert!(m["runs"].as_array().unwrap().len() >= 3);
    assert!(m["cv"].as_f64().unwrap() < 0.05);
    assert_eq!(m["setting"]["kind"], "pinned");
    edgetune()
        .args([
            "baseline",
            "-m",
            "bert-tiny",
            "-d",
            "nano",
            "-b",
            "4,8",
            "-q",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("DVFS governors"))
        .stdout(predicate::str::is_match(r"(?m)^\s+8 \|").unwrap());
}

#[test]
fn models_and_devices_list_the_catalogue() {
    edgetune().arg("models").assert().success().stdout(
        predicate::str::contains("yolov4-tiny").and(predicate::str::contains("distilbert")),
    );
    let o = edgetune().args(["devices", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["agx-orin", "nano", "orin-nano", "orin-nx", "xavier-nx"]
    );
    assert_eq!(
        v["catalog"][4]["cpu_freq_khz"].as_array().unwrap().len(),
        25
    );
    // AGX Orin has no input rail: its power is the sum of its rails.
    assert!(v["catalog"][0]["total_rail"].is_null());
    edgetune()
        .arg("devices")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "(total sum of VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0)",
        ));
    assert!(v["this_machine"].is_null());
}

/// Issue 26: the Orin boards on the twin, which says so.
#[test]
fn tune_runs_on_each_orin_twin() {
    for id in ["orin-nano", "orin-nx", "agx-orin"] {
        let dir = tempfile::tempdir().unwrap();
        let o = edgetune()
            .args([
                "tune",
                "-m",
                "yolov4-tiny",
                "-d",
                id,
                "--budget",
                "6",
                "--json",
                "--out",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stderr).contains("using its digital twin"));
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (r["device"].as_str(), r["backend"].as_str()),
            (Some(id), Some("sim"))
        );
        assert!(r["saving_pct"].as_f64().unwrap() > 0.0, "{id}");
    }
}

#[test]
fn bench_writes_its_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    edgetune()
        .args([
            "bench",
            "--seeds",
            "2",
            "--models",
            "alexnet",
            "--devices",
            "nano",
            "--strategies",
            "coordinate,random",
            "--out",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("| coordinate | all |"));
    let b = read_json(&dir.path().join("bench.json"));
    let c = &b["strategies"]["coordinate"];
    for k in ["to_1pct", "to_2pct", "to_5pct", "final_regret_pct"] {
        assert!(c[k]["median"].is_number() && c[k]["p90"].is_number(), "{k}");
    }
    assert!(c["tuning_time_fraction"]["median"].as_f64().unwrap() < 1.0);
    assert!(dir.path().join("bench.md").is_file());
}

#[test]
fn an_edited_catalogue_is_read_from_disk_and_its_errors_name_file_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["search-spaces", "models"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    edgetune()
        .arg("--catalog")
        .arg(dir.path())
        .arg("models")
        .assert()
        .success();
    let f = dir.path().join("models/resnet18.toml");
    let src = std::fs::read_to_string(&f)
        .unwrap()
        .replace("gflops = 2.0", "gflops = -2.0");
    std::fs::write(&f, &src).unwrap();
    let line = src.lines().position(|l| l.starts_with("gflops")).unwrap() + 1;
    edgetune()
        .arg("--catalog")
        .arg(dir.path())
        .args(["tune", "-m", "resnet18", "-d", "nano"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "resnet18.toml:{line}: field `paper.gflops`"
        )));
    std::fs::write(&f, "[model\nid = 1").unwrap();
    edgetune()
        .env("EDGETUNE_CATALOG", dir.path())
        .arg("models")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("resnet18.toml").and(predicate::str::contains("line 1")));
}

#[test]
fn bad_input_exits_2_with_a_message_and_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let missing = missing.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["tune", "-m", "vgg16", "-d", "nano"],
            "valid models: alexnet",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "orin"],
            "valid devices: agx-orin, nano, orin-nano, orin-nx, xavier-nx",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--fix", "gpu=600MHz"],
            "not in the nano table",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--fix", "cpu=fast"],
            "cannot read `fast`",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--fix", "memory=1"],
            "unknown knob `memory`",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--fix", "gpu"],
            "knob=value",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--batch-sizes", "7"],
            "batch size 7 is not allowed",
        ),
        (
            vec![
                "tune",
                "-m",
                "alexnet",
                "-d",
                "nano",
                "--batch-sizes",
                "4",
                "--fix",
                "batch=8",
            ],
            "search space is empty",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--strategy", "magic"],
            "unknown strategy `magic`",
        ),
        // The options come from the journal: its absence is the error, not a missing --model.
        (vec!["tune", "--resume", missing], "no journal at"),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--budget", "0"],
            "--budget",
        ),
        (
            vec![
                "tune",
                "-m",
                "alexnet",
                "-d",
                "nano",
                "--baseline-batch",
                "5",
            ],
            "--baseline-batch",
        ),
        (
            vec![
                "tune",
                "-m",
                "alexnet",
                "-d",
                "nano",
                "--min-runs",
                "5",
                "--max-runs",
                "2",
            ],
            "--max-runs",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--cv-target=-1"],
            "--cv-target",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--inferences", "0"],
            "--inferences",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--resume", missing],
            "no journal",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--budget", "many"],
            "invalid value",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--backend", "cloud"],
            "invalid value",
        ),
        (vec!["tune", "-d", "nano"], "--model"),
        (
            vec![
                "measure",
                "-m",
                "alexnet",
                "-d",
                "nano",
                "--cpu-freq",
                "1GHz",
                "--gpu-freq",
                "921.6MHz",
                "-b",
                "8",
            ],
            "not in the nano table",
        ),
        (
            vec![
                "measure",
                "-m",
                "alexnet",
                "-d",
                "nano",
                "--cpu-freq",
                "1479MHz",
                "--gpu-freq",
                "921.6MHz",
                "-b",
                "3",
            ],
            "batch size 3",
        ),
        (
            vec!["baseline", "-m", "alexnet", "-d", "nano", "-b", "4,x"],
            "cannot read `x`",
        ),
        (vec!["bench", "--strategies", "magic"], "unknown strategy"),
        (vec!["bench", "--models", "vgg16"], "unknown model"),
        (vec!["bench", "--budget-fraction", "3"], "--budget-fraction"),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--ei-stop=-0.1"],
            "--ei-stop",
        ),
        (
            vec![
                "tune",
                "-m",
                "alexnet",
                "-d",
                "nano",
                "--acquisition",
                "lcb",
                "--kappa=0",
            ],
            "--kappa",
        ),
        (
            vec!["tune", "-m", "alexnet", "-d", "nano", "--acquisition", "pi"],
            "invalid value",
        ),
    ];
    for (args, msg) in cases {
        assert_bad_input(&args, msg, Path::new("."));
    }
}

/// `args` exits 2 (run in `dir`) with `msg` on stderr, and nothing panicked.
#[track_caller]
fn assert_bad_input(args: &[&str], msg: &str, dir: &Path) {
    let o = edgetune().args(args).current_dir(dir).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?} exited {:?}: {err}",
        o.status.code()
    );
    assert!(err.contains(msg), "{args:?}: expected `{msg}` in: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

/// The library's errors name options by field (`opt::Opt`); the command line names them by the
/// flags the user typed, wherever in the layers the error was made.
#[test]
fn lower_layers_errors_name_the_flags_the_user_typed() {
    let dir = tempfile::tempdir().unwrap();
    let tune = ["tune", "-q", "-m", "alexnet", "-d", "nano"];
    let cases: [(&[&str], &str); 5] = [
        (&["--fix", "memory=1"], "unknown knob `memory` in --fix;"),
        (&["--fix", "gpu"], "--fix expects knob=value"),
        (
            &["--storage", "ftp:x", "--study", "s"],
            "--storage ftp:x: not a storage",
        ),
        (
            &["--storage", "sqlite:x.db", "--study", "a b"],
            "--study `a b`: a study name",
        ),
        (
            &["--backend", "sim", "--table", "t.csv"],
            "--table is for --backend replay; leave --backend out",
        ),
    ];
    for (extra, msg) in cases {
        let args: Vec<&str> = tune.iter().chain(extra.iter()).copied().collect();
        assert_bad_input(&args, msg, dir.path());
    }
    assert_bad_input(
        &[
            "emulate-infer",
            "--root",
            "nowhere",
            "-m",
            "alexnet",
            "-b",
            "4",
            "--inferences",
            "8",
        ],
        "start `edgetune emulate --board nano --root nowhere` first",
        dir.path(),
    );
}

/// Values the break-it campaign (issue 18) found panicking or accepted: each is bad input now.
#[test]
fn extreme_values_are_bad_input_in_every_command_that_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    std::fs::write(
        &table,
        "gpu_freq_hz,batch_size,energy_j\n1,1,1\n1,2,1\n2,1,1\n2,2,1\n",
    )
    .unwrap();
    let table = table.to_str().unwrap();
    let tune = ["tune", "-m", "alexnet", "-d", "nano", "-q"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--min-window-s", "3e6"], "--min-window-s"),
        (vec!["--min-window-s", "1e7"], "--min-window-s"),
        (vec!["--min-window-s", "1e308"], "--min-window-s"),
        (
            vec!["--table", table, "--min-window-s", "1e9"],
            "--min-window-s",
        ),
        (vec!["--workload-timeout", "1e300"], "--workload-timeout"),
        (vec!["--poll-ms", "0"], "--poll-ms"),
    ];
    let measure = ["measure", "-m", "alexnet", "-d", "nano", "-b", "4"];
    let clocks = ["--cpu-freq", "1479MHz", "--gpu-freq", "921.6MHz"];
    let bench = [
        "bench",
        "--seeds",
        "1",
        "--models",
        "alexnet",
        "--devices",
        "nano",
    ];
    let cases = cases
        .into_iter()
        .map(|(a, m)| ([&tune[..], &a].concat(), m))
        .chain([(
            [&measure[..], &clocks, &["--min-window-s", "1e308"]].concat(),
            "--min-window-s",
        )])
        .chain(
            [
                (&["--max-power-w", "nan"][..], "--max-power-w"),
                (&["--max-latency-ms", "0"], "--max-latency-ms"),
                (&["--max-slowdown", "inf"], "--max-slowdown"),
                (&["--budget", "0"], "--budget"),
            ]
            .map(|(a, m)| ([&bench[..], a].concat(), m)),
        );
    for (args, msg) in cases {
        assert_bad_input(&args, msg, dir.path());
    }
}

/// Issue 18, case 4: `--out` never truncates a journal or writes over a user's files.
#[test]
fn an_output_folder_holding_a_study_or_other_files_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = dir.path().join("s1");
    let tune = [
        "tune",
        "-m",
        "resnet18",
        "-d",
        "nano",
        "-q",
        "--inferences",
        "320",
    ];
    edgetune()
        .args(tune)
        .args(["--strategy", "grid", "--budget", "40", "--out"])
        .arg(&s1)
        .assert()
        .success();
    let journal = std::fs::read(s1.join("journal.jsonl")).unwrap();
    edgetune()
        .args(tune)
        .args(["--budget", "5", "--seed", "7", "--out"])
        .arg(&s1)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--resume"));
    assert_eq!(std::fs::read(s1.join("journal.jsonl")).unwrap(), journal);
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let others: [Vec<&str>; 3] = [
        tune.to_vec(),
        vec!["sweep", "-m", "resnet18", "-d", "nano", "--batch", "8"],
        vec![
            "bench",
            "--seeds",
            "1",
            "--models",
            "alexnet",
            "--devices",
            "nano",
        ],
    ];
    for args in others {
        edgetune()
            .args(&args)
            .arg("--out")
            .arg(&mine)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("not empty"));
    }
    let left: Vec<_> = std::fs::read_dir(&mine).unwrap().collect();
    assert_eq!(left.len(), 1, "only the user's file");
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn an_unwritable_output_folder_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    edgetune()
        .args(["tune", "-m", "alexnet", "-d", "nano", "-q", "--out"])
        .arg(file.join("sub"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--out"));
}

#[test]
fn grid_strategy_measures_the_whole_grid_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let o = edgetune()
        .args([
            "tune",
            "-m",
            "alexnet",
            "-d",
            "nano",
            "-q",
            "--json",
            "--strategy",
            "grid",
        ])
        .args(["--batch-sizes", "4", "--fix", "cpu=1479MHz", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["grid_size"], 12);
    assert_eq!(r["measured_configs"], 12);
}

#[test]
fn help_explains_the_commands() {
    edgetune()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("tune").and(predicate::str::contains("Exit codes")));
    edgetune()
        .args(["tune", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--strategy").and(predicate::str::contains("--resume")));
}

/// A replay table from two noisy sweeps of the twin: every configuration recorded twice.
fn recorded_table(dir: &Path) -> std::path::PathBuf {
    let mut body = String::new();
    for seed in ["1", "2"] {
        let out = dir.join(format!("sweep{seed}"));
        edgetune()
            .args([
                "sweep",
                "-m",
                "mobilenet-v2",
                "-d",
                "nano",
                "-q",
                "--seed",
                seed,
                "--out",
            ])
            .arg(&out)
            .assert()
            .success();
        let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        if body.is_empty() {
            body = format!("{header}\n");
        }
        // The pinned rows only: without DVFS rows the all-max corner is the baseline.
        for l in lines.filter(|l| !l.ends_with(",dvfs")) {
            body += l;
            body += "\n";
        }
    }
    let p = dir.join("table.csv");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn tune_and_bench_replay_a_recorded_table() {
    let dir = tempfile::tempdir().unwrap();
    let table = recorded_table(dir.path());
    let o = edgetune()
        .args([
            "tune",
            "-m",
            "mobilenet-v2",
            "-d",
            "nano",
            "--json",
            "--budget",
            "30",
            // Every configuration at the full protocol: the test reads the runs' spread.
            "--no-race",
            "--table",
        ])
        .arg(&table)
        .arg("--out")
        .arg(dir.path().join("tune"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("backend replay"));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["backend"], "replay");
    assert_eq!(r["grid_size"], 15 * 12 * 3);
    // The table has no DVFS rows: the all-max corner stands in, and the report says so.
    assert_eq!(r["baseline"]["kind"], "max-clocks");
    // Each configuration has two rows, each the mean of a sweep's three runs (`runs`, `cv`) and
    // so three readings of that mean and CV: the protocol sees a spread, never one reading
    // repeated.
    let m = &r["measurements"][0];
    let runs: Vec<f64> = m["run_energies_j"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let same = |a: f64, b: f64| (a - b).abs() < 1e-6 * a;
    assert!(runs.len() >= 2 && !same(runs[0], runs[1]), "{runs:?}");
    // The recommendation is close to the table's best mean.
    let csv = std::fs::read_to_string(&table).unwrap();
    let mut means: std::collections::HashMap<String, (f64, u32)> = Default::default();
    for l in csv.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let e = means.entry(f[..3].join(",")).or_default();
        e.0 += f[3].parse::<f64>().unwrap();
        e.1 += 1;
    }
    let min = means
        .values()
        .map(|(s, n)| s / *n as f64)
        .fold(f64::INFINITY, f64::min);
    let best = r["best"]["energy_j"].as_f64().unwrap();
    assert!(best <= min * 1.05, "best {best} vs table minimum {min}");
    // A bench on tables (here the same one twice: one cell each) runs and writes its report.
    let b = dir.path().join("bench");
    edgetune()
        .args([
            "bench",
            "--seeds",
            "2",
            "--budget",
            "20",
            "--strategies",
            "bayes,random",
            "--models",
            "mobilenet-v2",
            "--devices",
            "nano",
            "--table",
        ])
        .arg(&table)
        .arg("--table")
        .arg(&table)
        .arg("--out")
        .arg(&b)
        .assert()
        .success()
        .stdout(predicate::str::contains("replay table"))
        .stdout(predicate::str::contains("NaN").not());
    let j = read_json(&b.join("bench.json"));
    assert_eq!(j["strategies"]["bayes"]["runs"], 4);
    // Without a time column there is no tuning time: said so, not NaN.
    let timeless = dir.path().join("timeless.csv");
    std::fs::write(
        &timeless,
        "gpu_freq_hz,batch_size,energy_j\n76800000,1,5\n76800000,2,4\n153600000,1,3\n153600000,2,6\n",
    )
    .unwrap();
    edgetune()
        .args([
            "bench",
            "--seeds",
            "1",
            "--budget",
            "3",
            "--strategies",
            "random",
        ])
        .args(["--models", "mobilenet-v2", "--devices", "nano", "--table"])
        .arg(&timeless)
        .arg("--out")
        .arg(dir.path().join("bench2"))
        .assert()
        .success()
        .stdout(predicate::str::contains("not known (no time model)"))
        .stdout(predicate::str::contains("NaN").not());
}

#[test]
fn a_bad_replay_table_is_bad_input_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.csv");
    std::fs::write(&p, "gpu_freq_hz,energy_j\n76800000,10\n153600000,-1\n").unwrap();
    edgetune()
        .args(["tune", "-m", "alexnet", "-d", "nano", "--table"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad.csv:3: energy must be positive",
        ));
    edgetune()
        .args(["tune", "-m", "alexnet", "-d", "nano", "--backend", "replay"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--table"));
    edgetune()
        .args(["sweep", "-m", "alexnet", "-d", "nano", "--table"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tune"));
}

/// Issue 18, case 11: values that overflowed or were silently changed are bad input naming
/// the line; a catalogue number the twin cannot use, `emulate --root` on a file and an unknown
/// key in a profile too.
#[test]
fn overflowing_or_misshapen_input_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "gpu_freq_hz,energy_j\n76800000,1e308\n153600000,1\n",
            "t.csv:2: energy must be positive and at most",
        ),
        (
            "gpu_freq_hz,power_w,time_s\n76800000,1e300,1e300\n153600000,1,1\n",
            "t.csv:2: energy",
        ),
        (
            "gpu_freq_hz,energy_j\n76800000,1\n1e20,1\n",
            "t.csv:3: column `gpu_freq_hz`: 100000000000000000000 is not a whole number",
        ),
        (
            "gpu_freq_hz,energy_j,inferences\n76800000,1,1e12\n153600000,1,1\n",
            "t.csv:2: column `inferences`",
        ),
        (
            "gpu_freq_hz,energy_j,energy_j\n76800000,1,2\n153600000,1,2\n",
            "t.csv:1: column `energy_j` appears twice",
        ),
        (
            "gpu_freq_hz,energy_j\n76800000,1,7\n153600000,1\n",
            "t.csv:2: 3 cells, but the header names 2 columns",
        ),
    ];
    let p = dir.path().join("t.csv");
    for (table, msg) in cases {
        std::fs::write(&p, table).unwrap();
        edgetune()
            .args(["tune", "-m", "alexnet", "-d", "nano", "-q", "--table"])
            .arg(&p)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(msg));
    }
    // A catalogue model whose GFLOPs would make the twin's energies infinite.
    let cat = dir.path().join("cat");
    std::fs::create_dir_all(cat.join("models")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for d in ["models", "search-spaces"] {
        std::fs::create_dir_all(cat.join(d)).unwrap();
        for e in std::fs::read_dir(root.join(d)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), cat.join(d).join(e.file_name())).unwrap();
        }
    }
    let m = cat.join("models/alexnet.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    let gflops = text
        .lines()
        .find(|l| l.starts_with("gflops"))
        .unwrap()
        .to_string();
    std::fs::write(&m, text.replace(&gflops, "gflops = 1e308")).unwrap();
    edgetune()
        .args(["tune", "-m", "alexnet", "-d", "nano", "-q", "--catalog"])
        .arg(&cat)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("paper.gflops").and(predicate::str::contains("at most")));
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    edgetune()
        .args(["emulate", "--board", "nano", "--root"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a file"));
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        "[profile]\nboard = \"nano\"\nmodel = \"resnet18\"\nbackend = \"sim\"\ncpu_freq_khz = 1479000\ngpu_freq_hz = 921600000\nbatch_size = 8\nenergy_j = 1.0\ninferences = 3200\ngpu_freq_mhz = 1\n",
    )
    .unwrap();
    edgetune()
        .args(["apply", "--sysfs-root"])
        .arg(dir.path())
        .arg(&profile)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown key `gpu_freq_mhz`"));
}

/// Texts and element counts of an SVG, parsed as XML.
fn svg_summary(path: &Path) -> (Vec<String>, usize, usize) {
    let src = std::fs::read_to_string(path).unwrap();
    let doc =
        roxmltree::Document::parse(&src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    let lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    let marks = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") || n.has_tag_name("rect"))
        .count();
    (texts, lines, marks)
}

#[test]
fn tune_draws_four_plots_with_axes_labels_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    edgetune()
        .args(["tune", "-m", "resnet18", "-d", "nano", "-q", "--out"])
        .arg(&out)
        .assert()
        .success();
    let expect = [
        (
            "energy-vs-gpu.svg",
            vec![
                "GPU frequency (MHz)",
                "Energy per 3200 inferences (J)",
                "batch 8 (surrogate)",
            ],
        ),
        (
            "heatmap.svg",
            vec![
                "GPU frequency (MHz)",
                "CPU frequency (MHz)",
                "1479",
                "J / 3200 inferences",
            ],
        ),
        (
            "convergence.svg",
            vec![
                "Measurements made",
                "recommendation",
                "grid minimum",
                "DVFS at batch 4",
            ],
        ),
        (
            "batch.svg",
            vec![
                "Batch size",
                "Energy per inference (mJ)",
                "Time per inference (ms)",
                "64",
                "measured",
            ],
        ),
    ];
    // The convergence plot counts whole measurements (issue 26: its ticks read 1.0, 2.0).
    let (ticks, _, _) = svg_summary(&out.join("convergence.svg"));
    assert!(
        !ticks.iter().any(|t| t == "1.0" || t == "2.0") && ticks.iter().any(|t| t == "2"),
        "{ticks:?}"
    );
    for (file, labels) in expect {
        let (texts, lines, marks) = svg_summary(&out.join(file));
        for l in labels {
            assert!(
                texts.iter().any(|t| t == l),
                "{file}: no text `{l}` in {texts:?}"
            );
        }
        // Tick labels on both axes, and data drawn.
        assert!(
            texts.iter().filter(|t| t.parse::<f64>().is_ok()).count() >= 6,
            "{file}: {texts:?}"
        );
        assert!(lines + marks >= 5, "{file}: {lines} lines, {marks} marks");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for f in [
        "energy-vs-gpu.svg",
        "heatmap.svg",
        "convergence.svg",
        "batch.svg",
    ] {
        assert!(
            md.contains(&format!("]({f})")),
            "report.md does not embed {f}"
        );
    }
    let r = read_json(&out.join("report.json"));
    assert_eq!(r["plots"].as_array().unwrap().len(), 4);
    // Each saving with its interval from both sides' runs (issue 26).
    for (saving, interval) in [
        ("saving_pct", "saving_interval_pct"),
        ("saving_same_batch_pct", "saving_same_batch_interval_pct"),
    ] {
        let p = r[saving].as_f64().unwrap();
        let (lo, hi) = (
            r[interval][0].as_f64().unwrap(),
            r[interval][1].as_f64().unwrap(),
        );
        assert!(lo < p && p < hi, "{saving} {p} not in [{lo}, {hi}]");
    }
    let sh = std::fs::read_to_string(out.join("apply-profile.sh")).unwrap();
    let best = &r["best"];
    assert!(sh.contains(&format!(
        "pin /sys/devices/system/cpu/cpu0/cpufreq scaling_min_freq scaling_max_freq {}",
        best["cpu_freq_khz"]
    )));
    assert!(sh.contains(&format!(
        "pin /sys/class/devfreq/57000000.gpu min_freq max_freq {}",
        best["gpu_freq_hz"]
    )));
}

#[test]
fn sweep_draws_its_grid_plots() {
    let dir = tempfile::tempdir().unwrap();
    edgetune()
        .args(["sweep", "-m", "bert-tiny", "-d", "nx", "-q", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    for (f, title) in [
        ("energy-vs-gpu.svg", "bert-tiny on xavier-nx"),
        ("heatmap.svg", "bert-tiny on xavier-nx"),
        ("batch.svg", "Batch size"),
    ] {
        let (texts, lines, marks) = svg_summary(&dir.path().join(f));
        assert!(texts.iter().any(|t| t.contains(title)), "{f}: {texts:?}");
        assert!(lines + marks > 0, "{f}");
    }
    // The heat map has one cell per (CPU, GPU) pair of the NX.
    let (_, _, marks) = svg_summary(&dir.path().join("heatmap.svg"));
    assert!(marks >= 25 * 15, "{marks}");
    // One batch size: no batch plot (issue 26: it was an empty one).
    let one = dir.path().join("one");
    edgetune()
        .args([
            "sweep",
            "-m",
            "bert-tiny",
            "-d",
            "nx",
            "--batch",
            "8",
            "-q",
            "--out",
        ])
        .arg(&one)
        .assert()
        .success();
    assert!(one.join("heatmap.svg").exists() && !one.join("batch.svg").exists());
}

#[test]
fn a_slowdown_limit_is_met_by_every_strategy_and_reported() {
    for strategy in ["bayes", "coordinate"] {
        let dir = tempfile::tempdir().unwrap();
        edgetune()
            .args(["tune", "-m", "distilbert", "-d", "nano", "-q", "--budget", "40"])
            .args(["--max-slowdown", "1.2", "--strategy", strategy, "--out"])
            .arg(dir.path())
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "constraints: max_slowdown 1.2 x the DVFS baseline's time at batch 4; the recommendation meets them",
            ));
        // report.md shows the limit and which measurements met it.
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(md.contains("max_slowdown 1.2 x the DVFS baseline's time at batch 4"));
        assert!(
            md.contains("| meets the limits |") && md.contains("| no |"),
            "{md}"
        );
        let r = read_json(&dir.path().join("report.json"));
        assert_eq!(r["constraints"][0]["name"], "max_slowdown");
        assert_eq!(r["best_feasible"], true);
        let limit = 1.2 * r["baseline"]["time_s"].as_f64().unwrap();
        assert!(r["best"]["time_s"].as_f64().unwrap() <= limit, "{strategy}");
        let rows = r["measurements"].as_array().unwrap();
        assert!(rows.iter().all(|m| m["feasible"].is_boolean()));
        // The limit binds here: some measured configurations broke it.
        assert!(rows.iter().any(|m| m["feasible"] == false), "{strategy}");
    }
}

#[test]
fn limits_no_configuration_can_meet_are_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    edgetune()
        .args([
            "tune", "-m", "resnet18", "-d", "nano", "-q", "--budget", "12",
        ])
        .args(["--max-power-w", "0.5", "--out"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "NO measured configuration met them",
        ));
    let r = read_json(&dir.path().join("report.json"));
    assert_eq!(r["best_feasible"], false);
    for bad in [
        "--max-slowdown=0",
        "--min-throughput=-3",
        "--max-latency-ms=nan",
    ] {
        edgetune()
            .args(["tune", "-m", "resnet18", "-d", "nano", "-q", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(bad.split('=').next().unwrap()));
    }
    edgetune()
        .args([
            "bench",
            "--seeds",
            "1",
            "--max-slowdown",
            "1.2",
            "--table",
            "x.csv",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("twin only"));
}

#[test]
fn pareto_writes_the_front_its_plot_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    edgetune()
        .args([
            "tune",
            "-m",
            "mobilenet-v2",
            "-d",
            "xavier-nx",
            "-q",
            "--pareto",
        ])
        .args(["--budget", "25", "--objective", "edp", "--out"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("Pareto front"))
        .stdout(predicate::str::contains(
            "objective edp (energy x time per inference): ",
        ));
    let r = read_json(&dir.path().join("report.json"));
    assert_eq!(r["objective"], "edp");
    // The objective's own value and saving, beside the energy.
    let v = &r["objective_value"];
    let (best, base) = (v["best"].as_f64().unwrap(), v["baseline"].as_f64().unwrap());
    let b = &r["best"];
    let n = r["inferences"].as_f64().unwrap();
    let edp = b["energy_j"].as_f64().unwrap() / n * b["time_s"].as_f64().unwrap() / n;
    assert!((best / edp - 1.0).abs() < 1e-9, "{best} vs {edp}");
    assert!((v["saving_pct"].as_f64().unwrap() - 100.0 * (1.0 - best / base)).abs() < 1e-9);
    let front = r["pareto"].as_array().unwrap();
    assert!(front.len() >= 3, "{}", front.len());
    // Sorted by latency, energy strictly falling: nothing on it is dominated.
    for w in front.windows(2) {
        assert!(w[0]["latency_ms"].as_f64() < w[1]["latency_ms"].as_f64());
        assert!(
            w[0]["energy_per_inference_mj"].as_f64() > w[1]["energy_per_inference_mj"].as_f64()
        );
    }
    let csv = std::fs::read_to_string(dir.path().join("pareto.csv")).unwrap();
    assert!(csv.starts_with(
        "n,cpu_freq_khz,gpu_freq_hz,batch_size,energy_j,time_s,energy_per_inference_mj,latency_ms"
    ));
    assert_eq!(csv.lines().count(), front.len() + 1);
    assert!(r["plots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "pareto.svg"));
    let (texts, _, marks) = svg_summary(&dir.path().join("pareto.svg"));
    assert!(
        texts.iter().any(|t| t.contains("DVFS at batch")),
        "{texts:?}"
    );
    assert!(marks >= front.len());
}

// The field names of every output format, as they were before app/ was split (issue 16): a
// rename or a lost field fails here. JSON paths join keys with `.`, array elements are `[]`;
// journal paths start with the record's type.
const REPORT_FIELDS: &[&str] = &[
    "backend",
    "baseline",
    "baseline.avg_power_w",
    "baseline.batch_size",
    "baseline.converged",
    "baseline.cv",
    "baseline.energy_j",
    "baseline.kind",
    "baseline.runs",
    "baseline.time_s",
    "baseline_same_batch",
    "baseline_same_batch.avg_power_w",
    "baseline_same_batch.batch_size",
    "baseline_same_batch.converged",
    "baseline_same_batch.cv",
    "baseline_same_batch.energy_j",
    "baseline_same_batch.kind",
    "baseline_same_batch.runs",
    "baseline_same_batch.time_s",
    "best",
    "best.avg_power_w",
    "best.batch_size",
    "best.cpu_freq_khz",
    "best.energy_j",
    "best.energy_per_inference_mj",
    "best.gpu_freq_hz",
    "best.time_s",
    "best_confirmed",
    "best_feasible",
    "budget",
    "constraints",
    "constraints[].limit",
    "constraints[].name",
    "constraints[].unit",
    "device",
    "edgetune_version",
    "exploration",
    "exploration.race",
    "exploration.screen_inferences",
    "final_choice",
    "final_choice.candidates",
    "grid_size",
    "inferences",
    "measured_configs",
    "measurements",
    "measurements[].avg_power_w",
    "measurements[].batch_size",
    "measurements[].cpu_freq_khz",
    "measurements[].cv",
    "measurements[].energy_j",
    "measurements[].energy_per_inference_mj",
    "measurements[].feasible",
    "measurements[].gpu_freq_hz",
    "measurements[].latency_ms",
    "measurements[].n",
    "measurements[].run_energies_j",
    "measurements[].runs",
    "measurements[].time_s",
    "model",
    "objective",
    "pareto",
    "pareto[].batch_size",
    "pareto[].cpu_freq_khz",
    "pareto[].energy_j",
    "pareto[].energy_per_inference_mj",
    "pareto[].gpu_freq_hz",
    "pareto[].latency_ms",
    "pareto[].n",
    "pareto[].time_s",
    "plots",
    "prior",
    "protocol",
    "protocol.cv_target",
    "protocol.inferences",
    "protocol.max_runs",
    "protocol.min_runs",
    "protocol.min_window_s",
    "protocol.warmup_inferences",
    "resumed_configs",
    "saving_interval_pct",
    "saving_pct",
    "saving_same_batch_interval_pct",
    "saving_same_batch_pct",
    "seed",
    "stop_reason",
    "strategy",
    "surrogate",
    "surrogate.loo_rms",
    "surrogate.noise_df",
    "surrogate.noise_pct",
    "surrogate.poor",
    "surrogate.screening_offset_pct",
    "surrogate.structure_pct",
    "tuning_time_s",
];
const JOURNAL_FIELDS: &[&str] = &[
    "baseline:measurement",
    "baseline:measurement.avg_power_w",
    "baseline:measurement.batch_size",
    "baseline:measurement.converged",
    "baseline:measurement.cv",
    "baseline:measurement.energy_j",
    "baseline:measurement.energy_per_inference_mj",
    "baseline:measurement.inferences",
    "baseline:measurement.runs",
    "baseline:measurement.runs[].energy_j",
    "baseline:measurement.runs[].time_s",
    "baseline:measurement.setting",
    "baseline:measurement.setting.kind",
    "baseline:measurement.time_s",
    "baseline:measurement.wall_s",
    "baseline:type",
    "confirmed:config",
    "confirmed:config.batch_size",
    "confirmed:config.cpu_freq_khz",
    "confirmed:config.gpu_freq_hz",
    "confirmed:measurement",
    "confirmed:measurement.avg_power_w",
    "confirmed:measurement.batch_size",
    "confirmed:measurement.converged",
    "confirmed:measurement.cv",
    "confirmed:measurement.energy_j",
    "confirmed:measurement.energy_per_inference_mj",
    "confirmed:measurement.inferences",
    "confirmed:measurement.runs",
    "confirmed:measurement.runs[].energy_j",
    "confirmed:measurement.runs[].time_s",
    "confirmed:measurement.setting",
    "confirmed:measurement.setting.cpu_freq_khz",
    "confirmed:measurement.setting.gpu_freq_hz",
    "confirmed:measurement.setting.kind",
    "confirmed:measurement.time_s",
    "confirmed:measurement.wall_s",
    "confirmed:type",
    "measurement:config",
    "measurement:config.batch_size",
    "measurement:config.cpu_freq_khz",
    "measurement:config.gpu_freq_hz",
    "measurement:measurement",
    "measurement:measurement.avg_power_w",
    "measurement:measurement.batch_size",
    "measurement:measurement.converged",
    "measurement:measurement.cv",
    "measurement:measurement.energy_j",
    "measurement:measurement.energy_per_inference_mj",
    "measurement:measurement.inferences",
    "measurement:measurement.runs",
    "measurement:measurement.runs[].energy_j",
    "measurement:measurement.runs[].time_s",
    "measurement:measurement.setting",
    "measurement:measurement.setting.cpu_freq_khz",
    "measurement:measurement.setting.gpu_freq_hz",
    "measurement:measurement.setting.kind",
    "measurement:measurement.time_s",
    "measurement:measurement.wall_s",
    "measurement:type",
    "study:args",
    "study:backend",
    "study:baseline_batch",
    "study:budget",
    "study:device",
    "study:exploration",
    "study:exploration.race",
    "study:exploration.screen_inferences",
    "study:goal",
    "study:goal.limits",
    "study:goal.limits.max_slowdown",
    "study:goal.objective",
    "study:goal.pareto",
    "study:model",
    "study:prior",
    "study:protocol",
    "study:protocol.cv_target",
    "study:protocol.inferences",
    "study:protocol.max_runs",
    "study:protocol.min_runs",
    "study:protocol.min_window_s",
    "study:protocol.warmup_inferences",
    "study:seed",
    "study:space",
    "study:space.axes",
    "study:space.axes[].knob",
    "study:space.axes[].values",
    "study:strategy",
    "study:type",
];
const SWEEP_FIELDS: &[&str] = &[
    "backend",
    "baseline",
    "baseline[].batch_size",
    "baseline[].cv",
    "baseline[].energy_j",
    "baseline[].runs",
    "baseline[].time_s",
    "device",
    "grid",
    "grid[].avg_power_w",
    "grid[].batch_size",
    "grid[].cpu_freq_khz",
    "grid[].cv",
    "grid[].energy_j",
    "grid[].gpu_freq_hz",
    "grid[].runs",
    "grid[].time_s",
    "inferences",
    "min",
    "min.avg_power_w",
    "min.batch_size",
    "min.cpu_freq_khz",
    "min.cv",
    "min.energy_j",
    "min.gpu_freq_hz",
    "min.runs",
    "min.time_s",
    "model",
    "noise",
];
const SWEEP_CSV_COLUMNS: &[&str] = &[
    "cpu_freq_khz",
    "gpu_freq_hz",
    "batch_size",
    "energy_j",
    "time_s",
    "avg_power_w",
    "cv",
    "runs",
    "setting",
];
const PROFILE_FIELDS: &[&str] = &[
    "profile",
    "profile.backend",
    "profile.batch_size",
    "profile.board",
    "profile.cpu_freq_khz",
    "profile.energy_j",
    "profile.gpu_freq_hz",
    "profile.inferences",
    "profile.model",
    "profile.saving_pct",
];
const PARETO_CSV_COLUMNS: &[&str] = &[
    "n",
    "cpu_freq_khz",
    "gpu_freq_hz",
    "batch_size",
    "energy_j",
    "time_s",
    "energy_per_inference_mj",
    "latency_ms",
];

/// Every key path of a JSON value.
fn field_paths(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = match prefix {
                    "" => k.clone(),
                    _ => format!("{prefix}.{k}"),
                };
                out.insert(p.clone());
                field_paths(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                field_paths(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn paths_of(values: &[Value]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for v in values {
        field_paths(v, "", &mut out);
    }
    out.into_iter().collect()
}

fn csv_header(p: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(p).unwrap();
    text.lines()
        .next()
        .unwrap()
        .split(',')
        .map(String::from)
        .collect()
}

#[test]
fn output_field_names_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let study = [
        "tune", "-m", "resnet18", "-d", "nano", "--seed", "1", "--budget", "12",
    ];
    let (plain, limited) = (dir.path().join("tune"), dir.path().join("tunec"));
    edgetune()
        .args(study)
        .args(["--inferences", "320", "-q", "--out"])
        .arg(&plain)
        .assert()
        .success();
    edgetune()
        .args(study)
        .args([
            "--inferences",
            "320",
            "--max-slowdown",
            "1.5",
            "--pareto",
            "-q",
        ])
        .arg("--out")
        .arg(&limited)
        .assert()
        .success();
    let sweep = dir.path().join("sweep");
    edgetune()
        .args(["sweep", "-m", "resnet18", "-d", "nano", "--batch", "8"])
        .args(["--inferences", "320", "-q", "--out"])
        .arg(&sweep)
        .assert()
        .success();
    let reports = [plain.join("report.json"), limited.join("report.json")].map(|p| read_json(&p));
    assert_eq!(paths_of(&reports), REPORT_FIELDS);
    let mut journal = std::collections::BTreeSet::new();
    for d in [&plain, &limited] {
        for line in std::fs::read_to_string(d.join("journal.jsonl"))
            .unwrap()
            .lines()
        {
            let v: Value = serde_json::from_str(line).unwrap();
            let kind = v["type"].as_str().unwrap().to_string();
            journal.extend(paths_of(&[v]).into_iter().map(|p| format!("{kind}:{p}")));
        }
    }
    assert_eq!(journal.into_iter().collect::<Vec<_>>(), JOURNAL_FIELDS);
    assert_eq!(
        paths_of(&[read_json(&sweep.join("sweep.json"))]),
        SWEEP_FIELDS
    );
    assert_eq!(csv_header(&sweep.join("sweep.csv")), SWEEP_CSV_COLUMNS);
    assert_eq!(csv_header(&limited.join("pareto.csv")), PARETO_CSV_COLUMNS);
    let profile: toml::Value =
        toml::from_str(&std::fs::read_to_string(plain.join("profile.toml")).unwrap()).unwrap();
    let profile = serde_json::to_value(profile).unwrap();
    assert_eq!(paths_of(&[profile]), PROFILE_FIELDS);
}

#[test]
fn resume_takes_the_study_s_options_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    edgetune()
        .args([
            "tune",
            "-m",
            "mobilenet-v2",
            "-d",
            "nx",
            "--strategy",
            "random",
        ])
        .args([
            "--budget", "4", "--fix", "batch=8", "--seed", "5", "-q", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    // Only the folder and a larger budget: the rest comes from the journal.
    let o = edgetune()
        .arg("tune")
        .arg("--resume")
        .arg(&out)
        .args(["--budget", "6", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("from its journal, 2 measured now") && text.contains("4 measurements"),
        "{text}"
    );
    let r = read_json(&out.join("report.json"));
    assert_eq!(r["measured_configs"], 6);
    assert_eq!(
        (r["model"].as_str(), r["strategy"].as_str()),
        (Some("mobilenet-v2"), Some("random"))
    );
    assert!(r["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["batch_size"] == 8));
    // An option given now replaces the journal's, and the journal says it is another study.
    edgetune()
        .arg("tune")
        .arg("--resume")
        .arg(&out)
        .args(["--seed", "6", "--budget", "8"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("seed is 5 there but 6 now"));
}

#[test]
fn edgetune_s_own_errors_begin_with_a_lowercase_error() {
    let bad: [&[&str]; 4] = [
        &["tune", "-m", "no-such-net", "-d", "nano"],
        &["tune", "-m", "resnet18", "-d", "nano", "--poll-ms", "0"],
        &["tune", "-m", "resnet18", "--table", "/no/such/table.csv"],
        &["apply", "/no/such/profile.toml"],
    ];
    for args in bad {
        let o = edgetune().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        let first = err.lines().find(|l| !l.starts_with("note:")).unwrap_or("");
        assert!(first.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("Error:"), "{args:?}: {err}");
    }
}

/// Catalogue text reaches generated scripts and nvpmodel.conf only as the names sysfs and
/// nvpmodel allow: a command substitution in `gpu.devfreq`, or a newline that would add lines to
/// nvpmodel.conf, is refused with its field (exit 2), and nothing runs.
#[test]
fn catalogue_names_that_a_shell_or_nvpmodel_would_read_as_more_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pwned = dir.path().join("PWNED");
    let cases = [
        (
            "devfreq = \"57000000.gpu\"".to_string(),
            format!("devfreq = \"g$(touch {})\"", pwned.display()),
            "gpu.devfreq",
        ),
        (
            "nvpmodel_param = \"GPU\"".into(),
            "nvpmodel_param = \"GPU\\nCPU_ONLINE CORE_0 0\"".into(),
            "gpu.nvpmodel_param",
        ),
        (
            "name = \"NVIDIA Jetson Nano\"".into(),
            "name = \"Nano\\ntouch PWNED\"".into(),
            "board.name",
        ),
    ];
    for (i, (from, to, field)) in cases.iter().enumerate() {
        let cat = dir.path().join(format!("cat{i}"));
        for d in ["models", "search-spaces"] {
            std::fs::create_dir_all(cat.join(d)).unwrap();
            for e in std::fs::read_dir(root.join(d)).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), cat.join(d).join(e.file_name())).unwrap();
            }
        }
        let nano = cat.join("search-spaces/nano.toml");
        let text = std::fs::read_to_string(&nano).unwrap();
        assert!(text.contains(from.as_str()), "{from}");
        std::fs::write(&nano, text.replacen(from.as_str(), to, 1)).unwrap();
        edgetune()
            .current_dir(dir.path())
            .args([
                "tune", "-m", "resnet18", "-d", "nano", "-q", "--budget", "2",
            ])
            .arg("--catalog")
            .arg(&cat)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*field));
    }
    assert!(!pwned.exists());
    assert!(!dir.path().join("reports").exists());
}

/// Issue 25, case 6, as a user meets it: `--resume` of a finished study measures nothing, says
/// so, and writes reports with every configuration the journal holds, also after a resume that
/// asked for a lower budget.
#[test]
fn resuming_a_finished_study_measures_nothing_and_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e1");
    let rows = |d: &Path| -> (u64, f64) {
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("report.json")).unwrap()).unwrap();
        (
            r["measured_configs"].as_u64().unwrap(),
            r["tuning_time_s"].as_f64().unwrap(),
        )
    };
    edgetune()
        .args([
            "tune",
            "-q",
            "-m",
            "resnet18",
            "-d",
            "nano",
            "--objective",
            "edp",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let (first, time_s) = rows(&out);
    for extra in [&["--budget", "6"][..], &[]] {
        edgetune()
            .args(["tune", "--resume"])
            .arg(&out)
            .args(extra)
            .assert()
            .success()
            .stdout(predicate::str::contains("nothing left to measure"));
        assert_eq!(rows(&out), (first, time_s), "{extra:?}");
    }
}

/// Every objective's figures carry their unit in the summary (time: seconds for the workload).
#[test]
fn the_time_objective_is_printed_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    edgetune()
        .args([
            "tune",
            "-q",
            "-m",
            "alexnet",
            "-d",
            "nano",
            "--objective",
            "time",
        ])
        .args(["--budget", "6", "-o"])
        .arg(dir.path().join("out"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("objective time (for the workload): ").and(
                predicate::str::is_match(r" s at the recommendation, [0-9.]+ s at the baseline")
                    .unwrap(),
            ),
        );
}
