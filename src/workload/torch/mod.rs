//! Built-in models run in-process through libtorch (cargo feature `torch`): AlexNet, ResNet-18
//! and MobileNetV2 as torchvision builds them (see [`vision`] for why not `tch::vision`'s),
//! YOLOv4-tiny after darknet's cfg and BERT-style encoders, all written with `tch::nn`,
//! all with random weights (nothing is downloaded), or a user's TorchScript file.
//!
//! Each measurement generates its input on the device once, runs one untimed warm-up batch,
//! then opens the meter's window around the inferences (in `no_grad`) and closes it after the
//! device has finished (a CUDA synchronise).

pub mod encoder;
pub mod vision;
pub mod yolo;

use crate::catalog::{BuiltSpec, Model};
use crate::device::DeviceError;
use crate::opt::Opt;
use crate::workload::{Meter, Workload, WorkloadRun};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{CModule, Device, IValue, Kind, Tensor};
use thiserror::Error;

/// What a user can fix about a built-in or TorchScript model.
#[derive(Debug, Error)]
pub enum TorchError {
    /// `--torch-device` not understood.
    #[error("{flag} `{0}`: expected cpu, cuda or cuda:N", flag = Opt::TorchDevice)]
    BadDevice(String),
    /// CUDA asked for but not there.
    #[error("{flag} {asked}: {why}; use {flag} cpu", flag = Opt::TorchDevice)]
    NoCuda {
        /// What was asked.
        asked: String,
        /// What libtorch reports.
        why: String,
    },
    /// The model has no `[built]` section.
    #[error("model {0} has no built-in architecture (no [built] section in its models/*.toml); give {ts} FILE.pt or {cmd}", ts = Opt::Torchscript, cmd = Opt::WorkloadCmd)]
    NotBuilt(String),
    /// An unknown builder in a `[built]` section.
    #[error("{file}: [built] arch `{arch}` is not one of alexnet, resnet18, mobilenet-v2, yolov4-tiny, encoder")]
    UnknownArch {
        /// Model file.
        file: String,
        /// The builder named.
        arch: String,
    },
    /// A TorchScript file that does not load.
    #[error("cannot load TorchScript model {}: {message}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// libtorch's message, first line.
        message: String,
    },
    /// An input shape that cannot be used.
    #[error("{flag}: {0}", flag = Opt::InputShape)]
    BadInput(String),
}

/// Parses `cpu`, `cuda` or `cuda:N`, checking that CUDA is there for the latter.
pub fn parse_device(s: &str) -> Result<Device, TorchError> {
    let d = match s.trim() {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| TorchError::BadDevice(s.to_string()))?,
    };
    let n = if tch::Cuda::is_available() {
        tch::Cuda::device_count() as usize
    } else {
        0
    };
    if d >= n {
        let why = if n == 0 {
            "libtorch sees no CUDA device (a CPU-only libtorch, no driver, or no GPU)".to_string()
        } else {
            format!("libtorch sees {n} CUDA device(s), numbered from 0")
        };
        return Err(TorchError::NoCuda {
            asked: s.to_string(),
            why,
        });
    }
    Ok(Device::Cuda(d))
}

/// The name `--torch-device` takes for `d`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

/// One inference's input.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    /// A float image (or any float tensor) of this shape, without the batch dimension.
    Float(Vec<i64>),
    /// `len` int64 token ids below `vocab`.
    Tokens {
        /// Tokens per inference.
        len: i64,
        /// Ids are drawn below this.
        vocab: i64,
    },
}

impl InputSpec {
    /// The input a `[built]` section describes.
    pub fn of(spec: &BuiltSpec) -> InputSpec {
        match &spec.encoder {
            Some(e) => InputSpec::Tokens {
                len: e.sequence_length,
                vocab: e.vocab,
            },
            None => InputSpec::Float(spec.input_shape.clone()),
        }
    }

    /// Parses `--input-shape`: `3,224,224` (floats) or `tokens:512` (ids below 30522) or
    /// `tokens:512:VOCAB`.
    pub fn parse(s: &str) -> Result<InputSpec, TorchError> {
        let bad = |why: &str| TorchError::BadInput(format!("`{s}`: {why}"));
        let num = |t: &str| {
            t.trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad(&format!("`{t}` is not a positive whole number")))
        };
        if let Some(rest) = s.strip_prefix("tokens:") {
            let mut it = rest.splitn(2, ':');
            let len = num(it.next().unwrap_or(""))?;
            let vocab = it.next().map(num).transpose()?.unwrap_or(30522);
            return Ok(InputSpec::Tokens { len, vocab });
        }
        let dims = s.split(',').map(num).collect::<Result<Vec<_>, _>>()?;
        if dims.is_empty() || dims.len() > 4 {
            return Err(bad(
                "give 1 to 4 dimensions without the batch, e.g. 3,224,224",
            ));
        }
        Ok(InputSpec::Float(dims))
    }

    /// A random batch of `batch` inputs on `device`.
    pub fn batch(&self, batch: i64, device: Device) -> Tensor {
        match self {
            InputSpec::Float(dims) => {
                let mut shape = vec![batch];
                shape.extend(dims);
                Tensor::randn(shape, (Kind::Float, device))
            }
            InputSpec::Tokens { len, vocab } => {
                Tensor::randint(*vocab, [batch, *len], (Kind::Int64, device))
            }
        }
    }
}

enum Body {
    Built {
        // Owns the weights the module refers to.
        _vs: nn::VarStore,
        module: Box<dyn ModuleT>,
    },
    Script(CModule),
}

/// A model ready to run on one device.
pub struct Net {
    name: String,
    body: Body,
    input: InputSpec,
    device: Device,
    params: u64,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("name", &self.name)
            .field("device", &self.device)
            .field("params", &self.params)
            .finish()
    }
}

impl Net {
    /// Builds `model`'s built-in architecture on `device`, with random weights (seeded, so two
    /// builds are the same network).
    pub fn build(model: &Model, device: Device) -> Result<Net, TorchError> {
        let spec = model
            .built
            .as_ref()
            .ok_or_else(|| TorchError::NotBuilt(model.id().to_string()))?;
        tch::manual_seed(0);
        let mut vs = nn::VarStore::new(device);
        let p = vs.root();
        let classes = spec.classes.unwrap_or(1000);
        let module: Box<dyn ModuleT> = match (spec.arch.as_str(), &spec.encoder) {
            ("alexnet", _) => Box::new(vision::alexnet(&p, classes)),
            ("resnet18", _) => Box::new(vision::ResNet18::new(&p, classes)),
            ("mobilenet-v2", _) => Box::new(vision::MobileNetV2::new(&p, classes)),
            ("yolov4-tiny", _) => Box::new(yolo::YoloV4Tiny::new(&p, classes)),
            ("encoder", Some(e)) => Box::new(encoder::Encoder::new(&p, e)),
            _ => {
                return Err(TorchError::UnknownArch {
                    file: model.file.clone(),
                    arch: spec.arch.clone(),
                })
            }
        };
        vs.freeze();
        let params = count(&vs);
        Ok(Net {
            name: model.id().to_string(),
            body: Body::Built { _vs: vs, module },
            input: InputSpec::of(spec),
            device,
            params,
        })
    }

    /// Loads a TorchScript file (`torch.jit.trace`/`script` + `save`) onto `device`.
    pub fn load_torchscript(
        path: &Path,
        input: InputSpec,
        device: Device,
    ) -> Result<Net, TorchError> {
        let load_err = |e: tch::TchError| TorchError::Load {
            path: path.to_path_buf(),
            message: first_line(&e.to_string()),
        };
        if !path.is_file() {
            return Err(TorchError::Load {
                path: path.to_path_buf(),
                message: "no such file".into(),
            });
        }
        let mut m = CModule::load_on_device(path, device).map_err(load_err)?;
        m.set_eval();
        let params = m
            .named_parameters()
            .map_err(load_err)?
            .iter()
            .map(|(_, t)| t.numel() as u64)
            .sum();
        Ok(Net {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            body: Body::Script(m),
            input,
            device,
            params,
        })
    }

    /// Model name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parameters (weights and biases; batch-norm running statistics are buffers, not counted).
    /// For a TorchScript file, its registered parameters: 0 for files edgetune saved, whose
    /// tracer keeps the weights as constants.
    pub fn params(&self) -> u64 {
        self.params
    }

    /// The device it runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// What one inference takes.
    pub fn input(&self) -> &InputSpec {
        &self.input
    }

    /// A random batch of inputs on the model's device.
    pub fn make_input(&self, batch: i64) -> Tensor {
        self.input.batch(batch, self.device)
    }

    /// One forward pass in inference mode. libtorch failures (out of memory, a shape the model
    /// does not take) come back as errors, not panics.
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>, String> {
        let _guard = tch::no_grad_guard();
        catch_torch(|| self.forward_raw(x)).and_then(|r| r)
    }

    /// One forward pass, without the no-grad guard or the panic catch (callers hold both): a
    /// libtorch exception in a built model panics.
    fn forward_raw(&self, x: &Tensor) -> Result<Vec<Tensor>, String> {
        match &self.body {
            Body::Built { module, .. } => Ok(vec![module.forward_t(x, false)]),
            Body::Script(m) => m
                .forward_is(&[IValue::Tensor(x.shallow_clone())])
                .map(tensors)
                .map_err(|e| first_line(&e.to_string())),
        }
    }

    /// Saves the network as TorchScript (traced with a batch of `batch`), so the same network
    /// can be loaded with `torch.jit.load` or `--torchscript` (the built-in models read no sizes
    /// into Rust values, so the file takes any batch size).
    pub fn save_torchscript(&self, path: &Path, batch: i64) -> Result<(), TorchError> {
        let save_err = |e: tch::TchError| TorchError::Load {
            path: path.to_path_buf(),
            message: format!("saving: {}", first_line(&e.to_string())),
        };
        let x = self.make_input(batch);
        let _guard = tch::no_grad_guard();
        let m = match &self.body {
            Body::Built { module, .. } => CModule::create_by_tracing(
                &self.name.replace('-', "_"),
                "forward",
                &[x],
                &mut |xs| vec![module.forward_t(&xs[0], false)],
            )
            .map_err(save_err)?,
            Body::Script(m) => {
                return m.save(path).map_err(save_err);
            }
        };
        m.save(path).map_err(save_err)
    }

    /// Waits for the device to finish what was queued.
    pub fn synchronize(&self) {
        if let Device::Cuda(i) = self.device {
            tch::Cuda::synchronize(i as i64);
        }
    }

    /// Runs `inferences` inferences in batches of `batch` (the last batch smaller when needed)
    /// between `meter.begin()` and `meter.end()`, after one untimed warm-up batch; returns the
    /// time between them. `stop` is checked between batches.
    pub fn run(
        &self,
        batch: u32,
        inferences: u32,
        meter: &mut dyn Meter,
        stop: Option<&AtomicBool>,
    ) -> Result<f64, DeviceError> {
        let failed = |e: String| {
            DeviceError::Workload(format!(
                "{} at batch size {batch} on {}: {e}",
                self.name,
                device_name(self.device)
            ))
        };
        if batch == 0 || inferences == 0 {
            return Err(failed("batch size and inferences must be positive".into()));
        }
        let _guard = tch::no_grad_guard();
        let x = catch_torch(|| self.make_input(batch as i64)).map_err(failed)?;
        catch_torch(|| {
            self.forward_raw(&x)?;
            self.synchronize();
            Ok(())
        })
        .and_then(|r| r)
        .map_err(failed)?;
        meter.begin()?;
        let started = Instant::now();
        // One catch around the whole loop: no panic-hook swap per batch inside the window.
        let finished = catch_torch(|| -> Result<bool, String> {
            let mut left = inferences;
            while left > 0 {
                if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                    return Ok(false);
                }
                let n = left.min(batch);
                let xb = if n == batch {
                    x.shallow_clone()
                } else {
                    x.narrow(0, 0, n as i64)
                };
                self.forward_raw(&xb)?;
                left -= n;
            }
            self.synchronize();
            Ok(true)
        });
        let time_s = started.elapsed().as_secs_f64();
        if !finished.and_then(|r| r).map_err(failed)? {
            return Err(DeviceError::Interrupted);
        }
        meter.end()?;
        Ok(time_s)
    }
}

fn count(vs: &nn::VarStore) -> u64 {
    // Every named variable but batch-norm running statistics (buffers, as PyTorch counts).
    vs.variables()
        .iter()
        .filter(|(name, _)| {
            !(name.ends_with("running_mean")
                || name.ends_with("running_var")
                || name.ends_with("num_batches_tracked"))
        })
        .map(|(_, t)| t.numel() as u64)
        .sum()
}

fn tensors(v: IValue) -> Vec<Tensor> {
    match v {
        IValue::Tensor(t) => vec![t],
        IValue::Tuple(v) | IValue::GenericList(v) => v.into_iter().flat_map(tensors).collect(),
        IValue::TensorList(v) => v,
        IValue::GenericDict(kv) => kv.into_iter().flat_map(|(_, v)| tensors(v)).collect(),
        _ => Vec::new(),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Runs `f`, turning a libtorch exception (which tch raises as a panic) into an error, without
/// the panic message on stderr.
fn catch_torch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(prev);
    r.map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("libtorch failed");
        first_line(msg.trim_start_matches("called `Result::unwrap()` on an `Err` value: "))
    })
}

/// A built-in or TorchScript model as the workload of a study.
pub struct TorchWorkload {
    net: Net,
    stop: Option<Arc<AtomicBool>>,
}

impl TorchWorkload {
    /// Wraps `net`; `stop` (a signal flag) ends a run between batches.
    pub fn new(net: Net, stop: Option<Arc<AtomicBool>>) -> TorchWorkload {
        TorchWorkload { net, stop }
    }

    /// The model.
    pub fn net(&self) -> &Net {
        &self.net
    }
}

impl Workload for TorchWorkload {
    fn name(&self) -> String {
        self.net.name.clone()
    }

    fn run(
        &mut self,
        batch_size: u32,
        inferences: u32,
        meter: &mut dyn Meter,
    ) -> Result<WorkloadRun, DeviceError> {
        let time_s = self
            .net
            .run(batch_size, inferences, meter, self.stop.as_deref())?;
        Ok(WorkloadRun {
            time_s: Some(time_s),
        })
    }
}

/// A meter that prints the markers of `--workload-cmd` (`edgetune infer` uses it, so a built-in
/// model can be another tool's external workload): on stdout, or on stderr when stdout is for
/// JSON (`infer --json`).
#[derive(Debug, Default)]
pub struct MarkerMeter {
    /// Print the markers on stderr.
    pub stderr: bool,
}

impl Meter for MarkerMeter {
    fn begin(&mut self) -> Result<(), DeviceError> {
        marker(super::command::BEGIN_MARKER, self.stderr)
    }

    fn end(&mut self) -> Result<(), DeviceError> {
        marker(super::command::END_MARKER, self.stderr)
    }
}

fn marker(m: &str, stderr: bool) -> Result<(), DeviceError> {
    use std::io::Write;
    let mut out: Box<dyn Write> = match stderr {
        true => Box::new(std::io::stderr().lock()),
        false => Box::new(std::io::stdout().lock()),
    };
    writeln!(out, "{m}")
        .and_then(|_| out.flush())
        .map_err(|e| DeviceError::Failed(format!("writing {m}: {e}")))
}

#[cfg(test)]
mod tests;
