//! Devices (what the frequencies are set on and energy is read from) and workloads (what runs
//! inferences). A device never decides what to measure; a workload knows nothing about
//! frequencies. The protocol ([`crate::measure::protocol`]) drives both.

pub mod jetson;
pub mod nvml;
pub mod replay;
pub mod sim;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Failures of a device or workload at run time.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// A frequency the device does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// Anything else that went wrong while measuring.
    #[error("{0}")]
    Failed(String),
    /// The workload failed at this configuration (a non-zero exit, a timeout, a missing end
    /// marker): the study records it and goes on with the next configuration.
    #[error("{0}")]
    Workload(String),
    /// An interrupt (SIGINT/SIGTERM/SIGHUP) stopped the measurement part-way.
    #[error("interrupted while measuring")]
    Interrupted,
}

/// How the device's clocks are set for a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FreqSetting {
    /// Both clocks pinned.
    Pinned {
        /// CPU frequency, kHz.
        cpu_freq_khz: u64,
        /// GPU frequency, Hz.
        gpu_freq_hz: u64,
        /// Memory frequency, Hz, where it is a knob.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emc_freq_hz: Option<u64>,
        /// Online CPU cores, where it is a knob.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu_cores: Option<u32>,
    },
    /// The board's default governors, as found at start.
    Dvfs,
}

/// Energy and time of one measurement window, as the device saw it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnergyWindow {
    /// Energy over the window.
    pub energy_j: f64,
    /// Length of the window.
    pub time_s: f64,
    /// Energy of each sensor rail over the window, where the device has rails.
    pub rail_energy_j: Vec<(String, f64)>,
}

/// A device with frequency knobs and an energy meter.
pub trait Device: Send {
    /// Backend name (`sim`, `jetson`, ...).
    fn backend(&self) -> &'static str;
    /// Sets the clocks.
    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError>;
    /// Opens an energy window.
    fn window_begin(&mut self) -> Result<(), DeviceError>;
    /// Closes the window opened last and returns what it measured.
    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError>;
    /// Puts every knob back as it was found.
    fn restore(&mut self) -> Result<(), DeviceError>;
    /// What the baseline setting ([`FreqSetting::Dvfs`]) really is on this device: "dvfs" for
    /// the default governors, or what stands in for them.
    fn baseline_kind(&self) -> &'static str {
        "dvfs"
    }
    /// Things the user should know about the measurements (clocks that did not read back as
    /// set, a sensor that stopped refreshing), each once.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The restore snapshot as JSON, for devices that change hardware state (a copy is kept
    /// with the reports).
    fn restore_record(&self) -> Option<String> {
        None
    }
}

/// The energy window a workload opens around the part of its work that counts (the inferences,
/// not the model loading); the protocol hands it the device's meter. A workload calls
/// [`Meter::begin`] and then [`Meter::end`] once per run.
pub trait Meter {
    /// Opens the window; called again before `end`, it restarts it (what came before is
    /// discarded).
    fn begin(&mut self) -> Result<(), DeviceError>;
    /// Closes it.
    fn end(&mut self) -> Result<(), DeviceError>;
}

/// What one workload run reported about itself.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WorkloadRun {
    /// Time of the inference part alone, when the workload can tell it (markers); otherwise the
    /// device window's time is used.
    pub time_s: Option<f64>,
}

/// Something that runs inferences.
pub trait Workload: Send {
    /// Model name it runs.
    fn name(&self) -> String;
    /// Runs `inferences` inferences in batches of `batch_size`, with `meter`'s window open
    /// around them.
    fn run(
        &mut self,
        batch_size: u32,
        inferences: u32,
        meter: &mut dyn Meter,
    ) -> Result<WorkloadRun, DeviceError>;
}

/// A virtual energy meter for backends that do not measure (the twin, a replay table): a clock
/// and a cumulative energy counter that the workload advances, read through windows as a real
/// counter would be.
#[derive(Debug, Clone, Copy, Default)]
pub struct VirtualMeter {
    /// Virtual time elapsed.
    pub clock_s: f64,
    /// Energy used so far.
    pub energy_j: f64,
    window: Option<(f64, f64)>,
}

impl VirtualMeter {
    /// Adds a stretch of `time_s` seconds that used `energy_j` joules.
    pub fn advance(&mut self, time_s: f64, energy_j: f64) {
        self.clock_s += time_s;
        self.energy_j += energy_j;
    }
    /// Opens a window.
    pub fn begin(&mut self) {
        self.window = Some((self.clock_s, self.energy_j));
    }
    /// Closes the window opened last.
    pub fn end(&mut self) -> Result<EnergyWindow, DeviceError> {
        let (t0, e0) = self
            .window
            .take()
            .ok_or_else(|| DeviceError::Failed("window_end without window_begin".into()))?;
        Ok(EnergyWindow {
            energy_j: self.energy_j - e0,
            time_s: self.clock_s - t0,
            rail_energy_j: Vec::new(),
        })
    }
}

/// A meter that does nothing: for tests that open the device's window themselves, and for
/// throughput runs that only time.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMeter;

impl Meter for NoMeter {
    fn begin(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn end(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}
