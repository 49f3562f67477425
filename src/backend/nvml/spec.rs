//! An NVIDIA GPU as a tuning target: what reports call it and which values its knobs take. A GPU
//! is not a catalogue board: its CPU clock is not a knob, its GPU clock is one only with
//! `--allow-clock-control`, and any positive batch size is allowed.

use super::api::{GpuInfo, DEFAULT_CLOCKS};
use crate::catalog::Model;
use crate::opt::Opt;
use crate::space::{ClockTables, Knob, Space, SpaceError};

/// The CPU axis of a GPU: one value, 0 kHz ("not set").
const CPU_NOT_SET: [u64; 1] = [0];

/// A GPU's identity and knob values.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSpec {
    /// `gpu:N`, the device id in reports.
    pub id: String,
    /// Product name.
    pub name: String,
    /// NVML's index.
    pub index: u32,
    /// Whether its clocks are locked per configuration (`--allow-clock-control`).
    pub clock_control: bool,
    /// GPU clock values, Hz: the supported clocks with clock control, else the single
    /// [`DEFAULT_CLOCKS`] (not locked).
    pub gpu_freq_hz: Vec<u64>,
}

impl GpuSpec {
    /// The spec of `info`, locking clocks or not.
    pub fn new(info: &GpuInfo, clock_control: bool) -> GpuSpec {
        let gpu_freq_hz = if clock_control && !info.graphics_clocks_mhz.is_empty() {
            info.graphics_clocks_mhz
                .iter()
                .map(|m| *m as u64 * 1_000_000)
                .collect()
        } else {
            vec![DEFAULT_CLOCKS]
        };
        GpuSpec {
            id: format!("gpu:{}", info.index),
            name: info.name.clone(),
            index: info.index,
            clock_control,
            gpu_freq_hz,
        }
    }

    /// Its clock tables, as the space and `--fix` see them.
    pub fn tables(&self) -> ClockTables<'_> {
        ClockTables {
            device: &self.id,
            cpu_freq_khz: &CPU_NOT_SET,
            gpu_freq_hz: &self.gpu_freq_hz,
        }
    }

    /// Its space: the clock axis x the batch sizes asked for (any positive size) or the
    /// model's, narrowed by `fixes`.
    pub fn space(
        &self,
        model: &Model,
        batch_sizes: Option<&[u64]>,
        fixes: &[(Knob, u64)],
    ) -> Result<Space, SpaceError> {
        Space::with_any_batches(self.tables(), model, batch_sizes, fixes).map_err(|e| match e {
            // Only the default clocks: say how to get the others.
            SpaceError::NotInTable {
                knob: Knob::GpuFreqHz,
                value,
                board,
                valid,
            } if self.gpu_freq_hz == [DEFAULT_CLOCKS] => SpaceError::NotInTable {
                knob: Knob::GpuFreqHz,
                value,
                board,
                valid: format!(
                    "{valid} (0: default clocks; locking needs {})",
                    Opt::AllowClockControl
                ),
            },
            e => e,
        })
    }
}
