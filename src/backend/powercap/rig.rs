//! The powercap backend's registry entry and rig: this host's CPU, its energy read from the
//! RAPL counters and its clock pinned through cpufreq, tuning the CPU frequency and batch size.

use super::{discover, emergency_restore, Discovery, HostSpec, PowercapDevice, PowercapError};
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

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    kind: BackendKind::Powercap,
    help: "This host's CPU through Linux powercap (RAPL) energy counters, its clock through cpufreq (runs --workload-cmd; root)",
    words: Words {
        heading: "measured through RAPL",
        provenance: "measured on this host's CPU through RAPL",
        disclaimer: Some("Measured on this host's CPU through Linux **powercap (RAPL)** energy counters: CPU packages and their DRAM, not the whole machine."),
        simulated: false,
    },
    takes: &[Flag::WorkloadCmd, Flag::Torchscript],
    min_window_s: 0.0,
    resolve,
    emergency_restore: restore_now,
    restore_from_state: Some(super::restore_from_state),
};

fn restore_now() -> (Option<String>, Held) {
    let (said, held) = emergency_restore();
    (said, Box::new(held))
}

/// This host's CPU, only when asked for (`--backend powercap`).
fn resolve(r: &Request) -> Resolved {
    let c = r.c;
    if c.backend != Some(BackendKind::Powercap) {
        return Ok(None);
    }
    let model = r.catalog.model_or_own(&c.model, c.brings_workload())?;
    let discovery = discover(&c.board.sysfs_root).map_err(|e| match e {
        PowercapError::NotFound(m) => Refusal(format!("{} powercap: {m}", Opt::Backend)),
        e => Refusal(e.to_string()),
    })?;
    let host = HostSpec::new(&discovery.root, &discovery.cpu_freq_khz);
    check_workload(c, &host.name, "")?;
    Ok(Some(Box::new(PowercapRig {
        host,
        discovery,
        model,
    })))
}

/// The host CPU through Linux powercap (RAPL).
struct PowercapRig {
    /// Its id and knob values.
    host: HostSpec,
    /// What discovery found under the sysfs root.
    discovery: Discovery,
    model: Model,
}

impl Rig for PowercapRig {
    fn kind(&self) -> BackendKind {
        BackendKind::Powercap
    }
    fn model_id(&self) -> &str {
        self.model.id()
    }
    fn device_id(&self) -> &str {
        &self.host.id
    }
    fn model(&self) -> Option<&Model> {
        Some(&self.model)
    }
    fn notes(&self) -> Vec<String> {
        vec![format!(
            "measuring this host's CPU ({}) through RAPL ({} counters) while pinning its clock through cpufreq ({} policies)",
            self.host.name,
            self.discovery.zones.iter().filter(|z| z.counted).count(),
            self.discovery.policies.len()
        )]
    }
    fn space(&self, batch_sizes: Option<&[u64]>, fixes: &[(Knob, u64)]) -> Result<Space> {
        Ok(self.host.space(&self.model, batch_sizes, fixes)?)
    }
    fn open(&self, c: &Common, real: RealWorkload) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        // The built-in model runs on the CPU being measured unless told otherwise.
        let w = real(Some("cpu".into()))?;
        let d = PowercapDevice::open(self.discovery.clone(), &c.board.state_path())
            .map_err(|e| Refusal(e.to_string()))?;
        Ok((Box::new(d), w))
    }
}
