//! edgetune: find the CPU frequency, GPU frequency and batch size at which a DNN inference
//! workload uses the least energy on an NVIDIA Jetson, by measuring real runs (or runs on a
//! calibrated digital twin of the board) and searching the space instead of sweeping it.
//!
//! The pieces follow the data flow of DESIGN.md: a [`strategy::Strategy`] proposes configurations
//! (pure ask/tell), the [`study::Study`] owns the loop, the [`measure::protocol`] measures one
//! configuration on a [`device::Device`] running a [`workload::Workload`], and [`report`] writes
//! the results.

#![warn(missing_docs)]

pub mod app;
pub mod backend;
pub mod bench;
pub mod catalog;
pub mod device;
pub mod emulator;
pub mod error;
pub mod files;
pub mod fleet_bench;
pub mod landscape;
pub mod measure;
pub mod objective;
pub mod opt;
pub mod report;
pub mod space;
pub mod strategy;
pub mod study;
pub mod twin;
pub mod units;
pub mod workload;

/// The fixture-tree helpers the integration tests use, for the backends' unit tests.
#[cfg(test)]
#[path = "../tests/common/sysfs_tree.rs"]
pub(crate) mod sysfs_tree;
