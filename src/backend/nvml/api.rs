//! The NVML seam: the calls edgetune makes, how they fail, and what a GPU is. The real library
//! ([`super::SystemNvml`]) and the tests' fake ([`super::fake`]) both implement [`NvmlApi`].

use serde::Serialize;
use thiserror::Error;

/// How an NVML call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NvmlFailure {
    /// The GPU or driver does not offer this.
    #[error("not supported by this GPU or driver")]
    NotSupported,
    /// The caller may not do this (clock locking needs root).
    #[error("no permission")]
    NoPermission,
    /// Anything else, with NVML's words.
    #[error("{0}")]
    Other(String),
}

/// The NVML calls edgetune makes (the seam the tests fake). GPUs are numbered as NVML numbers
/// them.
pub trait NvmlApi: Send {
    /// GPUs NVML sees.
    fn device_count(&self) -> Result<u32, NvmlFailure>;
    /// Product name.
    fn name(&self, gpu: u32) -> Result<String, NvmlFailure>;
    /// Energy used since the driver loaded, mJ (wraps around at `u64::MAX`).
    fn total_energy_mj(&self, gpu: u32) -> Result<u64, NvmlFailure>;
    /// Power now, mW.
    fn power_mw(&self, gpu: u32) -> Result<u32, NvmlFailure>;
    /// Graphics clocks the GPU supports at its highest memory clock, MHz.
    fn graphics_clocks_mhz(&self, gpu: u32) -> Result<Vec<u32>, NvmlFailure>;
    /// Graphics (SM) clock now, MHz.
    fn graphics_clock_mhz(&self, gpu: u32) -> Result<u32, NvmlFailure>;
    /// Locks the graphics clock between `min_mhz` and `max_mhz`.
    fn lock_graphics_clocks(
        &mut self,
        gpu: u32,
        min_mhz: u32,
        max_mhz: u32,
    ) -> Result<(), NvmlFailure>;
    /// Removes a lock (the driver's defaults again).
    fn reset_graphics_clocks(&mut self, gpu: u32) -> Result<(), NvmlFailure>;
    /// Whether this caller may lock clocks (NVML allows root only).
    fn may_lock_clocks(&self) -> bool;
}

/// One GPU as NVML describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInfo {
    /// NVML's index.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// Supported graphics clocks, MHz, ascending (empty when NVML does not list them).
    pub graphics_clocks_mhz: Vec<u32>,
    /// Graphics clock now, MHz.
    pub graphics_clock_mhz: Option<u32>,
    /// Power now, W.
    pub power_w: Option<f64>,
    /// Whether the cumulative energy counter works.
    pub energy_counter: bool,
}

/// The GPU clock value (Hz) that means "not locked: the driver's default boost behaviour".
pub const DEFAULT_CLOCKS: u64 = 0;
