//! The nvml backend's side of the commands: choosing it, the GPU's search space, and its lines
//! in `devices` and `restore`.

use super::{Backend, Common};
use crate::catalog::{Board, Catalog, Model};
use crate::device::nvml::{self, GpuInfo, NvmlApi, NvmlError, SharedNvml, SystemNvml};
use crate::error::UsageError;
use crate::space::{Knob, Space, SpaceError};
use anyhow::Result;
use std::sync::{Arc, Mutex};

/// Default `--min-window-s` on NVML: the counter moves in steps, and 3200 inferences of a small
/// model can take 0.2 s on a data-centre GPU.
pub const DEFAULT_MIN_WINDOW_S: f64 = 2.0;

/// The GPU a command runs on.
#[derive(Clone)]
pub struct NvmlTarget {
    /// NVML, shared with the device.
    pub api: SharedNvml,
    /// The GPU.
    pub gpu: GpuInfo,
}

/// Loads NVML: the real library, or the simulated GPU that `EDGETUNE_FAKE_NVML=FILE.json`
/// describes (the CLI tests' seam; see [`nvml::fake`]).
pub fn load() -> Result<Box<dyn NvmlApi>, NvmlError> {
    if let Some(spec) = std::env::var_os("EDGETUNE_FAKE_NVML") {
        return nvml::fake::FakeNvml::from_file(std::path::Path::new(&spec))
            .map(|f| Box::new(f) as Box<dyn NvmlApi>)
            .map_err(NvmlError::NotFound);
    }
    SystemNvml::load().map(|n| Box::new(n) as Box<dyn NvmlApi>)
}

/// Whether `c` asks for the nvml backend, and on which GPU: `--backend nvml`, or `auto` with a
/// device that is `gpu`, `gpu:N`, or (not being a catalogue board) a GPU's name.
pub fn choose(c: &Common, catalog: &Catalog) -> Result<Option<NvmlTarget>> {
    let device = c.device.as_deref();
    let wanted = match c.backend {
        Backend::Nvml => true,
        Backend::Auto => match device {
            Some(d) if nvml::names_a_gpu(d) => true,
            Some(d) => catalog.board(d).is_err(),
            None => false,
        },
        _ => false,
    };
    if !wanted {
        return Ok(None);
    }
    let api = match load() {
        Ok(api) => api,
        // auto with a name that is neither a board nor a GPU: the catalogue's error says more.
        Err(_) if c.backend == Backend::Auto && !device.is_some_and(nvml::names_a_gpu) => {
            return Ok(None)
        }
        Err(e) => return Err(UsageError(e.to_string()).into()),
    };
    let gpu = match nvml::pick(api.as_ref(), device.unwrap_or("gpu")) {
        Ok(g) => g,
        Err(_) if c.backend == Backend::Auto && !device.is_some_and(nvml::names_a_gpu) => {
            return Ok(None)
        }
        Err(e) => return Err(UsageError(e.to_string()).into()),
    };
    Ok(Some(NvmlTarget {
        api: Arc::new(Mutex::new(api)),
        gpu,
    }))
}

/// A catalogue-shaped board for the GPU, so reports and spaces treat it like any device: its id
/// is `gpu:N`, the CPU is not a knob (0 kHz: not controlled) and the GPU clock values are the
/// supported clocks with `--allow-clock-control`, else the default (0: not locked). The twin
/// half is the template's and is never used on this backend.
pub fn board(template: &Board, t: &NvmlTarget, clock_control: bool) -> Board {
    let mut b = template.clone();
    b.board.id = format!("gpu:{}", t.gpu.index);
    b.board.name = t.gpu.name.clone();
    b.board.aliases.clear();
    b.board.detect_model.clear();
    b.board.soc = "nvml".into();
    b.cpu.frequencies_khz = vec![0];
    b.gpu.frequencies_hz = gpu_axis_hz(&t.gpu, clock_control);
    b.gpu.devfreq = String::new();
    b.emc = None;
    b.emulator = None;
    b.file = format!("NVML GPU {}", t.gpu.index);
    b
}

fn gpu_axis_hz(gpu: &GpuInfo, clock_control: bool) -> Vec<u64> {
    if clock_control && !gpu.graphics_clocks_mhz.is_empty() {
        gpu.graphics_clocks_mhz
            .iter()
            .map(|m| *m as u64 * 1_000_000)
            .collect()
    } else {
        vec![nvml::DEFAULT_CLOCKS]
    }
}

/// The GPU's space: its clock axis (see [`board`]) x the batch sizes asked for (any positive
/// size: a GPU is not limited to the paper's) or the model's, narrowed by `fixes`.
pub fn space(
    board: &Board,
    model: &Model,
    batch_sizes: Option<&[u64]>,
    fixes: &[(Knob, u64)],
) -> Result<Space, SpaceError> {
    let allowed: Vec<u64> = match batch_sizes {
        Some(b) => b.to_vec(),
        None => model.paper.batch_sizes.iter().map(|b| *b as u64).collect(),
    };
    Space::with_batches(board, &model.model.id, &allowed, Some(&allowed), fixes).map_err(
        |e| match e {
            // Only the default clocks: say how to get the others.
            SpaceError::NotInTable {
                knob: Knob::GpuFreqHz,
                value,
                board: id,
                valid,
            } if board.gpu.frequencies_hz == [nvml::DEFAULT_CLOCKS] => SpaceError::NotInTable {
                knob: Knob::GpuFreqHz,
                value,
                board: id,
                valid: format!("{valid} (0: default clocks; locking needs --allow-clock-control)"),
            },
            e => e,
        },
    )
}

/// The `--min-window-s` to use: the one given, else 2 s on NVML and none elsewhere.
pub fn min_window_s(c: &Common, nvml: bool) -> f64 {
    c.min_window_s
        .unwrap_or(if nvml { DEFAULT_MIN_WINDOW_S } else { 0.0 })
}

/// The GPUs for `devices`: `None` when NVML does not load (no driver: nothing to list).
pub fn gpus() -> Option<Vec<GpuInfo>> {
    let api = load().ok()?;
    nvml::list(api.as_ref()).ok()
}

/// One GPU's lines in `devices`.
pub fn gpu_text(g: &GpuInfo, root: bool) -> String {
    let clocks = match (g.graphics_clocks_mhz.first(), g.graphics_clocks_mhz.last()) {
        (Some(lo), Some(hi)) => format!(
            "{} graphics clocks {lo}-{hi} MHz",
            g.graphics_clocks_mhz.len()
        ),
        _ => "graphics clocks not listed".into(),
    };
    format!(
        "GPU gpu:{} {} (backend nvml): {clocks}, now {}, power {}; energy counter {}; clock control {}",
        g.index,
        g.name,
        g.graphics_clock_mhz
            .map_or("?".into(), |m| format!("{m} MHz")),
        g.power_w.map_or("?".into(), |p| format!("{p:.1} W")),
        if g.energy_counter {
            "yes"
        } else {
            "no (power is polled)"
        },
        if root {
            "permitted (root) with --allow-clock-control"
        } else {
            "needs root and --allow-clock-control"
        }
    )
}

/// Whether this process runs as root (NVML clock locking needs it).
pub fn is_root() -> bool {
    // /proc/self/status's Uid line: real, effective, ...; no libc call needed.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
