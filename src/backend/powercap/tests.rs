//! Tests on the host fixture tree `tests/fixtures/host-rapl` (copied first: the backend writes).

use super::*;
use crate::device::{Device, FreqSetting};

use crate::sysfs_tree::{fixture, same, tree};

fn pin(cpu_freq_khz: u64) -> FreqSetting {
    FreqSetting::Pinned {
        cpu_freq_khz,
        gpu_freq_hz: 0,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    }
}

fn zone_file(root: &Path, zone: &str) -> PathBuf {
    root.join("sys/class/powercap").join(zone).join("energy_uj")
}

fn policy_file(root: &Path, p: u32, f: &str) -> PathBuf {
    root.join(format!("sys/devices/system/cpu/cpufreq/policy{p}/{f}"))
}

fn state(root: &Path) -> PathBuf {
    root.join("var/lib/edgetune/restore.json")
}

/// The tests that open devices share the process-wide list a second signal restores from.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static S: std::sync::Mutex<()> = std::sync::Mutex::new(());
    S.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn discovery_counts_packages_and_dram_only() {
    let (_t, root) = fixture("host-rapl");
    let d = discover(&root).unwrap();
    let counted: Vec<&str> = d
        .zones
        .iter()
        .filter(|z| z.counted)
        .map(|z| z.name.as_str())
        .collect();
    assert_eq!(counted, ["package-0", "dram"]);
    assert_eq!(d.zones.len(), 4, "core and psys are rails");
    assert_eq!(d.policies.len(), 2);
    assert_eq!(d.cpu_freq_khz, [800000, 1200000, 1600000, 2000000, 2400000]);
    let spec = HostSpec::new(&d.root, &d.cpu_freq_khz);
    assert_eq!(spec.name, "Fixture Xeon E-2278G CPU @ 3.40GHz");
}

#[test]
fn a_counter_that_wraps_counts_what_was_used() {
    assert_eq!(delta_uj(100, 350, 1000), 250);
    assert_eq!(delta_uj(900, 150, 1000), 250);
    assert_eq!(delta_uj(0, 0, 1000), 0);
}

#[test]
fn a_window_sums_packages_and_dram_across_a_wrap() {
    let _s = serial();
    let (_t, root) = fixture("host-rapl");
    let mut dev = PowercapDevice::open(discover(&root).unwrap(), &state(&root)).unwrap();
    dev.window_begin().unwrap();
    // package-0 starts 43.3 J below its range: 50 J more wraps it.
    std::fs::write(zone_file(&root, "intel-rapl:0"), "6671150").unwrap();
    std::fs::write(zone_file(&root, "intel-rapl:0:1"), "5002000000").unwrap();
    std::fs::write(zone_file(&root, "intel-rapl:1"), "990000000").unwrap();
    let w = dev.window_end().unwrap();
    assert!((w.energy_j - 52.0).abs() < 1e-6, "{}", w.energy_j);
    let psys = w.rail_energy_j.iter().find(|(n, _)| n == "psys").unwrap();
    assert!((psys.1 - 90.0).abs() < 1e-6);
}

#[test]
fn pins_every_policy_and_leaves_the_tree_as_found() {
    let _s = serial();
    let (_t, root) = fixture("host-rapl");
    let before = tree(&root);
    {
        let mut dev = PowercapDevice::open(discover(&root).unwrap(), &state(&root)).unwrap();
        dev.apply(&pin(1200000)).unwrap();
        // The limits as found are saved before the first write (for `edgetune restore`).
        let saved = Snapshot::load(&state(&root)).unwrap();
        assert_eq!(saved.backend, Some(crate::device::BackendKind::Powercap));
        assert_eq!(saved.entries.len(), 2);
        for p in 0..2 {
            for f in ["scaling_min_freq", "scaling_max_freq"] {
                let v = std::fs::read_to_string(policy_file(&root, p, f)).unwrap();
                assert_eq!(v.trim(), "1200000");
            }
        }
        // Raising past the current maximum writes the maximum first.
        dev.apply(&pin(2400000)).unwrap();
        assert!(dev.apply(&pin(1000000)).is_err(), "not a listed clock");
        dev.restore().unwrap();
        same(&before, &tree(&root));
        dev.apply(&pin(800000)).unwrap();
        // Dropped while pinned (a panic unwinding): restored.
    }
    same(&before, &tree(&root));
}

#[test]
fn one_process_owns_the_host() {
    let _s = serial();
    let (_t, root) = fixture("host-rapl");
    let _a = PowercapDevice::open(discover(&root).unwrap(), &state(&root)).unwrap();
    let b = PowercapDevice::open(discover(&root).unwrap(), &state(&root));
    assert!(matches!(b, Err(PowercapError::Busy(_))));
}

#[test]
fn a_host_without_rapl_or_listed_clocks_says_what_is_missing() {
    let (_t, root) = fixture("host-rapl");
    std::fs::remove_dir_all(root.join("sys/class/powercap")).unwrap();
    let e = discover(&root).unwrap_err().to_string();
    assert!(e.contains("no RAPL package zone"), "{e}");
    let (_t, root) = fixture("host-rapl");
    for p in 0..2 {
        std::fs::remove_file(policy_file(&root, p, "scaling_available_frequencies")).unwrap();
    }
    let e = discover(&root).unwrap_err().to_string();
    assert!(e.contains("intel_pstate"), "{e}");
}

#[test]
fn a_second_signal_puts_the_limits_back_and_no_pin_follows() {
    let _s = serial();
    let (_t, root) = fixture("host-rapl");
    let before = tree(&root);
    let mut dev = PowercapDevice::open(discover(&root).unwrap(), &state(&root)).unwrap();
    dev.apply(&pin(1600000)).unwrap();
    let (said, held) = emergency_restore();
    assert_eq!(
        said.as_deref(),
        Some("put the CPU clock limits back as found")
    );
    same(&before, &tree(&root));
    assert!(!state(&root).exists(), "nothing left to restore");
    drop(held);
    // The run goes on for a moment before the process exits: nothing is pinned again.
    dev.apply(&pin(800000)).unwrap();
    same(&before, &tree(&root));
    drop(dev);
    assert!(emergency_restore().0.is_none(), "nothing open");
}

#[test]
fn a_policy_folder_linked_out_of_the_tree_is_never_written() {
    let _s = serial();
    let (t, root) = fixture("host-rapl");
    let policy1 = root.join("sys/devices/system/cpu/cpufreq/policy1");
    let outside = t.path().join("elsewhere");
    std::fs::rename(&policy1, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &policy1).unwrap();
    let mut dev = PowercapDevice::open(discover(&root).unwrap(), &state(&root)).unwrap();
    let e = dev.apply(&pin(1200000)).unwrap_err().to_string();
    assert!(e.contains("policy1"), "{e}");
    let max = std::fs::read_to_string(outside.join("scaling_max_freq")).unwrap();
    assert_eq!(max.trim(), "2400000", "the linked folder was written");
}
