//! Fleets: one study measured by several workers through SQLite and a real PostgreSQL server
//! (started by scripts/test.sh, `EDGETUNE_TEST_POSTGRES`), `tune --storage`, `study report`.

mod common;

use common::{edgetune, json_of, signal, worker};
use edgetune::study::storage::{self, StoredRecord};
use edgetune::study::JournalRecord;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// The storages to test: SQLite in `dir`, and PostgreSQL when the test script started one
/// (required there: `EDGETUNE_REQUIRE_POSTGRES=1`).
fn storages(dir: &Path) -> Vec<String> {
    let mut v = vec![format!("sqlite:{}", dir.join("studies.db").display())];
    match std::env::var("EDGETUNE_TEST_POSTGRES") {
        Ok(url) => v.push(url),
        Err(_) => assert!(
            std::env::var("EDGETUNE_REQUIRE_POSTGRES").is_err(),
            "EDGETUNE_TEST_POSTGRES is not set: scripts/test.sh starts the server"
        ),
    }
    v
}

/// A study name no other test run uses (PostgreSQL's database is shared by the run).
fn unique(name: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{t:x}", std::process::id())
}

fn records(url: &str, name: &str) -> (Vec<StoredRecord>, usize) {
    let v = storage::open(url).unwrap().study(name).unwrap();
    (v.records, v.claims.len())
}

fn measured(recs: &[StoredRecord]) -> Vec<(edgetune::space::Config, String)> {
    recs.iter()
        .filter_map(|r| match &r.record {
            JournalRecord::Measurement { config, .. } => Some((*config, r.origin.board.clone())),
            _ => None,
        })
        .collect()
}

fn create(url: &str, name: &str, extra: &[&str]) {
    let mut c = edgetune();
    c.args(["study", "create", "-q", "--storage", url, "--study", name])
        .args([
            "--model",
            "resnet18",
            "--device",
            "nano",
            "--inferences",
            "800",
        ])
        .args(extra);
    c.assert().success();
}

/// `study create` measures nothing, so it does not say which backend would measure (a worker
/// brings its own).
#[test]
fn study_create_says_what_it_made_and_nothing_about_a_twin() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("c.db").display());
    let o = edgetune()
        .args(["study", "create", "--storage", &url, "--study", "c"])
        .args(["-m", "alexnet", "-d", "nano"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("created study `c`"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("digital twin"), "{err}");
}

/// `edgetune worker` on study `name` in `url` as board `board` (quiet; stdout discarded).
#[test]
fn a_worker_killed_mid_measurement_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for url in storages(dir.path()) {
        let name = unique("killed");
        create(
            &url,
            &name,
            &[
                "--budget",
                "6",
                "--seed",
                "5",
                "--no-race",
                "--screen-inferences",
                "0",
            ],
        );
        let worker = |board: &str| {
            let mut c = worker(&url, &name, board);
            c.args(["--twin-sleep", "0.012", "--lease-s", "1"])
                .stderr(std::process::Stdio::piped());
            c
        };
        let mut a = worker("a").spawn().unwrap();
        // Wait until `a` has written one result and claimed the next, then kill it mid-run (a
        // measurement takes about a second here: far longer than reading the claim).
        let t0 = Instant::now();
        let victim = loop {
            let v = storage::open(&url).unwrap().study(&name).unwrap();
            if !measured(&v.records).is_empty() {
                if let Some(c) = v.claims.first() {
                    break c.key.config;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "worker a never claimed a second configuration"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(signal(a.id(), "-KILL"));
        a.wait().unwrap();
        let (before, _) = records(&url, &name);
        let by_a: HashSet<_> = measured(&before).into_iter().map(|(c, _)| c).collect();
        assert!(
            !by_a.contains(&victim),
            "{url}: the victim's result was written before the kill"
        );
        // A second worker takes the dead claim once its lease runs out, and finishes the study.
        let out = worker("b").output().unwrap();
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (after, live_claims) = records(&url, &name);
        let all = measured(&after);
        let configs: HashSet<_> = all.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            all.len(),
            6,
            "{url}: the budget's measurements, each once: {all:?}"
        );
        assert_eq!(configs.len(), 6, "{url}: no configuration twice");
        assert!(
            all.iter().any(|(c, b)| *c == victim && b == "b"),
            "{url}: the killed worker's configuration was measured by b"
        );
        assert!(
            by_a.iter().all(|c| configs.contains(c)),
            "{url}: a's results are kept"
        );
        assert_eq!(live_claims, 0, "{url}: no claim left behind");
        // Both boards measured their own baseline.
        let baselines: HashSet<_> = after
            .iter()
            .filter(|r| matches!(r.record, JournalRecord::Baseline { .. }))
            .map(|r| r.origin.board.clone())
            .collect();
        assert_eq!(
            baselines,
            HashSet::from(["a".to_string(), "b".to_string()]),
            "{url}"
        );
    }
}

#[test]
fn study_report_writes_the_files_tune_wrote_for_the_same_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    let (tuned, reported) = (dir.path().join("tuned"), dir.path().join("reported"));
    edgetune()
        .args([
            "tune",
            "-q",
            "--storage",
            &url,
            "--study",
            "t",
            "--model",
            "resnet18",
        ])
        .args(["--device", "nano", "--budget", "10", "--seed", "2", "--out"])
        .arg(&tuned)
        .assert()
        .success();
    edgetune()
        .args([
            "study",
            "report",
            "--storage",
            &url,
            "--study",
            "t",
            "--out",
        ])
        .arg(&reported)
        .assert()
        .success();
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&tuned), names(&reported));
    assert!(names(&tuned).contains(&"report.json".to_string()));
    for f in names(&tuned) {
        let (a, b) = (
            std::fs::read_to_string(tuned.join(&f)).unwrap(),
            std::fs::read_to_string(reported.join(&f)).unwrap(),
        );
        assert!(a == b, "{f} differs:\n--- tune\n{a}\n--- study report\n{b}");
    }
}

#[test]
fn tune_with_a_storage_resumes_from_it_and_never_overwrites_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = storages(dir.path());
    all.push(format!(
        "journal:{}",
        dir.path().join("journal-study").display()
    ));
    for url in all {
        let name = unique("resume");
        let tune = |extra: &[&str]| {
            let mut c = edgetune();
            c.current_dir(dir.path())
                .args(["tune", "-q", "--storage", &url, "--study", &name])
                .args(["--model", "resnet18", "--device", "nano", "--seed", "3"])
                .args(extra);
            c
        };
        tune(&["--budget", "5"]).assert().success();
        let out = tune(&["--budget", "5"]).assert().code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains("already has a study named"), "{err}");
        // --resume alone: the study's options from the storage, a larger budget given now.
        let mut c = edgetune();
        c.current_dir(dir.path()).args([
            "tune",
            "-q",
            "--storage",
            &url,
            "--study",
            &name,
            "--resume",
            "--budget",
            "8",
        ]);
        let out = c.assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            text.contains(&format!("resumed the study `{name}` in {url}: 5 measurements from the storage, 3 measured now")),
            "{text}"
        );
        let (recs, _) = records(&url, &name);
        assert_eq!(measured(&recs).len(), 8, "{url}");
    }
}

#[test]
fn bad_storages_and_names_exit_2_with_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    let missing = format!("sqlite:{}", dir.path().join("missing.db").display());
    create(&url, "other", &["--budget", "2"]);
    let cases: [(&[&str], &str); 8] = [
        (
            &["bench-fleet", "--seeds", "1", "--prior", "earlier-tune"],
            "bench-fleet takes --prior twin or none",
        ),
        (
            &["worker", "--board-id", "x"],
            "worker needs --storage URL and --study NAME",
        ),
        (&["study", "list", "--storage", "mysql://x"], "sqlite:PATH"),
        (
            &["study", "report", "--storage", &url, "--study", "nope"],
            "no study named `nope`",
        ),
        (
            &["worker", "--storage", &url, "--study", "nope"],
            "no study named `nope`",
        ),
        (
            &["study", "list", "--storage", &missing],
            "there is no database there",
        ),
        (
            &[
                "study",
                "create",
                "--storage",
                &url,
                "--study",
                "a b",
                "--model",
                "resnet18",
                "--device",
                "nano",
            ],
            "a study name is",
        ),
        (
            &[
                "study",
                "create",
                "--storage",
                "journal:x",
                "--study",
                "j",
                "--model",
                "resnet18",
                "--device",
                "nano",
            ],
            "workers share a study",
        ),
    ];
    for (args, says) in cases {
        let out = edgetune()
            .current_dir(dir.path())
            .args(args)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let listed = json_of(edgetune().args(["study", "list", "--json", "--storage", &url]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn a_stored_study_never_decides_what_runs_or_where_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let url = format!("sqlite:{}", db.display());
    create(&url, "s", &["--budget", "2"]);
    // Whoever can write to the database adds a command and another board's tree.
    let c = rusqlite::Connection::open(&db).unwrap();
    let header: String = c
        .query_row("SELECT header FROM edgetune_studies", [], |r| r.get(0))
        .unwrap();
    let mut h: serde_json::Value = serde_json::from_str(&header).unwrap();
    assert!(!h["args"].to_string().contains("workload-cmd"), "{h}");
    let pwned = dir.path().join("PWNED");
    for a in [
        "--backend".to_string(),
        "jetson".into(),
        "--workload-cmd".into(),
        format!("touch {}", pwned.display()),
        "--sysfs-root".into(),
        dir.path().join("other").display().to_string(),
    ] {
        h["args"].as_array_mut().unwrap().push(a.into());
    }
    c.execute("UPDATE edgetune_studies SET header = ?1", [h.to_string()])
        .unwrap();
    let before = std::fs::read(&db).unwrap();
    let out = worker(&url, "s", "w1").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("carries --workload-cmd, --sysfs-root, which edgetune never records"),
        "{err}"
    );
    let report = edgetune()
        .args(["study", "report", "--storage", &url, "--study", "s", "-o"])
        .arg(dir.path().join("rep"))
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(2));
    assert!(!pwned.exists());
    assert!(!dir.path().join("other").exists() && !dir.path().join("rep").exists());
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was written"
    );
    // A journal's header, tampered the same way, is refused by --resume.
    let out = dir.path().join("o");
    edgetune()
        .args([
            "tune", "-q", "-m", "resnet18", "-d", "nano", "--budget", "2", "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let journal = out.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let mut h: serde_json::Value = serde_json::from_str(head).unwrap();
    for a in ["--catalog", "/nonexistent", "--workload-cmd", "touch PWNED"] {
        h["args"].as_array_mut().unwrap().push(a.into());
    }
    std::fs::write(&journal, format!("{h}\n{rest}")).unwrap();
    let listing = |d: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let files = listing(&out);
    let o = edgetune()
        .current_dir(dir.path())
        .arg("tune")
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("carries --catalog, --workload-cmd"), "{err}");
    assert_eq!(listing(&out), files);
    assert!(!dir.path().join("PWNED").exists());
    // And tune's command-line options for this machine are never recorded.
    let o = edgetune()
        .args(["study", "create", "-q", "--storage", &url, "--study", "t"])
        .args(["-m", "resnet18", "-d", "nano", "--backend", "jetson"])
        .args([
            "--sysfs-root",
            "/nonexistent",
            "--state-file",
            "/tmp/x.json",
        ])
        .output()
        .unwrap();
    if o.status.success() {
        let v = storage::open(&url).unwrap().study("t").unwrap();
        let args = v.header.args.join(" ");
        assert!(
            !args.contains("sysfs-root") && !args.contains("state-file"),
            "{args}"
        );
    }
}

#[test]
fn a_study_of_bench_fleet_in_a_storage_can_be_reported() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("b.db").display());
    edgetune()
        .current_dir(dir.path())
        .args([
            "bench-fleet",
            "--seeds",
            "1",
            "--workers",
            "2",
            "--budget",
            "8",
        ])
        .args(["--twin-sleep", "0", "--prior", "none", "--storage", &url])
        .args(["--out", "bench"])
        .assert()
        .success();
    let listed = json_of(edgetune().args(["study", "list", "--json", "--storage", &url]));
    let name = listed[0]["name"].as_str().unwrap().to_string();
    edgetune()
        .current_dir(dir.path())
        .args(["study", "report", "--storage", &url, "--study", &name])
        .args(["--out", "report"])
        .assert()
        .success();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["measured_configs"], 8, "{report}");
    assert_eq!(report["prior"], "none", "{report}");
    assert_eq!(report["boards"].as_array().unwrap().len(), 2, "{report}");
}

#[test]
fn two_boards_differing_by_5_percent_static_power_agree_on_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // Full-length runs (no racing, no screening): the noise of a short window is not what is
    // tested here. bench-fleet --workers 2 --static-power-pct 5 gives the spread over seeds.
    let rep = pair_report(dir.path(), "pair", "--twin-static-power-pct", ("hot", "5"));
    let boards = rep["boards"].as_array().expect("two boards in the report");
    assert_eq!(boards.len(), 2, "{rep}");
    // Issue 28: the report says which board measured each row (the boards whose runs were
    // pooled into a confirmation), and each board's baseline.
    let rows = rep["measurements"].as_array().unwrap();
    for m in rows {
        let by: Vec<&str> = m["board"].as_str().unwrap().split(" + ").collect();
        assert!(by.iter().all(|b| ["plain", "hot"].contains(b)), "{m}");
    }
    let md = std::fs::read_to_string(dir.path().join("rep/report.md")).unwrap();
    assert!(
        md.contains("| # | board |") && md.contains("## Boards"),
        "{md}"
    );
    for b in boards {
        let line = format!(
            "| {} | sim | {:.1} |",
            b["board"].as_str().unwrap(),
            b["baseline_energy_j"].as_f64().unwrap()
        );
        assert!(md.contains(&line), "{line} not in {md}");
    }
    let spread = rep["board_spread_pct"].as_f64().unwrap();
    assert!((1.0..6.0).contains(&spread), "baselines spread {spread} %");
    // Both savings, pooled over the boards: the recommendation at the full protocol and the
    // DVFS baselines at the study's batch and at the recommendation's, each board's runs
    // divided by its fitted offset, so the pool is near the boards' geometric mean.
    assert_eq!(rep["best_confirmed"], serde_json::json!(true), "{rep}");
    assert!(rep["saving_pct"].as_f64().is_some(), "{rep}");
    let best_batch = rep["best"]["batch_size"].as_u64().unwrap();
    if best_batch != rep["baseline"]["batch_size"].as_u64().unwrap() {
        assert!(rep["saving_same_batch_pct"].as_f64().is_some(), "{rep}");
        assert_eq!(
            rep["baseline_same_batch"]["batch_size"].as_u64(),
            Some(best_batch)
        );
    }
    let base: Vec<f64> = boards
        .iter()
        .map(|b| b["baseline_energy_j"].as_f64().unwrap())
        .collect();
    let pooled = rep["baseline"]["energy_j"].as_f64().unwrap();
    let middle = (base[0] * base[1]).sqrt();
    assert!(
        (pooled / middle - 1.0).abs() < 0.03,
        "pooled baseline {pooled} J against the boards' {base:?}"
    );
    assert!(
        md.contains("the savings compare the pooled recommendation with the pooled DVFS baselines"),
        "{md}"
    );
    for regret in regrets_pct(&rep["best"], 5.0) {
        // Two workers claim in whatever order their runs finish, so the measured set differs
        // from run to run. In 29 runs (24 of them four at a time) it was 0 % for most boards
        // and at most 1.45 % (1 % failed 2 of them): the noise of the runs the final choice
        // compares, not a board's offset.
        assert!(regret < 2.0, "{regret:.2} % above the minimum of one board");
    }
}

/// Issue 28: what must meet the full protocol is spread over the boards a run at a time and
/// pooled: each board measures one run of the DVFS baseline (three boards: the pool's three
/// runs), and the recommendation's confirmation is made of runs of several boards.
#[test]
fn three_boards_measure_the_baseline_and_the_confirmation_a_run_each_and_pool_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    create(&url, "spread", &["--budget", "9", "--seed", "2"]);
    let spawn = |board: &str| {
        worker(&url, "spread", board)
            .args(["--twin-sleep", "0.004", "--lease-s", "5"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let boards = ["a", "b", "c"];
    let said: Vec<String> = boards
        .map(spawn)
        .into_iter()
        .map(|w| {
            let o = w.wait_with_output().unwrap();
            assert!(o.status.success());
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
        .collect();
    let (recs, _) = records(&url, "spread");
    let base_runs = |board: &str| -> usize {
        recs.iter()
            .filter(|r| r.origin.board == board)
            .map(|r| match &r.record {
                JournalRecord::Baseline { measurement } if measurement.batch_size == 4 => {
                    measurement.runs.len()
                }
                _ => 0,
            })
            .sum()
    };
    for b in boards {
        // One run each, more only while the pool's CV is over the target.
        assert!((1..=3).contains(&base_runs(b)), "{b}: {}", base_runs(b));
    }
    let share_boards: HashSet<&str> = recs
        .iter()
        .filter(|r| matches!(r.record, JournalRecord::Share { .. }))
        .map(|r| r.origin.board.as_str())
        .collect();
    assert!(share_boards.len() >= 2, "shares by {share_boards:?}");
    assert!(
        said.iter()
            .any(|l| l.contains("of confirmations at the full protocol")),
        "{said:?}"
    );
    let rep = report_json(&url, "spread", &dir.path().join("rep"));
    assert_eq!(rep["best_confirmed"], serde_json::json!(true), "{rep}");
    let best = &rep["best"];
    let row = rep["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            ["cpu_freq_khz", "gpu_freq_hz", "batch_size"]
                .iter()
                .all(|k| m[k] == best[k])
        })
        .expect("the recommendation's row");
    assert!(row["board"].as_str().unwrap().contains(" + "), "{row}");
    let all_runs: usize = boards.iter().map(|b| base_runs(b)).sum();
    assert_eq!(
        rep["baseline"]["runs"].as_u64(),
        Some(all_runs as u64),
        "the pooled baseline holds every board's runs: {rep}"
    );
}

/// A Nano ResNet-18 study of budget 40 at full-length runs, measured at once by board `plain`
/// and by `other` (its name, and its value of the twin's `flag`); its report.json.
fn pair_report(dir: &Path, name: &str, flag: &str, other: (&str, &str)) -> serde_json::Value {
    let url = format!("sqlite:{}", dir.join("s.db").display());
    edgetune()
        .args(["study", "create", "-q", "--storage", &url, "--study", name])
        .args(["--model", "resnet18", "--device", "nano", "--budget", "40"])
        .args(["--seed", "3", "--no-race", "--screen-inferences", "0"])
        .assert()
        .success();
    let worker = |board: &str, value: &str| {
        worker(&url, name, board)
            .args([flag, value, "--twin-sleep", "0.0005"])
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (worker("plain", "0"), worker(other.0, other.1));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    report_json(&url, name, &dir.join("rep"))
}

/// `study report --json` of study `name` in `url`, its files written into `out`.
fn report_json(url: &str, name: &str, out: &Path) -> serde_json::Value {
    json_of(
        edgetune()
            .args([
                "study",
                "report",
                "--json",
                "--storage",
                url,
                "--study",
                name,
            ])
            .arg("--out")
            .arg(out),
    )
}

/// How far a Nano ResNet-18 recommendation (report.json's `best`) is above the noiseless
/// minimum of the catalogue's twin and of one with `static_pct` more static power, percent.
fn regrets_pct(best: &serde_json::Value, static_pct: f64) -> Vec<f64> {
    use edgetune::catalog::Catalog;
    use edgetune::space::{Config, Space};
    let config = Config::new(
        best["cpu_freq_khz"].as_u64().unwrap(),
        best["gpu_freq_hz"].as_u64().unwrap(),
        best["batch_size"].as_u64().unwrap() as u32,
    );
    let cat = Catalog::load(None).unwrap();
    let (nano, model) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
    let space = Space::new(nano, model, None, &[]).unwrap();
    let k = space.index(&space.point_of(&config).unwrap());
    [nano.clone(), nano.with_static_power_pct(static_pct)]
        .iter()
        .map(|board| {
            let truth: Vec<f64> = edgetune::twin::true_grid(board, model, &space, 3200)
                .iter()
                .map(|p| p.energy_j)
                .collect();
            let min = truth.iter().copied().fold(f64::INFINITY, f64::min);
            let regret = (truth[k] / min - 1.0) * 100.0;
            eprintln!("{config}: {regret:.2} % above this board's noiseless minimum");
            regret
        })
        .collect()
}

#[test]
fn a_board_whose_first_baseline_window_reads_10_percent_high_gets_its_true_offset() {
    let dir = tempfile::tempdir().unwrap();
    let rep = pair_report(dir.path(), "bad", "--twin-first-run-pct", ("warming", "10"));
    // The warming board's first baseline run read 10 % high; the boards are one twin, so each
    // offset's truth is 0.
    for b in rep["boards"].as_array().unwrap() {
        let pct = b["offset_pct"].as_f64().unwrap();
        assert!(pct.abs() < 2.0, "{b}");
    }
    for regret in regrets_pct(&rep["best"], 0.0) {
        assert!(regret < 1.0, "{regret:.2} % above the noiseless minimum");
    }
}

#[test]
fn ctrl_c_gives_a_worker_s_claim_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    create(
        &url,
        "int",
        &["--budget", "6", "--no-race", "--screen-inferences", "0"],
    );
    let mut w = worker(&url, "int", "a");
    w.args(["--twin-sleep", "0.004", "--lease-s", "600"])
        .stderr(std::process::Stdio::piped());
    let w = w.spawn().unwrap();
    let t0 = Instant::now();
    loop {
        let (_, live) = records(&url, "int");
        if live > 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the worker never claimed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(signal(w.id(), "-INT"));
    let out = w.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("its claim went back to the study"), "{err}");
    // Released at once, not left to a 600 s lease.
    let v = storage::open(&url).unwrap().study("int").unwrap();
    assert!(
        v.claims.is_empty() && v.expired.is_empty(),
        "{:?}",
        v.claims
    );
}

/// A storage URL's password is never printed: not by `study create` (its summary, a second
/// create), a connection error, "has no study named", or a worker's interrupt message.
#[test]
fn a_storage_password_is_never_printed() {
    const SECRET: &str = "S3cr3t-pw";
    let check = |what: &str, o: &std::process::Output| {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!all.contains(SECRET), "{what}: {all}");
        assert!(all.contains("***"), "{what}: {all}");
    };
    // Nothing listens on port 1: the connection error names the URL, not its password.
    let down = format!("postgresql://edgetune:{SECRET}@127.0.0.1:1/edgetune");
    let o = edgetune()
        .args(["study", "list", "--storage", &down])
        .output()
        .unwrap();
    assert!(!o.status.success());
    check("connection error", &o);
    let down = format!("host=127.0.0.1 port=1 password={SECRET} user=edgetune");
    let o = edgetune()
        .args([
            "study",
            "list",
            "--storage",
            &format!("postgresql://x?{down}"),
        ])
        .output()
        .unwrap();
    check("key=value", &o);
    let Ok(url) = std::env::var("EDGETUNE_TEST_POSTGRES") else {
        return;
    };
    // The test server trusts the loopback, so any password connects.
    let url = url.replacen("edgetune@", &format!("edgetune:{SECRET}@"), 1);
    let name = unique("pw");
    let create = || {
        edgetune()
            .args(["study", "create", "--storage", &url, "--study", &name])
            .args(["-m", "resnet18", "-d", "nano", "--budget", "3"])
            .output()
            .unwrap()
    };
    let o = create();
    assert!(o.status.success());
    check("study create", &o);
    check("a second study create", &create());
    let o = edgetune()
        .args([
            "study",
            "report",
            "--storage",
            &url,
            "--study",
            "no-such-study",
        ])
        .output()
        .unwrap();
    check("no study named", &o);
    let mut w = worker(&url, &name, "w1");
    w.args(["--twin-sleep", "0.05"])
        .stderr(std::process::Stdio::piped());
    let child = w.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(common::signal(child.id(), "-INT"));
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    check("worker interrupted", &o);
}

#[test]
fn redact_hides_every_form_of_password() {
    use edgetune::study::storage::redact;
    assert_eq!(
        redact("postgresql://u:pw@h:5/db"),
        "postgresql://u:***@h:5/db"
    );
    assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
    assert_eq!(
        redact("postgres://u:p@w@h/db?password=x&sslmode=off"),
        "postgres://u:***@h/db?password=***&sslmode=off"
    );
    assert_eq!(
        redact("host=h password='a b' user=u"),
        "host=h password=*** user=u"
    );
    assert_eq!(redact("sqlite:/tmp/s.db"), "sqlite:/tmp/s.db");
}

/// Issue 25, case 2: every reader of a stored study checks its records (the check a resume
/// makes): a negative energy, a duplicated row, a schema version no edgetune writes are exit 2
/// naming the study and the record, for `study report`, `worker` and `tune --resume`; one bad
/// study is listed as unreadable without hiding the others; a claim leased far beyond any
/// `--lease-s` does not hold its configuration forever.
#[test]
fn stored_records_are_checked_by_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let url = format!("sqlite:{}", db.display());
    for name in ["bad", "good"] {
        create(&url, name, &["--budget", "2"]);
        let o = worker(&url, name, "w1").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let c = rusqlite::Connection::open(&db).unwrap();
    let (id, text): (i64, String) = c
        .query_row(
            "SELECT r.id, r.record FROM edgetune_records r JOIN edgetune_studies s ON s.id = r.study_id WHERE s.name = 'bad' AND r.kind = 'measurement' ORDER BY r.id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["measurement"]["energy_j"] = (-1000.0).into();
    c.execute(
        "UPDATE edgetune_records SET record = ?1 WHERE id = ?2",
        rusqlite::params![v.to_string(), id],
    )
    .unwrap();
    let refused = |args: &[&str]| {
        let o = edgetune().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("study `bad`") && err.contains(&format!("record {id}")),
            "{err}"
        );
        assert!(err.contains("energy must be positive"), "{err}");
    };
    let out = dir.path().join("rep");
    let out_s = out.display().to_string();
    refused(&[
        "study",
        "report",
        "--storage",
        &url,
        "--study",
        "bad",
        "-o",
        &out_s,
    ]);
    assert!(!out.exists());
    refused(&["worker", "--storage", &url, "--study", "bad", "-q"]);
    refused(&[
        "tune",
        "--storage",
        &url,
        "--study",
        "bad",
        "--resume",
        "-q",
    ]);
    // 0 and 1e308 are no energies either.
    for e in [0.0, 1e308] {
        v["measurement"]["energy_j"] = e.into();
        c.execute(
            "UPDATE edgetune_records SET record = ?1 WHERE id = ?2",
            rusqlite::params![v.to_string(), id],
        )
        .unwrap();
        refused(&["study", "report", "--storage", &url, "--study", "bad"]);
    }
    let o = edgetune()
        .args(["study", "list", "--storage", &url])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(
        listed.contains("bad") && listed.contains("unreadable"),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("good") && l.contains("2/2")),
        "{listed}"
    );
    // Rows duplicated behind the unique index's back: refused, not a worker that loops.
    create(&url, "dup", &["--budget", "3"]);
    let o = worker(&url, "dup", "w1")
        .args(["--budget", "3"])
        .output()
        .unwrap();
    assert!(o.status.success());
    c.execute_batch(
        "DROP INDEX edgetune_records_once;
         INSERT INTO edgetune_records (study_id, kind, config, record, board, worker, backend, created_s)
           SELECT study_id, kind, config, record, board, worker, backend, created_s FROM edgetune_records
           WHERE kind = 'measurement' AND study_id = (SELECT id FROM edgetune_studies WHERE name = 'dup');",
    )
    .unwrap();
    let o = worker(&url, "dup", "w2").timeout_output(Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("measured twice"));
    // A claim leased until 1e18 counts as expired: the study still ends.
    create(&url, "lease", &["--budget", "2"]);
    c.execute(
        r#"INSERT INTO edgetune_claims (study_id, config, board, worker, backend, lease_until_s) SELECT id, '{"cpu_freq_khz":1479000,"gpu_freq_hz":921600000,"batch_size":4}', 'x', 'x', 'sim', 1e18 FROM edgetune_studies WHERE name = 'lease'"#,
        [],
    )
    .unwrap();
    let o = worker(&url, "lease", "w1").timeout_output(Duration::from_secs(60));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A schema version no edgetune writes: exit 2, not a panic.
    c.execute("UPDATE edgetune_schema SET version = -5", [])
        .unwrap();
    let o = edgetune()
        .args(["study", "list", "--storage", &url])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `c` (stderr captured), killing it after `limit`.
trait TimeoutOutput {
    fn timeout_output(&mut self, limit: Duration) -> std::process::Output;
}

impl TimeoutOutput for std::process::Command {
    fn timeout_output(&mut self, limit: Duration) -> std::process::Output {
        let mut child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() > limit {
                child.kill().unwrap();
                panic!("still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

/// Issue 25, case 1: a study made with `--prior DIR` stores the prior's content, not the path:
/// workers and resumes never read a folder the stored arguments name (gone here), and a prior
/// changed in the database is refused.
#[test]
fn a_prior_from_an_earlier_tune_is_stored_with_the_study_not_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let earlier = dir.path().join("earlier");
    edgetune()
        .args([
            "tune", "-q", "-m", "resnet18", "-d", "nano", "--budget", "5", "-o",
        ])
        .arg(&earlier)
        .assert()
        .success();
    let db = dir.path().join("s.db");
    let url = format!("sqlite:{}", db.display());
    edgetune()
        .args(["study", "create", "-q", "--storage", &url, "--study", "p"])
        .args([
            "-m",
            "mobilenet-v2",
            "-d",
            "nano",
            "--budget",
            "3",
            "--prior",
        ])
        .arg(&earlier)
        .assert()
        .success();
    // A tune of another model with an earlier tune's folder as its prior.
    let tune_with_prior = |prior: &Path, out: &Path| {
        let mut c = edgetune();
        c.args([
            "tune",
            "-q",
            "-m",
            "mobilenet-v2",
            "-d",
            "nano",
            "--budget",
            "3",
        ])
        .arg("--prior")
        .arg(prior)
        .arg("-o")
        .arg(out);
        c
    };
    let tuned = dir.path().join("tuned");
    tune_with_prior(&earlier, &tuned).assert().success();
    std::fs::rename(&earlier, dir.path().join("moved")).unwrap();
    let v = storage::open(&url).unwrap().study("p").unwrap();
    let args = v.header.args.join(" ");
    assert!(
        args.contains("--prior stored") && !args.contains("earlier"),
        "{args}"
    );
    assert!(v.header.prior_grid.is_some());
    let o = worker(&url, "p", "w1").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = edgetune()
        .args(["tune", "-q", "--budget", "4", "--resume"])
        .arg(&tuned)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A stored prior that does not fit the study's space is refused.
    let c = rusqlite::Connection::open(&db).unwrap();
    let mut h: serde_json::Value = serde_json::from_str(
        &c.query_row("SELECT header FROM edgetune_studies", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap(),
    )
    .unwrap();
    h["prior_grid"]["value"] = serde_json::json!([1.0, 2.0]);
    c.execute("UPDATE edgetune_studies SET header = ?1", [h.to_string()])
        .unwrap();
    let o = edgetune()
        .args(["study", "report", "--storage", &url, "--study", "p", "-o"])
        .arg(dir.path().join("rep"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("does not fit its search space"), "{err}");
    // An earlier tune's journal is input too: a record in it that is not one is refused.
    let moved = dir.path().join("moved");
    let journal = moved.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let bad = text.replacen("\"energy_j\":", "\"energy_j\":-", 3);
    std::fs::write(&journal, bad).unwrap();
    let o = tune_with_prior(&moved, &dir.path().join("t2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("journal.jsonl:") && err.contains("energy must be positive"),
        "{err}"
    );
}

/// Issue 25, case 8: a worker whose SQLite file is deleted under it stops with an error (its
/// results are not going anywhere), and nothing makes a new empty database there; a worker's
/// own `--budget` is refused.
#[test]
fn a_worker_whose_database_is_deleted_stops_and_a_budget_of_its_own_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let url = format!("sqlite:{}", db.display());
    create(&url, "s", &["--budget", "6"]);
    let o = worker(&url, "s", "w1")
        .args(["--budget", "99"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--budget 99"));
    let mut w = worker(&url, "s", "w1");
    w.args(["--twin-sleep", "0.02", "--lease-s", "1"])
        .stderr(std::process::Stdio::piped());
    let child = w.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    for f in ["s.db", "s.db-wal", "s.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let t0 = Instant::now();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(t0.elapsed() < Duration::from_secs(60));
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("removed or replaced"), "{err}");
    assert!(!db.exists(), "a new database was made");
}

#[test]
fn a_fleet_on_the_real_table_finishes_and_says_its_recommendation_is_short_of_the_protocol() {
    // Two workers replay the recorded Xavier NX table (one reading a configuration): the
    // confirmation has no reading left, which is reported, not an error, as `tune` does.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("s.db").display());
    let table =
        common::sysfs_tree::fixture_dir("tables/loudva-xavier-nx-inceptionv3-powermodes.csv");
    edgetune()
        .args([
            "study",
            "create",
            "-q",
            "--storage",
            &url,
            "--study",
            "real",
        ])
        .args(["-m", "inceptionv3", "-d", "xavier-nx", "--table"])
        .arg(&table)
        .assert()
        .success();
    let worker = |board: &str| {
        worker(&url, "real", board)
            .arg("--table")
            .arg(&table)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (worker("a"), worker("b"));
    let said: String = [a, b]
        .into_iter()
        .map(|w| {
            let o = w.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{err}");
            String::from_utf8_lossy(&o.stdout).to_string()
        })
        .collect();
    assert!(
        said.contains("could not confirm 1 candidate at the full protocol"),
        "{said}"
    );
    let rep = report_json(&url, "real", &dir.path().join("rep"));
    // The single-process tune of this table recommends power mode 3 at batch 17 too
    // (tests/replay_tables.rs).
    assert_eq!(rep["best"]["power_mode"], serde_json::json!(3), "{rep}");
    assert_eq!(rep["best"]["batch_size"], serde_json::json!(17), "{rep}");
    assert_eq!(rep["best_confirmed"], serde_json::json!(false), "{rep}");
    assert!(rep["saving_same_batch_pct"].as_f64().is_some(), "{rep}");
}
