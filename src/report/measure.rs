//! What `measure` and `baseline` print: one row per batch size.

use crate::device::{BackendKind, BaselineKind, FreqSetting};
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

/// The table `measure` and `baseline` print; `baseline` is what the DVFS setting is on the
/// device measured (a GPU's default clocks, a Jetson's clocks as found).
pub fn text(
    rep: &MeasureReport,
    setting: &FreqSetting,
    baseline: BaselineKind,
    inferences: u32,
) -> String {
    let what = match (setting, baseline) {
        (FreqSetting::Dvfs, BaselineKind::Dvfs) => "DVFS governors".to_string(),
        (FreqSetting::Dvfs, other) => other.short().to_string(),
        (
            FreqSetting::Pinned {
                cpu_freq_khz,
                gpu_freq_hz,
                ..
            },
            _,
        ) => {
            // A clock the device has no knob for (0) is left out.
            let cpu = (*cpu_freq_khz != 0).then(|| format!("CPU {} MHz", cpu_mhz(*cpu_freq_khz)));
            let gpu = (*gpu_freq_hz != 0).then(|| format!("GPU {} MHz", gpu_mhz(*gpu_freq_hz)));
            [cpu, gpu]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let source = match rep.backend {
        BackendKind::Sim => "digital twin",
        BackendKind::Replay => "recorded table",
        BackendKind::Jetson => "board",
        BackendKind::Nvml => "GPU",
        BackendKind::Powercap => "host CPU",
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
