//! Shared helpers of the integration tests.

pub mod sysfs_tree;
