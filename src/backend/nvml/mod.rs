//! NVIDIA GPUs through NVML (`--backend nvml`).
//!
//! Energy comes from the GPU's cumulative counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ,
//! Volta and newer), read when the window opens and when it closes; where the counter is not
//! supported, the shared power poller integrates `nvmlDeviceGetPowerUsage` instead. The batch
//! size is always a knob; the GPU clock is one only with `--allow-clock-control`, which locks
//! clocks through `nvmlDeviceSetGpuLockedClocks` (root only) after writing a restore record, and
//! resets them on every exit path. Without it the GPU runs at its default boost behaviour, which
//! is also the baseline.
//!
//! NVML is reached through the [`NvmlApi`] trait, so the tests run everything on a fake GPU;
//! [`SystemNvml`] is the real library, loaded at run time (nvml-wrapper opens
//! `libnvidia-ml.so.1`), so edgetune builds and runs where there is no driver.

use crate::device::BaselineKind;
use crate::device::{Device, DeviceError, EnergyWindow, FreqSetting};
use crate::measure::power::Poller;
use crate::opt::Opt;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

pub mod fake;
pub mod rig;
mod spec;
#[cfg(test)]
mod tests;

mod api;
pub use api::{GpuInfo, NvmlApi, NvmlFailure, DEFAULT_CLOCKS};
pub use spec::GpuSpec;

/// Default `--min-window-s` on NVML: the counter moves in steps, and 3200 inferences of a small
/// model can take 0.2 s on a data-centre GPU.
pub const MIN_WINDOW_S: f64 = 2.0;

/// What a user can fix about using NVML.
#[derive(Debug, Error)]
pub enum NvmlError {
    /// The library is not there.
    #[error("NVML could not be loaded ({0}): libnvidia-ml.so.1 comes with the NVIDIA driver; install the driver, or use {backend} sim for a Jetson's digital twin", backend = Opt::Backend)]
    NotFound(String),
    /// No GPU matches what was asked.
    #[error("no NVIDIA GPU `{asked}` here; NVML lists {listed} (name one as gpu:N or by name)")]
    NoSuchGpu {
        /// What was asked.
        asked: String,
        /// What there is.
        listed: String,
    },
    /// Locking clocks was refused.
    #[error("{flag}: NVML refused to lock the GPU clocks ({0}); run as root, or leave it out to tune the batch size at the default clocks", flag = Opt::AllowClockControl)]
    ClockControl(NvmlFailure),
    /// A restore record from an earlier run is still there.
    #[error("{} records GPU clocks locked by an earlier edgetune that did not finish; run `sudo edgetune restore` first", .0.display())]
    StaleRecord(PathBuf),
    /// Any other NVML failure.
    #[error("NVML: {0}")]
    Failed(String),
}

/// The real NVML.
pub struct SystemNvml(nvml_wrapper::Nvml);

impl SystemNvml {
    /// Loads `libnvidia-ml.so.1` and initialises it.
    pub fn load() -> Result<SystemNvml, NvmlError> {
        nvml_wrapper::Nvml::init()
            .map(SystemNvml)
            .map_err(|e| NvmlError::NotFound(e.to_string()))
    }

    fn dev(&self, gpu: u32) -> Result<nvml_wrapper::Device<'_>, NvmlFailure> {
        self.0.device_by_index(gpu).map_err(failure)
    }
}

fn failure(e: nvml_wrapper::error::NvmlError) -> NvmlFailure {
    use nvml_wrapper::error::NvmlError as E;
    match e {
        E::NotSupported => NvmlFailure::NotSupported,
        E::NoPermission => NvmlFailure::NoPermission,
        other => NvmlFailure::Other(other.to_string()),
    }
}

impl NvmlApi for SystemNvml {
    fn device_count(&self) -> Result<u32, NvmlFailure> {
        self.0.device_count().map_err(failure)
    }
    fn name(&self, gpu: u32) -> Result<String, NvmlFailure> {
        self.dev(gpu)?.name().map_err(failure)
    }
    fn total_energy_mj(&self, gpu: u32) -> Result<u64, NvmlFailure> {
        self.dev(gpu)?.total_energy_consumption().map_err(failure)
    }
    fn power_mw(&self, gpu: u32) -> Result<u32, NvmlFailure> {
        self.dev(gpu)?.power_usage().map_err(failure)
    }
    fn graphics_clocks_mhz(&self, gpu: u32) -> Result<Vec<u32>, NvmlFailure> {
        let d = self.dev(gpu)?;
        let mem = d.supported_memory_clocks().map_err(failure)?;
        let top = mem.iter().copied().max().ok_or(NvmlFailure::NotSupported)?;
        let mut v = d.supported_graphics_clocks(top).map_err(failure)?;
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }
    fn graphics_clock_mhz(&self, gpu: u32) -> Result<u32, NvmlFailure> {
        self.dev(gpu)?
            .clock_info(nvml_wrapper::enum_wrappers::device::Clock::Graphics)
            .map_err(failure)
    }
    fn lock_graphics_clocks(
        &mut self,
        gpu: u32,
        min_mhz: u32,
        max_mhz: u32,
    ) -> Result<(), NvmlFailure> {
        use nvml_wrapper::enums::device::GpuLockedClocksSetting;
        self.dev(gpu)?
            .set_gpu_locked_clocks(GpuLockedClocksSetting::Numeric {
                min_clock_mhz: min_mhz,
                max_clock_mhz: max_mhz,
            })
            .map_err(failure)
    }
    fn reset_graphics_clocks(&mut self, gpu: u32) -> Result<(), NvmlFailure> {
        self.dev(gpu)?.reset_gpu_locked_clocks().map_err(failure)
    }
    fn may_lock_clocks(&self) -> bool {
        is_root()
    }
}

/// Shared between the device and a fallback poller thread.
pub type SharedNvml = Arc<Mutex<Box<dyn NvmlApi>>>;

/// Describes GPU `gpu`.
pub fn describe(api: &dyn NvmlApi, gpu: u32) -> Result<GpuInfo, NvmlError> {
    let name = api
        .name(gpu)
        .map_err(|e| NvmlError::Failed(format!("GPU {gpu}: {e}")))?;
    Ok(GpuInfo {
        index: gpu,
        name,
        graphics_clocks_mhz: api.graphics_clocks_mhz(gpu).unwrap_or_default(),
        graphics_clock_mhz: api.graphics_clock_mhz(gpu).ok(),
        power_w: api.power_mw(gpu).ok().map(|p| p as f64 / 1e3),
        energy_counter: api.total_energy_mj(gpu).is_ok(),
    })
}

/// Every GPU NVML sees.
pub fn list(api: &dyn NvmlApi) -> Result<Vec<GpuInfo>, NvmlError> {
    let n = api
        .device_count()
        .map_err(|e| NvmlError::Failed(e.to_string()))?;
    (0..n).map(|i| describe(api, i)).collect()
}

/// Whether `asked` names a GPU (`gpu`, `gpu:N`, `cuda:N` or part of a product name), and which.
pub fn pick(api: &dyn NvmlApi, asked: &str) -> Result<GpuInfo, NvmlError> {
    let gpus = list(api)?;
    let a = asked.trim().to_ascii_lowercase();
    let index = match a.as_str() {
        "gpu" => Some(0),
        _ => a
            .strip_prefix("gpu:")
            .or_else(|| a.strip_prefix("cuda:"))
            .and_then(|n| n.parse::<u32>().ok()),
    };
    let found = match index {
        Some(i) => gpus.iter().find(|g| g.index == i),
        None if a.len() >= 3 => gpus
            .iter()
            .find(|g| g.name.to_ascii_lowercase().contains(&a)),
        None => None,
    };
    found.cloned().ok_or_else(|| NvmlError::NoSuchGpu {
        asked: asked.to_string(),
        listed: if gpus.is_empty() {
            "no GPU".into()
        } else {
            gpus.iter()
                .map(|g| format!("gpu:{} {}", g.index, g.name))
                .collect::<Vec<_>>()
                .join(", ")
        },
    })
}

/// Loads NVML: the real library, or the simulated GPU that `EDGETUNE_FAKE_NVML=FILE.json`
/// describes (the CLI tests' seam; see [`fake`]).
pub fn load() -> Result<Box<dyn NvmlApi>, NvmlError> {
    if let Some(spec) = std::env::var_os("EDGETUNE_FAKE_NVML") {
        return fake::FakeNvml::from_file(Path::new(&spec))
            .map(|f| Box::new(f) as Box<dyn NvmlApi>)
            .map_err(NvmlError::NotFound);
    }
    SystemNvml::load().map(|n| Box::new(n) as Box<dyn NvmlApi>)
}

/// A GPU found through NVML, with the library handle to measure it.
#[derive(Clone)]
pub struct NvmlGpu {
    /// NVML, shared with the device.
    pub api: SharedNvml,
    /// The GPU.
    pub info: GpuInfo,
}

impl NvmlGpu {
    /// Whether this process may lock the GPU's clocks.
    pub fn may_lock_clocks(&self) -> bool {
        self.api
            .lock()
            .map(|a| a.may_lock_clocks())
            .unwrap_or(false)
    }
}

/// Loads NVML and finds the GPU `asked` names (`gpu`, `gpu:N`, `cuda:N`, part of a name).
pub fn find(asked: &str) -> Result<NvmlGpu, NvmlError> {
    let api = load()?;
    let info = pick(api.as_ref(), asked)?;
    Ok(NvmlGpu {
        api: Arc::new(Mutex::new(api)),
        info,
    })
}

/// Every GPU for `devices`; `None` when NVML does not load (no driver: nothing to list).
pub fn gpus() -> Option<Vec<GpuInfo>> {
    let api = load().ok()?;
    list(api.as_ref()).ok()
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

/// Whether a device name could only mean an NVML GPU (`gpu`, `gpu:N`).
pub fn names_a_gpu(device: &str) -> bool {
    let d = device.trim().to_ascii_lowercase();
    d == "gpu"
        || d.strip_prefix("gpu:")
            .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// What `--allow-clock-control` leaves on disk while clocks may be locked, so `edgetune restore`
/// can reset them after a SIGKILL or a power loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockRecord {
    /// NVML's index of the GPU.
    pub gpu: u32,
    /// Its name, to check it is the same GPU.
    pub name: String,
    /// Graphics clock when edgetune started, MHz (for the record).
    pub graphics_clock_mhz_at_start: Option<u32>,
}

/// The record's path beside the Jetson snapshot (`/var/lib/edgetune/nvml-restore.json`).
pub fn record_path(state_path: &Path) -> PathBuf {
    state_path.with_file_name("nvml-restore.json")
}

/// The record of the clocks locked now, for a second Ctrl-C (see [`emergency_restore`]).
static EMERGENCY: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Resets the clocks locked now from their record, with a freshly loaded NVML (a second Ctrl-C
/// while a run is going; the process exits right after). Returns what it did, if anything.
pub fn emergency_restore(
    load: impl FnOnce() -> Result<Box<dyn NvmlApi>, NvmlError>,
) -> Option<String> {
    let path = EMERGENCY.lock().ok()?.clone()?;
    Some(
        match load().and_then(|mut api| restore_from_record(api.as_mut(), &path)) {
            Ok(Some(r)) => format!("reset the locked clocks of GPU {}", r.gpu),
            Ok(None) => "no GPU clocks to reset".into(),
            Err(e) => format!("resetting the GPU clocks failed: {e}; run `sudo edgetune restore`"),
        },
    )
}

/// Resets the clocks a record names and deletes it; `Ok(None)` when there is no record.
pub fn restore_from_record(
    api: &mut dyn NvmlApi,
    path: &Path,
) -> Result<Option<ClockRecord>, NvmlError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let rec: ClockRecord = serde_json::from_str(&text)
        .map_err(|e| NvmlError::Failed(format!("{}: {e}", path.display())))?;
    api.reset_graphics_clocks(rec.gpu)
        .map_err(|e| NvmlError::Failed(format!("resetting GPU {} clocks: {e}", rec.gpu)))?;
    std::fs::remove_file(path)
        .map_err(|e| NvmlError::Failed(format!("removing {}: {e}", path.display())))?;
    Ok(Some(rec))
}

enum Window {
    Counter { start_mj: u64, at: Instant },
    Polling(Poller),
}

/// A GPU measured through NVML.
pub struct NvmlDevice {
    api: SharedNvml,
    gpu: GpuInfo,
    clock_control: bool,
    record: PathBuf,
    /// The clock locked now, MHz.
    locked_mhz: Option<u32>,
    poll: Duration,
    window: Option<Window>,
    notes: Vec<String>,
    stalled_noted: bool,
}

impl NvmlDevice {
    /// Opens GPU `gpu.index`. With `clock_control`, refuses to start while a record from an
    /// earlier run exists (its clocks may still be locked); the record itself is written just
    /// before the first lock.
    pub fn open(
        api: SharedNvml,
        gpu: GpuInfo,
        clock_control: bool,
        state_path: &Path,
        poll: Duration,
    ) -> Result<NvmlDevice, NvmlError> {
        let record = record_path(state_path);
        if clock_control && record.exists() {
            return Err(NvmlError::StaleRecord(record));
        }
        let mut notes = Vec::new();
        if !gpu.energy_counter {
            notes.push(format!(
                "{} has no cumulative energy counter (it needs Volta or newer): power_usage was polled every {} ms and integrated instead",
                gpu.name,
                poll.as_millis()
            ));
        }
        if !clock_control {
            notes.push(format!(
                "GPU clocks were not locked (no {}): every configuration ran at the GPU's default boost behaviour, which is also the baseline; only the batch size was tuned",
                Opt::AllowClockControl
            ));
        }
        Ok(NvmlDevice {
            api,
            gpu,
            clock_control,
            record,
            locked_mhz: None,
            poll,
            window: None,
            notes,
            stalled_noted: false,
        })
    }

    /// The GPU.
    pub fn gpu(&self) -> &GpuInfo {
        &self.gpu
    }

    fn nvml<T>(
        &self,
        f: impl FnOnce(&mut dyn NvmlApi) -> Result<T, NvmlFailure>,
    ) -> Result<T, NvmlFailure> {
        let mut g = self.api.lock().unwrap_or_else(|p| p.into_inner());
        f(g.as_mut())
    }

    fn lock(&mut self, mhz: u32) -> Result<(), DeviceError> {
        if self.locked_mhz == Some(mhz) {
            return Ok(());
        }
        if self.locked_mhz.is_none() {
            // The record goes to disk before the first lock, so a killed run can be undone.
            let rec = ClockRecord {
                gpu: self.gpu.index,
                name: self.gpu.name.clone(),
                graphics_clock_mhz_at_start: self.gpu.graphics_clock_mhz,
            };
            write_record(&self.record, &rec).map_err(DeviceError::Failed)?;
            if let Ok(mut e) = EMERGENCY.lock() {
                *e = Some(self.record.clone());
            }
        }
        let gpu = self.gpu.index;
        match self.nvml(|n| n.lock_graphics_clocks(gpu, mhz, mhz)) {
            Ok(()) => {
                self.locked_mhz = Some(mhz);
                Ok(())
            }
            Err(e) => {
                if self.locked_mhz.is_none() {
                    let _ = std::fs::remove_file(&self.record);
                }
                Err(DeviceError::Failed(NvmlError::ClockControl(e).to_string()))
            }
        }
    }

    fn unlock(&mut self) -> Result<(), DeviceError> {
        if self.locked_mhz.is_none() {
            return Ok(());
        }
        let gpu = self.gpu.index;
        self.nvml(|n| n.reset_graphics_clocks(gpu))
            .map_err(|e| DeviceError::Failed(format!("resetting the GPU clocks: {e}")))?;
        self.locked_mhz = None;
        let _ = std::fs::remove_file(&self.record);
        if let Ok(mut e) = EMERGENCY.lock() {
            *e = None;
        }
        Ok(())
    }
}

fn write_record(path: &Path, rec: &ClockRecord) -> Result<(), String> {
    let err = |e: std::io::Error| {
        format!(
            "cannot write the restore record {}: {e} (set {} to a writable place)",
            path.display(),
            Opt::StateFile
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let body = serde_json::to_string_pretty(rec).expect("plain data");
    crate::files::write_replacing(path, body.as_bytes()).map_err(err)
}

/// Energy between two counter readings, mJ, across a wrap-around of the u64 counter.
pub fn counter_delta_mj(start: u64, end: u64) -> u64 {
    end.wrapping_sub(start)
}

impl Device for NvmlDevice {
    fn backend(&self) -> crate::device::BackendKind {
        crate::device::BackendKind::Nvml
    }

    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError> {
        match *setting {
            FreqSetting::Dvfs => self.unlock(),
            FreqSetting::Pinned {
                cpu_freq_khz,
                gpu_freq_hz,
                emc_freq_hz,
                cpu_cores,
                power_mode,
            } => {
                if cpu_freq_khz != 0
                    || emc_freq_hz.is_some()
                    || cpu_cores.is_some()
                    || power_mode.is_some()
                {
                    return Err(DeviceError::Unsupported(
                        "the nvml backend sets the GPU clock only".into(),
                    ));
                }
                if gpu_freq_hz == DEFAULT_CLOCKS {
                    return self.unlock();
                }
                if !self.clock_control {
                    return Err(DeviceError::Unsupported(format!(
                        "locking the GPU clock needs {}",
                        Opt::AllowClockControl
                    )));
                }
                let mhz = (gpu_freq_hz / 1_000_000) as u32;
                if !self.gpu.graphics_clocks_mhz.contains(&mhz) {
                    return Err(DeviceError::Unsupported(format!(
                        "{mhz} MHz is not a supported graphics clock of {}",
                        self.gpu.name
                    )));
                }
                self.lock(mhz)
            }
        }
    }

    fn window_begin(&mut self) -> Result<(), DeviceError> {
        let gpu = self.gpu.index;
        self.window = Some(if self.gpu.energy_counter {
            let start_mj = self
                .nvml(|n| n.total_energy_mj(gpu))
                .map_err(|e| DeviceError::Failed(format!("reading the energy counter: {e}")))?;
            Window::Counter {
                start_mj,
                at: Instant::now(),
            }
        } else {
            let api = self.api.clone();
            let source = move || -> Result<f64, String> {
                let g = api.lock().map_err(|_| "NVML lock poisoned".to_string())?;
                g.power_mw(gpu)
                    .map(|p| p as f64)
                    .map_err(|e| format!("power_usage: {e}"))
            };
            Window::Polling(Poller::start(source, self.poll))
        });
        Ok(())
    }

    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
        let gpu = self.gpu.index;
        match self.window.take() {
            None => Err(DeviceError::Failed("no energy window is open".into())),
            Some(Window::Counter { start_mj, at }) => {
                let end = self
                    .nvml(|n| n.total_energy_mj(gpu))
                    .map_err(|e| DeviceError::Failed(format!("reading the energy counter: {e}")))?;
                let time_s = at.elapsed().as_secs_f64();
                let delta = counter_delta_mj(start_mj, end);
                if delta == 0 && !self.stalled_noted {
                    self.stalled_noted = true;
                    self.notes.push(format!(
                        "the energy counter did not move during a {time_s:.3} s window: windows that short are below its update period, which is why runs are lengthened to {}",
                        Opt::MinWindowS
                    ));
                }
                Ok(EnergyWindow {
                    energy_j: delta as f64 / 1e3,
                    time_s,
                    rail_energy_j: Vec::new(),
                })
            }
            Some(Window::Polling(p)) => {
                let trace = p.stop();
                if let Some(e) = trace.error {
                    return Err(DeviceError::Failed(format!(
                        "polling the GPU's power failed: {e}; the run is discarded"
                    )));
                }
                Ok(EnergyWindow {
                    energy_j: trace.energy_j,
                    time_s: trace.time_s,
                    rail_energy_j: Vec::new(),
                })
            }
        }
    }

    fn restore(&mut self) -> Result<(), DeviceError> {
        self.unlock()
    }

    fn baseline_kind(&self) -> BaselineKind {
        BaselineKind::DefaultClocks
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

impl Drop for NvmlDevice {
    /// The last line of defence (an early return or a panic): unlock the clocks.
    fn drop(&mut self) {
        if let Err(e) = self.unlock() {
            eprintln!(
                "error: {e}; run `sudo edgetune restore` (record at {})",
                self.record.display()
            );
        }
    }
}
