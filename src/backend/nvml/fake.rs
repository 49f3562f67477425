//! A simulated GPU behind the [`NvmlApi`] seam: the unit tests drive it directly, and the CLI
//! tests select it with `EDGETUNE_FAKE_NVML=FILE.json` (a [`FakeSpec`]) so `tune`, `sweep`,
//! `devices` and `restore` run their NVML paths where there is no GPU. Its counter integrates a
//! constant power in steps; clock locks and resets are kept, and appended to `log` when given,
//! so a test in another process can see them.

use super::api::{NvmlApi, NvmlFailure};
use serde::Deserialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One simulated GPU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeGpu {
    /// Product name.
    pub name: String,
    /// Constant power draw, W.
    pub power_w: f64,
    /// Whether the energy counter works.
    #[serde(default = "yes")]
    pub counter: bool,
    /// Counter value at start, mJ (near `u64::MAX` to test wrap-around).
    #[serde(default)]
    pub counter_start_mj: u64,
    /// The counter moves only every this many ms (0: continuously).
    #[serde(default)]
    pub step_ms: u64,
    /// Supported graphics clocks, MHz.
    #[serde(default)]
    pub clocks_mhz: Vec<u32>,
}

fn yes() -> bool {
    true
}

/// The simulated machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeSpec {
    /// Its GPUs.
    pub gpus: Vec<FakeGpu>,
    /// Whether clock locking is permitted.
    #[serde(default = "yes")]
    pub root: bool,
    /// Where lock and reset calls are appended, one per line.
    #[serde(default)]
    pub log: Option<PathBuf>,
}

/// The fake's state.
#[derive(Debug)]
pub struct FakeState {
    /// What it simulates.
    pub spec: FakeSpec,
    /// When it started (the counters run from here).
    pub started: Instant,
    /// The lock on each GPU, MHz.
    pub locked: Vec<Option<(u32, u32)>>,
    /// Every lock and reset, in order.
    pub calls: Vec<String>,
}

/// A simulated NVML; clones share one state.
#[derive(Debug, Clone)]
pub struct FakeNvml(pub Arc<Mutex<FakeState>>);

impl FakeNvml {
    /// A fake with `spec`'s GPUs.
    pub fn new(spec: FakeSpec) -> FakeNvml {
        let n = spec.gpus.len();
        FakeNvml(Arc::new(Mutex::new(FakeState {
            spec,
            started: Instant::now(),
            locked: vec![None; n],
            calls: Vec::new(),
        })))
    }

    /// Reads a spec from a JSON file.
    pub fn from_file(path: &std::path::Path) -> Result<FakeNvml, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map(FakeNvml::new)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Every lock and reset so far.
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    fn gpu(&self, gpu: u32) -> Result<FakeGpu, NvmlFailure> {
        let s = self.0.lock().unwrap();
        s.spec
            .gpus
            .get(gpu as usize)
            .cloned()
            .ok_or_else(|| NvmlFailure::Other("Invalid Argument".into()))
    }

    fn call(&self, what: String) {
        let mut s = self.0.lock().unwrap();
        if let Some(log) = &s.spec.log {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
            {
                let _ = writeln!(f, "{what}");
            }
        }
        s.calls.push(what);
    }
}

impl NvmlApi for FakeNvml {
    fn device_count(&self) -> Result<u32, NvmlFailure> {
        Ok(self.0.lock().unwrap().spec.gpus.len() as u32)
    }
    fn name(&self, gpu: u32) -> Result<String, NvmlFailure> {
        Ok(self.gpu(gpu)?.name)
    }
    fn total_energy_mj(&self, gpu: u32) -> Result<u64, NvmlFailure> {
        let g = self.gpu(gpu)?;
        if !g.counter {
            return Err(NvmlFailure::NotSupported);
        }
        let ms = self.0.lock().unwrap().started.elapsed().as_millis() as u64;
        let ms = ms
            .checked_div(g.step_ms)
            .map_or(ms, |steps| steps * g.step_ms);
        // W x ms = mJ.
        Ok(g.counter_start_mj
            .wrapping_add((g.power_w * ms as f64) as u64))
    }
    fn power_mw(&self, gpu: u32) -> Result<u32, NvmlFailure> {
        Ok((self.gpu(gpu)?.power_w * 1e3) as u32)
    }
    fn graphics_clocks_mhz(&self, gpu: u32) -> Result<Vec<u32>, NvmlFailure> {
        Ok(self.gpu(gpu)?.clocks_mhz)
    }
    fn graphics_clock_mhz(&self, gpu: u32) -> Result<u32, NvmlFailure> {
        let g = self.gpu(gpu)?;
        let s = self.0.lock().unwrap();
        Ok(match s.locked[gpu as usize] {
            Some((_, hi)) => hi,
            None => g.clocks_mhz.last().copied().unwrap_or(0),
        })
    }
    fn lock_graphics_clocks(&mut self, gpu: u32, lo: u32, hi: u32) -> Result<(), NvmlFailure> {
        self.gpu(gpu)?;
        if !self.0.lock().unwrap().spec.root {
            return Err(NvmlFailure::NoPermission);
        }
        self.0.lock().unwrap().locked[gpu as usize] = Some((lo, hi));
        self.call(format!("lock {gpu} {lo} {hi}"));
        Ok(())
    }
    fn reset_graphics_clocks(&mut self, gpu: u32) -> Result<(), NvmlFailure> {
        self.gpu(gpu)?;
        self.0.lock().unwrap().locked[gpu as usize] = None;
        self.call(format!("reset {gpu}"));
        Ok(())
    }
    fn may_lock_clocks(&self) -> bool {
        self.0.lock().unwrap().spec.root
    }
}
