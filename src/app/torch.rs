//! The built-in torch workload's commands: `infer` (one model on its own, with the
//! `--workload-cmd` markers) and `bench-torch` (throughput against Python PyTorch), and the
//! workload `tune` uses on a board when no `--workload-cmd` is given. Without the `torch`
//! feature each says how to get it.

use crate::catalog::Model;
use crate::error::UsageError;
use crate::workload::Workload;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use super::options::TorchOptions;

/// The message for a binary built without them.
pub fn not_built(what: &str) -> UsageError {
    UsageError(format!(
        "{what} needs the built-in models, and this edgetune was built without them: build with `--features torch` after `eval \"$(./scripts/setup-torch.sh)\"` (see the README)"
    ))
}

/// Options of `edgetune infer`.
#[derive(Debug, Clone)]
pub struct InferOptions {
    /// Catalogue model (also names the input of a TorchScript model).
    pub model: String,
    /// Batch size.
    pub batch: u32,
    /// Inferences.
    pub inferences: u32,
    /// Device and model source.
    pub torch: TorchOptions,
    /// Print a JSON line instead of the throughput line.
    pub json: bool,
    /// Save the network as TorchScript here instead of running it.
    pub save_torchscript: Option<PathBuf>,
}

/// One timed run of `edgetune infer`.
#[derive(Debug, Clone, Serialize)]
pub struct InferResult {
    /// Model.
    pub model: String,
    /// `cpu` or `cuda:N`.
    pub torch_device: String,
    /// Parameters of the model run.
    pub params: u64,
    /// Batch size.
    pub batch_size: u32,
    /// Inferences run.
    pub inferences: u32,
    /// Time between the markers.
    pub time_s: f64,
    /// Inferences per second.
    pub throughput_per_s: f64,
}

/// Options of `edgetune bench-torch`.
#[derive(Debug, Clone)]
pub struct TorchBenchOptions {
    /// Models (built-in and in the Python script: alexnet, resnet18, mobilenet-v2).
    pub models: Vec<String>,
    /// Batch sizes.
    pub batch_sizes: Vec<u32>,
    /// Inferences per timed run.
    pub inferences: u32,
    /// Timed runs per side and configuration (the median is reported).
    pub repeats: u32,
    /// `cpu`, `cuda:N` or `auto`.
    pub device: String,
    /// Python with torch and torchvision [default: $EDGETUNE_TORCH_PYTHON, else python3].
    pub python: Option<PathBuf>,
}

/// One row of `bench-torch`.
#[derive(Debug, Clone, Serialize)]
pub struct TorchBenchRow {
    /// Model.
    pub model: String,
    /// Batch size.
    pub batch_size: u32,
    /// Inferences per timed run.
    pub inferences: u32,
    /// Median throughput of edgetune's built-in model.
    pub rust_per_s: f64,
    /// Median throughput of the same architecture in Python eager mode.
    pub python_per_s: f64,
    /// `rust_per_s / python_per_s`.
    pub ratio: f64,
    /// Every timed run, edgetune's side.
    pub rust_runs_s: Vec<f64>,
    /// Every timed run, Python's side.
    pub python_runs_s: Vec<f64>,
}

/// What `bench-torch` measured.
#[derive(Debug, Clone, Serialize)]
pub struct TorchBenchReport {
    /// `cpu` or `cuda:N`.
    pub torch_device: String,
    /// What the device is (CPU model or GPU name where known).
    pub machine: String,
    /// libtorch intra-op threads, edgetune's side.
    pub rust_threads: i32,
    /// What the Python side reported (`torch VERSION threads N`).
    pub python: String,
    /// Runs per side, interleaved (the first side alternates).
    pub repeats: u32,
    /// Rows.
    pub rows: Vec<TorchBenchRow>,
}

/// Writes the `bench-torch` table.
pub fn write_bench_table(r: &TorchBenchReport, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "inference throughput on {} ({}): edgetune (tch, {} threads) vs Python eager ({}), median of {} interleaved runs",
        r.torch_device, r.machine, r.rust_threads, r.python, r.repeats
    )?;
    writeln!(
        out,
        "{:<13} {:>5} {:>10} {:>15} {:>15} {:>12}",
        "model", "batch", "inferences", "edgetune inf/s", "python inf/s", "rust/python"
    )?;
    for row in &r.rows {
        writeln!(
            out,
            "{:<13} {:>5} {:>10} {:>15.1} {:>15.1} {:>12.3}",
            row.model, row.batch_size, row.inferences, row.rust_per_s, row.python_per_s, row.ratio
        )?;
    }
    Ok(())
}

#[cfg(not(feature = "torch"))]
mod imp {
    use super::*;

    /// Without the feature: says how to build with it.
    pub fn workload(
        _: &Model,
        _: &TorchOptions,
        _: Option<Arc<AtomicBool>>,
        _: bool,
    ) -> Result<Box<dyn Workload>> {
        Err(not_built("measuring without --workload-cmd").into())
    }

    /// Without the feature: says how to build with it.
    pub fn infer(_: &Model, _: &InferOptions) -> Result<InferResult> {
        Err(not_built("`edgetune infer`").into())
    }

    /// Without the feature: says how to build with it.
    pub fn bench(_: &[Model], _: &TorchBenchOptions) -> Result<TorchBenchReport> {
        Err(not_built("`edgetune bench-torch`").into())
    }
}

#[cfg(feature = "torch")]
mod imp {
    use super::*;
    use crate::workload::torch::{
        device_name, parse_device, InputSpec, MarkerMeter, Net, TorchError, TorchWorkload,
    };
    use crate::workload::NoMeter;
    use anyhow::Context;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    use tch::Device;

    fn usage(e: TorchError) -> anyhow::Error {
        UsageError(e.to_string()).into()
    }

    /// `auto`: CUDA when libtorch sees a GPU, else the CPU.
    pub fn device(s: &str) -> Result<Device> {
        if s == "auto" {
            return Ok(Device::cuda_if_available());
        }
        parse_device(s).map_err(usage)
    }

    /// The model to run: the user's TorchScript file or the catalogue model's built network.
    pub fn net(model: &Model, o: &TorchOptions, quiet: bool) -> Result<Net> {
        let d = device(&o.device)?;
        let started = Instant::now();
        let net = match &o.torchscript {
            Some(path) => {
                let input = match (&o.input_shape, &model.built) {
                    (Some(s), _) => InputSpec::parse(s).map_err(usage)?,
                    (None, Some(b)) => InputSpec::of(b),
                    (None, None) => {
                        return Err(UsageError(format!(
                            "--torchscript: give --input-shape (e.g. 3,224,224 or tokens:512); {} has no built-in input to borrow",
                            model.id()
                        ))
                        .into())
                    }
                };
                Net::load_torchscript(path, input, d).map_err(usage)?
            }
            None if o.input_shape.is_some() => {
                return Err(UsageError(
                    "--input-shape describes a --torchscript model's input; the built-in models know theirs".into(),
                )
                .into())
            }
            None => Net::build(model, d).map_err(usage)?,
        };
        if !quiet {
            eprintln!(
                "note: {} ({:.2} M parameters, random weights{}) ready on {} in {:.1} s",
                net.name(),
                net.params() as f64 / 1e6,
                if o.torchscript.is_some() {
                    " as saved"
                } else {
                    ""
                },
                device_name(d),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(net)
    }

    /// The study's workload: `model` (or `o.torchscript`) on `o.device`.
    pub fn workload(
        model: &Model,
        o: &TorchOptions,
        stop: Option<Arc<AtomicBool>>,
        quiet: bool,
    ) -> Result<Box<dyn Workload>> {
        Ok(Box::new(TorchWorkload::new(net(model, o, quiet)?, stop)))
    }

    /// Runs `o.inferences` inferences between the markers (or saves the network).
    pub fn infer(model: &Model, o: &InferOptions) -> Result<InferResult> {
        if o.batch == 0 || o.inferences == 0 {
            return Err(UsageError("--batch and --inferences must be at least 1".into()).into());
        }
        let net = net(model, &o.torch, false)?;
        if let Some(path) = &o.save_torchscript {
            net.save_torchscript(path, o.batch as i64).map_err(usage)?;
            eprintln!(
                "note: saved {} as TorchScript in {}",
                net.name(),
                path.display()
            );
            return Ok(InferResult {
                model: net.name().to_string(),
                torch_device: device_name(net.device()),
                params: net.params(),
                batch_size: o.batch,
                inferences: 0,
                time_s: 0.0,
                throughput_per_s: 0.0,
            });
        }
        let time_s = net
            .run(
                o.batch,
                o.inferences,
                &mut MarkerMeter { stderr: o.json },
                None,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(InferResult {
            model: net.name().to_string(),
            torch_device: device_name(net.device()),
            params: net.params(),
            batch_size: o.batch,
            inferences: o.inferences,
            time_s,
            throughput_per_s: o.inferences as f64 / time_s,
        })
    }

    /// The Python side, started once and fed one configuration at a time.
    struct PythonSide {
        child: std::process::Child,
        stdin: std::process::ChildStdin,
        lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
        banner: String,
    }

    impl PythonSide {
        fn start(python: &Path, device: &str) -> Result<PythonSide> {
            let script = std::env::temp_dir().join(format!(
                "edgetune-torch-throughput-{}.py",
                std::process::id()
            ));
            std::fs::write(&script, include_str!("../../scripts/torch_throughput.py"))?;
            let mut child = Command::new(python)
                .arg(&script)
                .arg(device)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| {
                    format!(
                        "starting {} (set --python or EDGETUNE_TORCH_PYTHON to a python with torch and torchvision)",
                        python.display()
                    )
                })?;
            let stdin = child.stdin.take().expect("piped");
            let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
            let banner = lines
                .next()
                .transpose()?
                .and_then(|l| l.strip_prefix("ready ").map(str::to_string))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{} could not import torch and torchvision (its error is above)",
                        python.display()
                    )
                })?;
            let _ = std::fs::remove_file(&script);
            Ok(PythonSide {
                child,
                stdin,
                lines,
                banner,
            })
        }

        fn run(&mut self, model: &str, batch: u32, inferences: u32) -> Result<f64> {
            writeln!(self.stdin, "{model} {batch} {inferences}")?;
            self.stdin.flush()?;
            let line =
                self.lines.next().transpose()?.ok_or_else(|| {
                    anyhow::anyhow!("the Python side stopped (its error is above)")
                })?;
            line.trim()
                .parse()
                .with_context(|| format!("the Python side answered `{line}`"))
        }
    }

    impl Drop for PythonSide {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn machine(d: Device) -> String {
        if let Device::Cuda(_) = d {
            // NVML is issue 7's; nvidia-smi names the GPU where it exists.
            if let Ok(o) = Command::new("nvidia-smi")
                .args(["--query-gpu=name", "--format=csv,noheader"])
                .output()
            {
                if let Some(l) = String::from_utf8_lossy(&o.stdout).lines().next() {
                    return l.trim().to_string();
                }
            }
            return "CUDA GPU".into();
        }
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "CPU".into());
        format!(
            "{cpu}, {} logical cores",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )
    }

    /// Times each model and batch size on both sides, interleaved.
    pub fn bench(models: &[Model], o: &TorchBenchOptions) -> Result<TorchBenchReport> {
        if o.repeats == 0 || o.inferences == 0 || o.batch_sizes.contains(&0) {
            return Err(UsageError(
                "--repeats, --inferences and batch sizes must be at least 1".into(),
            )
            .into());
        }
        let d = device(&o.device)?;
        let python = o
            .python
            .clone()
            .or_else(|| std::env::var_os("EDGETUNE_TORCH_PYTHON").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("python3"));
        let mut py = PythonSide::start(&python, &device_name(d))?;
        let torch = TorchOptions {
            device: device_name(d),
            ..TorchOptions::default()
        };
        let mut rows = Vec::new();
        for m in models {
            let net = net(m, &torch, false)?;
            for &b in &o.batch_sizes {
                let (mut rust, mut python_s) = (Vec::new(), Vec::new());
                for rep in 0..o.repeats {
                    // Alternate who goes first (ABBA), so drift in the machine's speed falls on
                    // both sides alike.
                    for side in [rep % 2, 1 - rep % 2] {
                        // A pause lets the other side's idle OpenMP threads stop spinning.
                        std::thread::sleep(Duration::from_millis(300));
                        if side == 0 {
                            rust.push(
                                net.run(b, o.inferences, &mut NoMeter, None)
                                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                            );
                        } else {
                            python_s.push(py.run(&m.model.id, b, o.inferences)?);
                        }
                    }
                }
                let per_s = |v: &[f64]| o.inferences as f64 / crate::measure::stats::median(v);
                let (r, p) = (per_s(&rust), per_s(&python_s));
                eprintln!(
                    "{} batch {b}: edgetune {r:.1}/s, python {p:.1}/s",
                    m.model.id
                );
                rows.push(TorchBenchRow {
                    model: m.model.id.clone(),
                    batch_size: b,
                    inferences: o.inferences,
                    rust_per_s: r,
                    python_per_s: p,
                    ratio: r / p,
                    rust_runs_s: rust,
                    python_runs_s: python_s,
                });
            }
        }
        Ok(TorchBenchReport {
            torch_device: device_name(d),
            machine: machine(d),
            rust_threads: tch::get_num_threads(),
            python: py.banner.clone(),
            repeats: o.repeats,
            rows,
        })
    }
}

pub use imp::{bench, infer, workload};

/// `edgetune infer`: prints the markers around the timed part, then the throughput line (or
/// JSON).
pub fn infer_cmd(catalog_dir: Option<&Path>, o: &InferOptions, out: &mut dyn Write) -> Result<()> {
    let cat = super::options::load_catalog(catalog_dir)?;
    let model = cat.model(&o.model)?.clone();
    let r = infer(&model, o)?;
    if o.save_torchscript.is_some() {
        return Ok(());
    }
    if o.json {
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
    } else {
        writeln!(
            out,
            "{} batch {} on {}: {} inferences in {:.3} s = {:.1} inferences/s ({:.3} ms each)",
            r.model,
            r.batch_size,
            r.torch_device,
            r.inferences,
            r.time_s,
            r.throughput_per_s,
            1e3 * r.time_s / r.inferences as f64
        )?;
    }
    Ok(())
}

/// `edgetune bench-torch`.
pub fn bench_torch_cmd(
    catalog_dir: Option<&Path>,
    o: &TorchBenchOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<TorchBenchReport> {
    let cat = super::options::load_catalog(catalog_dir)?;
    let models = o
        .models
        .iter()
        .map(|m| cat.model(m).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    let r = bench(&models, o)?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        write_bench_table(&r, out)?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::measure::stats::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_binary_without_torch_says_how_to_get_it() {
        let msg = not_built("`edgetune infer`").to_string();
        assert!(
            msg.contains("--features torch") && msg.contains("setup-torch.sh"),
            "{msg}"
        );
        let models = crate::catalog::Catalog::load(None).unwrap().models;
        let o = InferOptions {
            model: "resnet18".into(),
            batch: 0,
            inferences: 1,
            torch: TorchOptions::default(),
            json: false,
            save_torchscript: None,
        };
        // Either way batch 0 (or the missing feature) is a usage error, exit code 2.
        let e = infer(&models[0], &o).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
    }
}
