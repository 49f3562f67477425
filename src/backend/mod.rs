//! The backends: what measures a configuration. Each implements [`crate::device::Device`]:
//! the digital twin ([`sim`]), a recorded table ([`replay`]), a Jetson through sysfs
//! ([`jetson`]) and an NVIDIA GPU through NVML ([`nvml`]). They sit above the protocol, the twin,
//! the emulator and the workloads, which they use; nothing below them imports them.

pub mod jetson;
pub mod nvml;
pub mod powercap;
pub mod replay;
pub mod sim;
