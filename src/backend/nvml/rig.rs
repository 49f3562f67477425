//! The nvml backend's registry entry and rig: an NVIDIA GPU through NVML, its batch size (and
//! with `--allow-clock-control` its clock) tuned.

use super::{emergency_restore, find, load, names_a_gpu, GpuSpec, NvmlDevice, NvmlGpu};
use crate::backend::request::Common;
use crate::backend::rig::{
    check_workload, Entry, Flag, Held, RealWorkload, Refusal, Request, Resolved, Rig, Words,
};
use crate::catalog::Model;
use crate::device::{BackendKind, Device};
use crate::opt::Opt;
use crate::space::{Knob, Space};
use crate::workload::Workload;
use anyhow::Result;
use std::time::Duration;

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    kind: BackendKind::Nvml,
    help: "An NVIDIA GPU through NVML (--device gpu, gpu:N or its name): energy counter, batch size, GPU clocks with --allow-clock-control",
    words: Words {
        heading: "measured through NVML",
        provenance: "measured on the board",
        disclaimer: Some("Measured on the GPU through **NVML** (its energy counter, or its power polled where it has none)."),
        simulated: false,
    },
    takes: &[Flag::AllowClockControl, Flag::WorkloadCmd, Flag::Torchscript],
    min_window_s: super::MIN_WINDOW_S,
    resolve,
    emergency_restore: restore_now,
    restore_from_state: None,
};

fn restore_now() -> (Option<String>, Held) {
    (emergency_restore(load), Box::new(()))
}

/// The GPU when `--backend nvml` is asked for, or (`auto`) when the device is `gpu`, `gpu:N`,
/// or (not being a catalogue board) a GPU's name.
fn resolve(r: &Request) -> Resolved {
    let c = r.c;
    let device = c.device.as_deref();
    let names_a_gpu = device.is_some_and(names_a_gpu);
    let wanted = match c.backend {
        Some(BackendKind::Nvml) => true,
        None => names_a_gpu || device.is_some_and(|d| r.catalog.board(d).is_err()),
        _ => false,
    };
    if !wanted {
        return Ok(None);
    }
    let model = r.catalog.model_or_own(&c.model, c.brings_workload())?;
    let gpu = match find(device.unwrap_or("gpu")) {
        Ok(gpu) => gpu,
        // auto with a name that is neither a board nor a GPU: the catalogue's error says more.
        Err(_) if c.backend.is_none() && !names_a_gpu => return Ok(None),
        Err(e) => return Err(Refusal(e.to_string()).into()),
    };
    check_workload(c, &gpu.info.name, "")?;
    if c.allow_clock_control && !gpu.may_lock_clocks() {
        return Err(Refusal(format!(
            "{} locks GPU clocks, which NVML allows root only: run with sudo, or leave the flag out to tune the batch size at the default clocks",
            Opt::AllowClockControl
        ))
        .into());
    }
    let spec = GpuSpec::new(&gpu.info, c.allow_clock_control);
    let note = format!(
        "measuring {} (gpu:{}) through NVML ({}); {}",
        spec.name,
        spec.index,
        if gpu.info.energy_counter {
            "its energy counter"
        } else {
            "polling its power"
        },
        if c.allow_clock_control {
            "GPU clocks are locked per configuration and reset at the end".to_string()
        } else {
            format!(
                "GPU clocks stay at their defaults ({} to tune them)",
                Opt::AllowClockControl
            )
        }
    );
    Ok(Some(Box::new(NvmlRig {
        gpu,
        spec,
        model,
        note,
    })))
}

/// An NVIDIA GPU through NVML.
struct NvmlRig {
    /// The GPU and the library handle.
    gpu: NvmlGpu,
    /// Its id and knob values.
    spec: GpuSpec,
    model: Model,
    note: String,
}

impl Rig for NvmlRig {
    fn kind(&self) -> BackendKind {
        BackendKind::Nvml
    }
    fn model_id(&self) -> &str {
        self.model.id()
    }
    fn device_id(&self) -> &str {
        &self.spec.id
    }
    fn model(&self) -> Option<&Model> {
        Some(&self.model)
    }
    fn notes(&self) -> Vec<String> {
        vec![self.note.clone()]
    }
    fn space(&self, batch_sizes: Option<&[u64]>, fixes: &[(Knob, u64)]) -> Result<Space> {
        Ok(self.spec.space(&self.model, batch_sizes, fixes)?)
    }
    fn sets_clocks(&self) -> bool {
        self.spec.clock_control
    }
    fn gpu(&self) -> Option<&GpuSpec> {
        Some(&self.spec)
    }
    fn open(&self, c: &Common, real: RealWorkload) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        // The GPU being measured (NVML and CUDA number GPUs alike unless CUDA_DEVICE_ORDER or
        // CUDA_VISIBLE_DEVICES say otherwise).
        let w = real(Some(format!("cuda:{}", self.gpu.info.index)))?;
        let d = NvmlDevice::open(
            self.gpu.api.clone(),
            self.gpu.info.clone(),
            c.allow_clock_control,
            &c.board.state_path(),
            Duration::from_millis(c.board.poll_ms.max(1)),
        )
        .map_err(|e| Refusal(e.to_string()))?;
        Ok((Box::new(d), w))
    }
}
