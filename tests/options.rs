//! Every numeric option of every command, fed the values that break programs (0, -1, NaN,
//! infinity, 1e308, 2^32), ends with exit code 0 or 2 within seconds: never a panic (101), an
//! abort (134), a failure at run time (1) or a hang. The options come from clap's own command
//! definition, so an option added later is walked too. A value clap refuses (exit 2, before
//! anything runs) is judged in this process; every value it accepts runs the binary (which
//! loads libtorch with the `torch` feature: a process for each of the 400-odd cases took
//! minutes there).

mod common;

#[allow(dead_code, unused_imports)]
#[path = "../src/bounds.rs"]
mod bounds;
#[allow(dead_code, unused_imports)]
#[path = "../src/cli.rs"]
mod cli;

use clap::{CommandFactory, Parser};
use std::any::TypeId;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const VALUES: [&str; 6] = ["0", "-1", "NaN", "inf", "1e308", "4294967296"];

/// Options that carry numbers in a string (lists), walked as the numeric ones are.
const NUMERIC_LISTS: [&str; 3] = ["workers", "batch_sizes", "batch"];

/// What each command needs to run at all, quickly (on the twin), as (option id, arguments);
/// the option under test replaces its own. Every command with a numeric option must be here.
fn base(path: &str, db: &str) -> Vec<(&'static str, Vec<String>)> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let model = ("model", v(&["-m", "resnet18"]));
    let nano = ("device", v(&["-d", "nano"]));
    let quick = [
        ("quiet", v(&["-q"])),
        ("min_runs", v(&["--min-runs", "1"])),
        ("max_runs", v(&["--max-runs", "2"])),
    ];
    match path {
        "tune" => [model, nano, ("budget", v(&["--budget", "2"]))]
            .into_iter()
            .chain(quick)
            .collect(),
        "study create" => vec![
            model,
            nano,
            ("budget", v(&["--budget", "2"])),
            ("storage", v(&["--storage", &format!("sqlite:{db}")])),
            ("study", v(&["--study", "walk"])),
        ],
        "worker" => vec![
            ("storage", v(&["--storage", &format!("sqlite:{db}")])),
            ("study", v(&["--study", "walk"])),
            ("quiet", v(&["-q"])),
        ],
        "sweep" => [model, nano, ("batch", v(&["--batch", "8"]))]
            .into_iter()
            .chain(quick)
            .collect(),
        "measure" => [
            model,
            nano,
            ("cpu_freq", v(&["--cpu-freq", "1479MHz"])),
            ("gpu_freq", v(&["--gpu-freq", "921.6MHz"])),
            ("batch", v(&["-b", "8"])),
        ]
        .into_iter()
        .chain(quick)
        .collect(),
        "baseline" => [model, nano, ("batch", v(&["-b", "8"]))]
            .into_iter()
            .chain(quick)
            .collect(),
        "bench" => vec![
            ("strategies", v(&["--strategies", "random"])),
            ("models", v(&["--models", "resnet18"])),
            ("devices", v(&["--devices", "nano"])),
            ("seeds", v(&["--seeds", "1"])),
            ("budget", v(&["--budget", "2"])),
        ],
        "bench-fleet" => vec![
            ("workers", v(&["--workers", "1"])),
            ("seeds", v(&["--seeds", "1"])),
            ("budget", v(&["--budget", "3"])),
            // Its workers sleep 0.01 s per simulated second by default: seconds a case.
            ("twin_sleep", v(&["--twin-sleep", "0"])),
        ],
        "emulate" => vec![
            ("board", v(&["-d", "nano"])),
            ("root", v(&["--root", "vb"])),
        ],
        "emulate-infer" => vec![
            ("root", v(&["--root", "vb"])),
            model,
            ("batch", v(&["-b", "8"])),
            ("inferences", v(&["--inferences", "32"])),
        ],
        "infer" => vec![model],
        "bench-torch" => vec![],
        // Its only number is --threads, every hostile value of which clap refuses.
        "serve" => vec![("bind", v(&["--bind", "127.0.0.1:0"]))],
        other => panic!("the walk has no arguments for `{other}`: add them to base()"),
    }
}

/// Every (command path, option id, long flag) whose value is a number or a list of numbers.
fn numeric_options() -> Vec<(String, String, String)> {
    let numeric = [
        TypeId::of::<f64>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
    ];
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), cli::Cli::command())];
    while let Some((path, mut cmd)) = stack.pop() {
        cmd.build();
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            let Some(long) = a.get_long() else { continue };
            let typed = numeric.iter().any(|t| a.get_value_parser().type_id() == *t);
            let list = NUMERIC_LISTS.contains(&id) && a.get_action().takes_values();
            if (typed || list) && !path.is_empty() {
                out.push((path.clone(), id.to_string(), format!("--{long}")));
            }
        }
        for s in cmd.get_subcommands() {
            let p = [path.as_str(), s.get_name()].join(" ").trim().to_string();
            stack.push((p, s.clone()));
        }
    }
    out
}

/// Runs the command (in its own folder, killed after `limit`); its exit code, or None when it
/// had to be killed.
fn run(args: &[String], limit: Duration) -> Option<i32> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::std_edgetune();
    c.args(args)
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s.code().unwrap_or(128 + 9));
        }
        if t0.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_numeric_option_of_every_command_exits_0_or_2_on_hostile_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("walk.db").to_str().unwrap().to_string();
    let create = ["study", "create", "-q", "-m", "resnet18", "-d", "nano"];
    let mut c = common::edgetune();
    c.args(create)
        .args(["--budget", "2", "--storage", &format!("sqlite:{db}")])
        .args(["--study", "walk"])
        .assert()
        .success();
    let options = numeric_options();
    for must in [
        "--budget",
        "--lease-s",
        "--time-scale",
        "--poll-ms",
        "--workers",
    ] {
        assert!(
            options.iter().any(|(_, _, l)| l == must),
            "{must} not walked"
        );
    }
    let mut cases = Vec::new();
    for (path, id, long) in &options {
        for v in VALUES {
            let mut args: Vec<String> = path.split(' ').map(String::from).collect();
            // A fresh database for each `study create`, so the value itself is what is judged.
            let db = match path.as_str() {
                "study create" => format!("{db}.{}.{}", cases.len(), id),
                _ => db.clone(),
            };
            for (bid, b) in base(path, &db) {
                if bid != id {
                    args.extend(b);
                }
            }
            args.extend([format!("{long}={v}")]);
            cases.push(args);
        }
    }
    // Refused by clap: exit 2, as the binary's `Cli::parse_from` exits (checked below on one).
    let (refused, cases): (Vec<_>, Vec<_>) = cases.into_iter().partition(|args| {
        let argv = std::iter::once("edgetune".to_string()).chain(args.iter().cloned());
        cli::Cli::try_parse_from(argv).is_err_and(|e| e.exit_code() == 2)
    });
    assert!(refused.len() > cases.len(), "{} refused", refused.len());
    let sample = run(&refused[refused.len() / 2], Duration::from_secs(60));
    assert_eq!(sample, Some(2), "{:?}", refused[refused.len() / 2]);
    let queue = Mutex::new(cases);
    let bad = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let Some(args) = queue.lock().unwrap().pop() else {
                    break;
                };
                let code = run(&args, Duration::from_secs(60));
                if !matches!(code, Some(0) | Some(2)) {
                    bad.lock()
                        .unwrap()
                        .push(format!("{code:?}: {}", args.join(" ")));
                }
            });
        }
    });
    let bad = bad.into_inner().unwrap();
    assert!(bad.is_empty(), "{} cases:\n{}", bad.len(), bad.join("\n"));
}
