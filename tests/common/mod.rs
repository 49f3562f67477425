//! Shared helpers of the integration tests.

#![allow(dead_code)] // each test binary uses its own part

pub mod emulator;
pub mod sysfs_tree;

/// `edgetune` as a plain process, without the variables that would point it at another
/// catalogue, sysfs root or state file.
pub fn std_edgetune() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("edgetune"));
    c.env_remove("EDGETUNE_CATALOG")
        .env_remove("EDGETUNE_SYSFS_ROOT")
        .env_remove("EDGETUNE_STATE_FILE");
    c
}

/// The same for assertions.
pub fn edgetune() -> assert_cmd::Command {
    assert_cmd::Command::from_std(std_edgetune())
}

/// A seeded xorshift64 generator: the same schedule on every run of a test.
pub fn seeded(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
