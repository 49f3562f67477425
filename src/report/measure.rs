//! What `measure` and `baseline` print: one row per batch size.

use super::source::Source;
use crate::device::{BackendKind, FreqSetting};
use crate::measure::Measurement;
use crate::units::{cpu_mhz, gpu_mhz};
use serde::Serialize;

/// Output of `measure` / `baseline` in JSON.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureReport {
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Backend.
    pub backend: BackendKind,
    /// One measurement per batch size.
    pub measurements: Vec<Measurement>,
}

/// The table `measure` and `baseline` print.
pub fn text(rep: &MeasureReport, setting: &FreqSetting, inferences: u32) -> String {
    let what = match setting {
        FreqSetting::Dvfs => "DVFS governors".to_string(),
        FreqSetting::Pinned {
            cpu_freq_khz,
            gpu_freq_hz,
            ..
        } => format!(
            "CPU {} MHz, GPU {} MHz",
            cpu_mhz(*cpu_freq_khz),
            gpu_mhz(*gpu_freq_hz)
        ),
    };
    let source = if rep.backend.is_simulated() {
        "digital twin"
    } else {
        "board"
    };
    let mut s = format!(
        "{} on {} ({source}), {what}, {inferences} inferences per run\n",
        rep.model, rep.device
    );
    s += "batch | energy (J) | time (s) | power (W) | mJ/inf | runs | CV (%)\n";
    for m in &rep.measurements {
        s += &format!(
            "{:>5} | {:>10.1} | {:>8.1} | {:>9.2} | {:>6.1} | {:>4} | {:>6.2}\n",
            m.batch_size,
            m.energy_j,
            m.time_s,
            m.avg_power_w,
            m.energy_per_inference_mj,
            m.runs.len(),
            m.cv * 100.0
        );
    }
    s
}
