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

/// `edgetune worker -q` of study `name` in `url` as board `board`, its stdout dropped.
pub fn worker(url: &str, name: &str, board: &str) -> std::process::Command {
    let mut c = std_edgetune();
    c.args([
        "worker",
        "-q",
        "--storage",
        url,
        "--study",
        name,
        "--board-id",
        board,
    ])
    .stdout(std::process::Stdio::null());
    c
}

/// The same for assertions.
pub fn edgetune() -> assert_cmd::Command {
    assert_cmd::Command::from_std(std_edgetune())
}

/// Runs `cmd`, which must succeed (its stderr shown when it does not), and parses its stdout as
/// JSON (a command given `--json`).
pub fn json_of(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
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

/// Sends `sig` (`-INT`, `-KILL`, ...) to process `pid`; whether it was delivered (a process
/// that has exited already is not an error for a second signal).
pub fn signal(pid: u32, sig: &str) -> bool {
    std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits (up to 20 s) until `p` exists.
#[track_caller]
pub fn wait_for(p: &std::path::Path, what: &str) {
    let t0 = std::time::Instant::now();
    while !p.exists() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "{what} never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
