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

/// `tune --strategy grid` of resnet18 on the Nano over `table`, into `out`; report.json.
fn grid_tune_on_nano(table: &std::path::Path, out: &std::path::Path) -> Value {
    json_of(
        edgetune()
            .args(["tune", "-m", "resnet18", "-d", "nano", "--json", "-q"])
            .args(["--strategy", "grid", "--table"])
            .arg(table)
            .arg("--out")
            .arg(out),
    )
}

#[test]
fn a_single_batch_sweep_with_holes_is_tuned_and_its_holes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let table = holed_sweep(dir.path());
    let r: Value = json_of(
        edgetune()
            // --ei-stop 0: the search spends its budget, so it meets holes (with each row's
            // recorded spread it is sure of the basin after about seven).
            .args([
                "tune",
                "-m",
                "resnet18",
                "-d",
                "nano",
                "--json",
                "-q",
                "--budget",
                "60",
                "--ei-stop",
                "0",
            ])
            .arg("--table")
            .arg(&table)
            .arg("--out")
            .arg(dir.path().join("tune")),
    );
    // The batch column has one value: a fixed knob, not an axis.
    assert_eq!(r["grid_size"], 15 * 12);
    // sweep.csv carries the sweep's DVFS row: it is the baseline, as the mean of its three runs
    // at their recorded CV (`runs`, `cv`), not one reading of unknown spread.
    assert_eq!(r["baseline"]["kind"], "dvfs");
    assert_eq!(r["baseline"]["runs"], 3);
    assert_eq!(r["baseline"]["converged"], true);
    assert_eq!(r["best"]["batch_size"], 8);
    // The study explores with one reading of a row (a row's readings reproduce its runs'
    // recorded mean and CV; they are not copies of one).
    for m in r["measurements"].as_array().unwrap() {
        assert!(m["runs"].as_u64().unwrap() <= 3, "{m}");
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
    let r = grid_tune_on_nano(&table, &out);
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

/// A CPU x GPU table without a batch column: energy lowest at the middle of each axis.
fn clocks_only_table(dir: &std::path::Path) -> std::path::PathBuf {
    let mut body = String::from("cpu_freq_khz,gpu_freq_hz,energy_j,time_s\n");
    for (i, c) in [102_000u64, 710_400, 1_479_000].iter().enumerate() {
        for (j, g) in [76_800_000u64, 460_800_000, 921_600_000].iter().enumerate() {
            let d = (i as f64 - 1.0).powi(2) + (j as f64 - 1.0).powi(2);
            body += &format!("{c},{g},{},{}\n", 100.0 + 10.0 * d, 20.0 - i as f64);
        }
    }
    let p = dir.join("clocks.csv");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn a_table_of_a_network_and_board_the_catalogue_lacks_is_tuned_under_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let table = clocks_only_table(dir.path());
    let out = dir.path().join("tune");
    let o = edgetune()
        .args([
            "tune", "--model", "my-net", "--device", "my-board", "--table",
        ])
        .arg(&table)
        .args(["--strategy", "grid", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("my-net on my-board"), "{text}");
    // Exactly the table's knobs: no batch anywhere.
    assert!(
        text.contains("recommended: CPU 710.4 MHz (710400 kHz), GPU 460.8 MHz (460800000 Hz)\n"),
        "{text}"
    );
    assert!(!text.contains("batch"), "{text}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        (r["model"].as_str(), r["device"].as_str()),
        (Some("my-net"), Some("my-board"))
    );
    let best = r["best"].as_object().unwrap();
    assert!(
        best.contains_key("cpu_freq_khz") && !best.contains_key("batch_size"),
        "{best:?}"
    );
    let profile = std::fs::read_to_string(out.join("profile.toml")).unwrap();
    assert!(!profile.contains("batch"), "{profile}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| CPU (MHz) | GPU (MHz) | energy (J) |") && !md.contains("batch"));
    // An unknown board has no board files, and the report says why.
    assert!(!out.join("nvpmodel.conf").exists() && !out.join("apply-profile.sh").exists());
    assert!(md.contains("my-board is not a catalogue board"), "{md}");
    // A label names folders, so it must be a plain name.
    edgetune()
        .args(["tune", "--model", "../up", "--table"])
        .arg(&table)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot label a table's model"));
    // What a table without batch sizes or times cannot judge is refused.
    for goal in [&["--pareto"][..], &["--max-latency-ms", "5"]] {
        edgetune()
            .args(["tune", "-m", "my-net", "--table"])
            .arg(&table)
            .args(goal)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("no `batch_size` column"));
    }
}

#[test]
fn values_off_the_board_s_tables_get_no_board_files_and_a_note() {
    let dir = tempfile::tempdir().unwrap();
    // 300 MHz is no Nano GPU clock; it is the table's minimum.
    let table = dir.path().join("off.csv");
    std::fs::write(
        &table,
        "gpu_freq_hz,batch_size,energy_j\n300000000,4,9\n300000000,8,8\n921600000,4,12\n921600000,8,11\n",
    )
    .unwrap();
    let out = dir.path().join("tune");
    let r = grid_tune_on_nano(&table, &out);
    assert_eq!(r["best"]["gpu_freq_hz"], 300_000_000u64);
    let notes = r["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("GPU 300000000 Hz is not in the NVIDIA Jetson Nano's tables")),
        "{notes:?}"
    );
    assert!(out.join("profile.toml").exists());
    assert!(!out.join("nvpmodel.conf").exists() && !out.join("apply-profile.sh").exists());
    // Without a time column edp cannot be judged.
    edgetune()
        .args([
            "tune",
            "-m",
            "resnet18",
            "-d",
            "nano",
            "--objective",
            "edp",
            "--table",
        ])
        .arg(&table)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no `time_s`"));
}

/// An own table of `cpus` x `gpus` single readings (no catalogue labels, so no prior): a smooth
/// bowl whose lowest cell reads 600 J, and an isolated dip elsewhere reading 540 J, the table's
/// lowest reading (a board whose best is a sharp dip).
fn dipped_table(dir: &std::path::Path, cpus: u64, gpus: u64) -> std::path::PathBuf {
    let mut csv = String::from("cpu_freq_khz,gpu_freq_hz,energy_j\n");
    for c in 0..cpus {
        for g in 0..gpus {
            let bowl =
                600.0 * (1.0 + 0.02 * (c as f64 - 3.0).powi(2) + 0.03 * (g as f64 - 1.0).powi(2));
            let e = if (c, g) == (cpus - 1, gpus - 1) {
                540.0
            } else {
                bowl
            };
            csv += &format!(
                "{},{},{e}\n",
                400_000 + 100_000 * c,
                300_000_000 + 100_000_000 * g
            );
        }
    }
    let p = dir.join(format!("own-{cpus}x{gpus}.csv"));
    std::fs::write(&p, csv).unwrap();
    p
}

#[test]
fn a_small_table_is_searched_whole_to_its_own_lowest_reading() {
    let dir = tempfile::tempdir().unwrap();
    for (cpus, gpus) in [(6, 3), (12, 5)] {
        let table = dipped_table(dir.path(), cpus, gpus);
        let r: Value = json_of(
            edgetune()
                .args([
                    "tune", "--model", "my-net", "--device", "my-board", "--json", "-q",
                ])
                .arg("--table")
                .arg(&table)
                .arg("--out")
                .arg(dir.path().join(format!("tune-{cpus}"))),
        );
        // Reading a table costs no board time: up to 60 rows, the default reads it whole.
        assert_eq!(r["budget"], cpus * gpus);
        assert_eq!(r["measured_configs"], cpus * gpus);
        assert_eq!(r["best"]["energy_j"], 540.0, "{}", r["final_choice"]);
        assert!(r.get("lower_readings").is_none());
    }
    // bench --table reads an 18-row table whole by default and finds its dip every time.
    let table = dipped_table(dir.path(), 6, 3);
    let b: Value = json_of(
        edgetune()
            .args([
                "bench",
                "--json",
                "--strategies",
                "bayes,random",
                "--seeds",
                "3",
            ])
            .arg("--table")
            .arg(&table)
            .arg("--out")
            .arg(dir.path().join("bench")),
    );
    for run in b["runs"].as_array().unwrap() {
        assert_eq!(run["budget"], 18, "{run}");
        assert_eq!(run["final_regret_pct"], 0.0, "{run}");
    }
}

/// Issue 25, case 9: `--min-window-s` cannot lengthen a recorded row: with `--table` it is bad
/// input naming the flag (it ran out of readings with exit 1).
#[test]
fn a_window_asked_of_a_recorded_table_is_refused_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let table = clocks_only_table(dir.path());
    let o = edgetune()
        .current_dir(dir.path())
        .args([
            "tune",
            "-q",
            "-m",
            "my-net",
            "-d",
            "my-board",
            "--min-window-s",
            "100",
        ])
        .arg("--table")
        .arg(&table)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--min-window-s 100"), "{err}");
    assert!(!dir.path().join("reports").exists());
}

/// Issue 26: a real Xavier NX table of nvpmodel power modes x batch sizes (LoudVA's, energy per
/// inference) replays as it was recorded: the mode is a knob, its clock and core columns are its
/// caps, the columns edgetune does not read are named, and the recommendation is a mode and a
/// batch size near the table's best reading, with `nvpmodel -m` in the board script.
#[test]
fn the_real_power_mode_table_recommends_a_mode_and_a_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let table =
        common::sysfs_tree::fixture_dir("tables/loudva-xavier-nx-inceptionv3-powermodes.csv");
    let out = dir.path().join("tune");
    let o = edgetune()
        .args([
            "tune",
            "-m",
            "inceptionv3",
            "-d",
            "xavier-nx",
            "--inferences",
            "1",
        ])
        .arg("--table")
        .arg(&table)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("the table's 9 power modes are a knob"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 MODE_10W_2CORE (CPU 1497.6 MHz, GPU 803.25 MHz"),
        "{stderr}"
    );
    assert!(
        stderr.contains("columns not read: throughput_ips, latency_s, energy_loudva_j"),
        "{stderr}"
    );
    assert!(stdout.contains("recommended: power mode "), "{stdout}");
    assert!(stdout.contains("saving vs highest power mode"), "{stdout}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["grid_size"], 9 * 18, "9 modes x 18 batch sizes, no holes");
    assert_eq!(r["baseline"]["kind"], "highest power mode");
    let best = &r["best"];
    let mode = best["power_mode"]
        .as_u64()
        .expect("a power mode recommended");
    assert!(best["batch_size"].as_u64().unwrap() >= 1);
    // The table's best reading is 0.2432 J (mode 3, batch 17); the recommendation's true
    // energy (its one reading) within 5 % of it, in a 10 W mode (3, 4 or 5).
    let e = best["energy_j"].as_f64().unwrap();
    assert!(e <= 0.243212221 * 1.05, "{e} J at mode {mode}");
    assert!((3..=5).contains(&mode), "mode {mode}");
    let script = std::fs::read_to_string(out.join("apply-profile.sh")).unwrap();
    assert!(
        script.contains(&format!("\nnvpmodel -m {mode}\n")),
        "{script}"
    );
    assert!(
        !out.join("nvpmodel.conf").exists(),
        "the mode is one of the board's own"
    );
    let profile = std::fs::read_to_string(out.join("profile.toml")).unwrap();
    assert!(
        profile.contains(&format!("power_mode = {mode}")),
        "{profile}"
    );
}

/// Issue 26's friction: profile.toml's header names only the files written beside it (a board
/// the catalogue lacks gets no apply-profile.sh or nvpmodel.conf, and `edgetune apply` cannot
/// take a table's labels).
#[test]
fn a_profiles_header_names_only_the_files_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let table = holed_sweep(dir.path());
    let out = dir.path().join("mine");
    edgetune()
        .args(["tune", "-m", "my-net", "-d", "my-board", "-q", "--table"])
        .arg(&table)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let profile = std::fs::read_to_string(out.join("profile.toml")).unwrap();
    let header = profile.lines().nth(1).unwrap();
    assert!(!out.join("apply-profile.sh").exists() && !out.join("nvpmodel.conf").exists());
    assert!(header.contains("set these values yourself"), "{header}");
    assert!(
        !header.contains("apply-profile.sh")
            && !header.contains("nvpmodel.conf")
            && !header.contains("edgetune apply"),
        "{header}"
    );
}

/// Issue 26's friction: a sweep's own sweep.csv replays its rows as the means of their runs
/// (`runs`, `cv`): its DVFS baseline of three runs is not "one reading of unknown spread".
#[test]
fn a_sweeps_csv_replays_with_its_runs_spread() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    edgetune()
        .args([
            "sweep", "-m", "resnet18", "-d", "nano", "--batch", "8", "-q", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let dvfs = csv.lines().last().unwrap();
    assert!(
        dvfs.ends_with(",3,dvfs"),
        "the DVFS row carries its runs: {dvfs}"
    );
    let o = edgetune()
        .args(["tune", "-m", "resnet18", "-d", "nano", "--table"])
        .arg(out.join("sweep.csv"))
        .arg("--out")
        .arg(dir.path().join("tune"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(!text.contains("rests on 1 reading"), "{text}");
    assert!(text.contains("95 % interval"), "{text}");
}
