//! Workloads that run real inferences. The trait is [`crate::device::Workload`]; the twin's and a
//! replay table's workloads live beside their devices.

pub mod command;
#[cfg(feature = "torch")]
pub mod torch;
