//! Workloads: what runs inferences inside the energy window a device's meter opens. The trait is
//! here; the real workloads are an external command ([`command`]) and the built-in models
//! ([`torch`], feature `torch`); the twin's and a replay table's live beside their devices.

use crate::device::DeviceError;

pub mod command;
#[cfg(feature = "torch")]
pub mod torch;

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
