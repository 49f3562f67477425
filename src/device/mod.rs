//! What every backend shares: the [`Device`] trait (what the frequencies are set on and energy
//! is read from), its settings, energy windows and errors. The backends themselves live in
//! [`crate::backend`], above the protocol, the twin and the workloads they use. A device never
//! decides what to measure; a workload ([`crate::workload`]) knows nothing about frequencies. The
//! protocol ([`crate::measure::protocol`]) drives both.

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
    /// A recorded table has no row for this configuration (a hole): the study records it as
    /// not measured and goes on; unlike a workload failure it says nothing of the next one.
    #[error("{0}")]
    NotRecorded(String),
    /// A recorded source has no more readings of this configuration: the protocol ends its runs
    /// with the readings it has (one reading is one run of unknown spread, not three equal ones).
    #[error("the recorded source has no reading of this configuration left")]
    NoMoreReadings,
}

/// What the baseline setting ([`FreqSetting::Dvfs`]) really is on a device: serialised as the
/// words reports have always carried in `baseline.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BaselineKind {
    /// The board's default governors.
    #[serde(rename = "dvfs")]
    Dvfs,
    /// A replay table without DVFS rows: its all-max clock corner stands in.
    #[serde(rename = "max-clocks")]
    MaxClocks,
    /// An NVIDIA GPU's default (boost) clocks.
    #[serde(rename = "default boost clocks")]
    DefaultClocks,
    /// A Jetson whose clocks were pinned when edgetune started: the clocks as found.
    #[serde(rename = "as found (clocks were pinned at start)")]
    AsFound,
    /// A power-mode table without DVFS rows: its highest-numbered mode stands in.
    #[serde(rename = "highest power mode")]
    HighestMode,
}

impl BaselineKind {
    /// Its short name in the summary and plots ("saving vs DVFS").
    pub fn short(self) -> &'static str {
        match self {
            BaselineKind::Dvfs => "DVFS",
            BaselineKind::MaxClocks => "max clocks",
            BaselineKind::DefaultClocks => "default clocks",
            BaselineKind::AsFound => "clocks as found",
            BaselineKind::HighestMode => "highest power mode",
        }
    }

    /// What it is, in a sentence's words.
    pub fn words(self) -> &'static str {
        match self {
            BaselineKind::Dvfs => "the default DVFS governors",
            BaselineKind::MaxClocks => {
                "the all-max clock corner (standing in for DVFS: the table has no DVFS rows)"
            }
            BaselineKind::DefaultClocks => "the default clocks",
            BaselineKind::AsFound => {
                "the clocks as found (they were pinned when edgetune started, so not DVFS)"
            }
            BaselineKind::HighestMode => {
                "the highest-numbered power mode (standing in for the default mode: the table has no DVFS rows; add copies of the default mode's rows marked `setting=dvfs` to make them the baseline)"
            }
        }
    }
}

/// Which backend measured: serialised as the lowercase names reports and journals always had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The digital twin.
    Sim,
    /// A recorded table.
    Replay,
    /// A real Jetson through sysfs.
    Jetson,
    /// An NVIDIA GPU through NVML.
    Nvml,
    /// The host CPU through Linux powercap (RAPL).
    Powercap,
}

impl BackendKind {
    /// The name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sim => "sim",
            BackendKind::Replay => "replay",
            BackendKind::Jetson => "jetson",
            BackendKind::Nvml => "nvml",
            BackendKind::Powercap => "powercap",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
        /// The nvpmodel power mode, where it is a knob (its caps, not pins: the governors run
        /// within them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        power_mode: Option<u32>,
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
    /// Which backend this is.
    fn backend(&self) -> BackendKind;
    /// Sets the clocks.
    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError>;
    /// Opens an energy window.
    fn window_begin(&mut self) -> Result<(), DeviceError>;
    /// Closes the window opened last and returns what it measured.
    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError>;
    /// Puts every knob back as it was found.
    fn restore(&mut self) -> Result<(), DeviceError>;
    /// Stays idle (no workload) for `time_s` at the setting applied, inside an open energy
    /// window: real hardware waits while its meter runs on.
    fn idle(&mut self, time_s: f64) -> Result<(), DeviceError> {
        std::thread::sleep(std::time::Duration::from_secs_f64(time_s.max(0.0)));
        Ok(())
    }
    /// What the baseline setting ([`FreqSetting::Dvfs`]) really is on this device: the default
    /// governors, or what stands in for them.
    fn baseline_kind(&self) -> BaselineKind {
        BaselineKind::Dvfs
    }
    /// Things the user should know about the measurements (clocks that did not read back as
    /// set, a sensor that stopped refreshing), each once.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the hardware is edgetune's virtual Jetson (`emulate`): real files, the twin's
    /// figures.
    fn emulated(&self) -> bool {
        false
    }
    /// The restore snapshot as JSON, for devices that change hardware state (a copy is kept
    /// with the reports).
    fn restore_record(&self) -> Option<String> {
        None
    }
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
