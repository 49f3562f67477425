//! The built-in models end to end (feature `torch`, on the CPU): `edgetune infer`, TorchScript
//! files, `bench-torch` against Python, and `tune` on a virtual Jetson measuring real libtorch
//! inference, in-process and as a `--workload-cmd`.
#![cfg(feature = "torch")]

use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;

mod common;
use common::edgetune;
use common::emulator::{knobs, Emulator};

#[test]
fn infer_prints_markers_around_the_timed_part_and_its_throughput() {
    let o = edgetune()
        .args([
            "infer",
            "-m",
            "resnet-18",
            "-b",
            "2",
            "-n",
            "5",
            "--torch-device",
            "cpu",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines[..2], ["EDGETUNE_BEGIN", "EDGETUNE_END"], "{out}");
    assert!(
        lines[2].starts_with("resnet18 batch 2 on cpu: 5 inferences in "),
        "{out}"
    );
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("11.69 M parameters"), "{err}");

    let o = edgetune()
        .args([
            "infer",
            "-m",
            "yolov4-tiny",
            "-b",
            "1",
            "-n",
            "1",
            "--torch-device",
            "cpu",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let v: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    // With --json stdout is the JSON alone; the markers go to stderr.
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), v);
    assert!(String::from_utf8_lossy(&o.stderr).contains("EDGETUNE_BEGIN"));
    assert_eq!(v["model"], "yolov4-tiny");
    assert_eq!(v["inferences"], 1);
    assert!(v["throughput_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_saved_network_runs_as_torchscript() {
    let t = tempfile::tempdir().unwrap();
    let pt = t.path().join("bert.pt");
    edgetune()
        .args([
            "infer",
            "-m",
            "bert-tiny",
            "-b",
            "1",
            "--torch-device",
            "cpu",
        ])
        .arg("--save-torchscript")
        .arg(&pt)
        .assert()
        .success()
        .stdout("");
    // --model names the catalogue row; the input comes from it unless --input-shape says.
    edgetune()
        .args([
            "infer",
            "-m",
            "bert-tiny",
            "-b",
            "2",
            "-n",
            "3",
            "--torch-device",
            "cpu",
            "--json",
        ])
        .arg("--torchscript")
        .arg(&pt)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"inferences\":3"));
    let one_resnet18 = [
        "infer",
        "-m",
        "resnet18",
        "-b",
        "1",
        "-n",
        "1",
        "--torch-device",
        "cpu",
    ];
    edgetune()
        .args(one_resnet18)
        .args(["--input-shape", "tokens:64"])
        .arg("--torchscript")
        .arg(&pt)
        .assert()
        .success();
    // A shape the file's model cannot take fails at run time with libtorch's reason.
    edgetune()
        .args(one_resnet18)
        .arg("--torchscript")
        .arg(&pt)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bert at batch size 1 on cpu"));
}

#[test]
fn bad_torch_input_exits_2_with_a_reason() {
    let t = tempfile::tempdir().unwrap();
    let junk = t.path().join("junk.pt");
    std::fs::write(&junk, "junk").unwrap();
    let junk = junk.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["infer", "-m", "resnet18", "--torch-device", "gpu"],
            "expected cpu, cuda or cuda:N",
        ),
        (
            &["infer", "-m", "resnet18", "--torch-device", "cuda:99"],
            "use --torch-device cpu",
        ),
        (&["infer", "-m", "resnet18", "-b", "0"], "0 is not in 1..="),
        (&["infer", "-m", "nosuch"], "nosuch"),
        (
            &[
                "infer",
                "-m",
                "resnet18",
                "--torchscript",
                "/nonexistent.pt",
            ],
            "no such file",
        ),
        (
            &["infer", "-m", "resnet18", "--torchscript", junk],
            "cannot load TorchScript",
        ),
        (
            &["infer", "-m", "resnet18", "--input-shape", "3,8,8"],
            "--torchscript model's input",
        ),
        (
            &[
                "infer",
                "-m",
                "resnet18",
                "--torchscript",
                junk,
                "--input-shape",
                "3,x",
            ],
            "--input-shape",
        ),
        (
            &[
                "tune",
                "-m",
                "resnet18",
                "-d",
                "nano",
                "--torchscript",
                junk,
            ],
            "real board's or processor's workload",
        ),
        (
            &["bench-torch", "--repeats", "0", "--torch-device", "cpu"],
            "0 is not in 1..=",
        ),
    ];
    for (args, msg) in cases {
        edgetune()
            .args(*args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*msg));
    }
}

#[test]
fn bench_torch_compares_with_python_on_the_same_machine() {
    let python = std::env::var("EDGETUNE_TORCH_PYTHON").expect(
        "EDGETUNE_TORCH_PYTHON: run the tests through ./scripts/test.sh (it sets up torch)",
    );
    let o = edgetune()
        .args([
            "bench-torch",
            "--models",
            "resnet18,mobilenet-v2",
            "--batch-sizes",
            "2",
        ])
        .args([
            "--inferences",
            "4",
            "--repeats",
            "2",
            "--torch-device",
            "cpu",
            "--json",
        ])
        .args(["--python", &python])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["python"].as_str().unwrap().starts_with("torch 2.11.0"),
        "{v}"
    );
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r["rust_runs_s"].as_array().unwrap().len(), 2);
        assert_eq!(r["python_runs_s"].as_array().unwrap().len(), 2);
        let ratio = r["ratio"].as_f64().unwrap();
        let want = r["rust_per_s"].as_f64().unwrap() / r["python_per_s"].as_f64().unwrap();
        assert!((ratio - want).abs() < 1e-9 && ratio > 0.0, "{r}");
    }
    // A Python without torch is named, not a hang or a panic.
    edgetune()
        .args([
            "bench-torch",
            "--torch-device",
            "cpu",
            "--python",
            "/nonexistent/python",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/python"));
}

/// A small study on a virtual Nano whose workload is real libtorch inference on this CPU.
fn tune_on(root: &Path, out: &Path, workload: &[String]) -> Value {
    let o = edgetune()
        .args([
            "tune",
            "-m",
            "bert-tiny",
            "--backend",
            "jetson",
            "--sysfs-root",
        ])
        .arg(root)
        .args([
            "--inferences",
            "8",
            "--warmup",
            "0",
            "--min-runs",
            "2",
            "--max-runs",
            "2",
        ])
        .args([
            "--batch-sizes",
            "4",
            "--fix",
            "cpu=1479MHz",
            "--budget",
            "3",
            "--json",
            "-q",
        ])
        .args(["--poll-ms", "10", "--torch-device", "cpu", "--out"])
        .arg(out)
        .args(workload)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn tune_measures_real_inference_on_a_virtual_board_in_process_and_as_a_command() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("nano");
    let mut emu = Emulator::start("nano", &root, 1.0);
    let before = knobs(&root);
    let infer = format!(
        "{} infer --torch-device cpu --model {{model}} --batch {{batch}} --inferences {{inferences}}",
        assert_cmd::cargo::cargo_bin("edgetune").display()
    );
    for (name, extra) in [
        ("in-process", vec![]),
        ("command", vec!["--workload-cmd".to_string(), infer]),
    ] {
        let r = tune_on(&root, &t.path().join(name), &extra);
        assert_eq!(r["backend"], "jetson", "{name}");
        let rows = r["measurements"].as_array().unwrap();
        assert!(!rows.is_empty(), "{name}");
        for m in rows {
            let (e, s) = (
                m["energy_j"].as_f64().unwrap(),
                m["time_s"].as_f64().unwrap(),
            );
            // Real inference time on this CPU, and the virtual rails' power over it.
            assert!(e > 0.0 && s > 0.0 && e / s < 20.0, "{name}: {m}");
        }
        assert!(r["baseline"]["energy_j"].as_f64().unwrap() > 0.0, "{name}");
        assert_eq!(
            knobs(&root),
            before,
            "{name}: the board was not left as found"
        );
    }
    assert!(emu.stop().success());
}

#[test]
fn tune_on_a_simulated_nvml_gpu_runs_the_built_in_model_in_process() {
    let t = tempfile::tempdir().unwrap();
    let spec = t.path().join("fake-nvml.json");
    std::fs::write(
        &spec,
        r#"{"gpus":[{"name":"NVIDIA H100 80GB HBM3","power_w":250.0,"step_ms":10}]}"#,
    )
    .unwrap();
    let o = edgetune()
        .env("EDGETUNE_FAKE_NVML", &spec)
        .env("EDGETUNE_STATE_FILE", t.path().join("restore.json"))
        .args([
            "tune",
            "-m",
            "bert-tiny",
            "-d",
            "gpu",
            "--batch-sizes",
            "1,4",
        ])
        .args([
            "--torch-device",
            "cpu",
            "--inferences",
            "8",
            "--warmup",
            "0",
        ])
        .args([
            "--min-runs",
            "2",
            "--max-runs",
            "2",
            "--min-window-s",
            "0.2",
            "--json",
            "-q",
        ])
        .arg("--out")
        .arg(t.path().join("out"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["backend"], "nvml");
    for m in r["measurements"].as_array().unwrap() {
        // Real inference time on this CPU, at the simulated GPU's 250 W.
        let p = m["avg_power_w"].as_f64().unwrap();
        assert!((p - 250.0).abs() < 25.0, "{m}");
        assert!(m["window_repeats"].as_u64().unwrap_or(1) >= 1);
    }
}
