//! Measuring: the protocol shared by every backend, the power poller for sensors that give
//! instantaneous power, and small statistics helpers.

pub mod power;
pub mod protocol;
pub mod stats;

pub use protocol::{measure, Measurement, ProtocolSettings, Run};
