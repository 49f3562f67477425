//! A host CPU as a tuning target: what reports call it and which values its knobs take. Its GPU
//! clock is not a knob (0: "not set"); its CPU clocks are those every cpufreq policy offers; any
//! positive batch size is allowed.

use crate::catalog::Model;
use crate::space::{ClockTables, Knob, Space, SpaceError};

/// The GPU axis of a host CPU: one value, 0 Hz ("not set").
const GPU_NOT_SET: [u64; 1] = [0];

/// A host's identity and knob values.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// `host`, the device id in reports.
    pub id: String,
    /// The CPU's model name (`/proc/cpuinfo`), or `host CPU`.
    pub name: String,
    /// CPU clock values, kHz, ascending.
    pub cpu_freq_khz: Vec<u64>,
}

impl HostSpec {
    /// The spec of a host under `root` whose cpufreq policies all offer `cpu_freq_khz`.
    pub fn new(root: &std::path::Path, cpu_freq_khz: &[u64]) -> HostSpec {
        let name = std::fs::read_to_string(root.join("proc/cpuinfo"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "host CPU".into());
        HostSpec {
            id: "host".into(),
            name,
            cpu_freq_khz: cpu_freq_khz.to_vec(),
        }
    }

    /// Its clock tables, as the space and `--fix` see them.
    pub fn tables(&self) -> ClockTables<'_> {
        ClockTables {
            device: &self.id,
            cpu_freq_khz: &self.cpu_freq_khz,
            gpu_freq_hz: &GPU_NOT_SET,
        }
    }

    /// Its space: the CPU clocks x the batch sizes asked for (any positive size) or the
    /// model's, narrowed by `fixes`.
    pub fn space(
        &self,
        model: &Model,
        batch_sizes: Option<&[u64]>,
        fixes: &[(Knob, u64)],
    ) -> Result<Space, SpaceError> {
        Space::with_any_batches(self.tables(), model, batch_sizes, fixes)
    }
}
