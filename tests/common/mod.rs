//! Shared helpers of the integration tests.

#![allow(dead_code)] // each test binary uses its own part

pub mod emulator;
pub mod sysfs_tree;
