//! A running `edgetune emulate` (a virtual Jetson) for the integration tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `edgetune emulate`, stopped with SIGTERM when dropped.
pub struct Emulator(pub Child);

impl Emulator {
    /// Starts one for `board` under `root` (sensor refresh 20 ms) and waits until it is up.
    pub fn start(board: &str, root: &Path, time_scale: f64) -> Emulator {
        let child = super::std_edgetune()
            .args([
                "emulate",
                "-q",
                "--board",
                board,
                "--sensor-refresh-ms",
                "20",
            ])
            .arg(format!("--time-scale={time_scale}"))
            .arg("--root")
            .arg(root)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while !root.join("run/edgetune-emulator/config.json").exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "emulator did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        Emulator(child)
    }
}

impl Emulator {
    /// Sends SIGTERM and waits: the emulator stops cleanly (exit 0).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        self.0.wait().unwrap()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// The files edgetune may write (everything but what the emulator itself keeps changing: the
/// current clocks, the sensor readings, the GPU load and its own state).
pub fn knobs(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = super::sysfs_tree::tree(root);
    m.retain(|p, _| {
        let name = p.file_name().unwrap().to_string_lossy();
        !p.starts_with(root.join("run/edgetune-emulator"))
            && !name.starts_with('.')
            && !name.ends_with("_input")
            && !["scaling_cur_freq", "cur_freq", "load"].contains(&name.as_ref())
    });
    m
}
