//! Tests on the fixture trees under `tests/fixtures/` (copied to a temporary folder first, since
//! the backend writes).

use super::rails::SensorDriver;
use super::snapshot::{restore_from_state, Snapshot};
use super::sysfs::DENY;
use super::*;
use crate::device::{Device, FreqSetting};
use std::collections::BTreeMap;

use crate::sysfs_tree::{fixture, same, tree};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

fn pinned(cpu_freq_khz: u64, gpu_freq_hz: u64) -> FreqSetting {
    FreqSetting::Pinned {
        cpu_freq_khz,
        gpu_freq_hz,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    }
}

fn state(root: &Path) -> PathBuf {
    default_state_path(root)
}

fn open(root: &Path) -> JetsonDevice {
    JetsonDevice::open(discover(root).unwrap(), &state(root), Some(20)).unwrap()
}

#[test]
fn discovery_finds_the_nano_jetpack4_layout() {
    let (_t, root) = fixture("nano-jp4");
    let d = discover(&root).unwrap();
    assert_eq!(d.dt_model, "NVIDIA Jetson Nano Developer Kit");
    assert_eq!(d.cpu.len(), 1);
    assert_eq!(d.cpu[0].cpus, vec![0, 1, 2, 3]);
    assert_eq!(d.cpu[0].available_khz.len(), 15);
    assert_eq!(d.cpu[0].available_khz[0], 102_000);
    assert!(d.cpu[0].has_userspace());
    assert_eq!(d.gpu.name, "57000000.gpu");
    assert_eq!(d.gpu.node, "gpu");
    assert_eq!(d.gpu.available_hz.len(), 12);
    assert_eq!(*d.gpu.available_hz.last().unwrap(), 921_600_000);
    assert_eq!(d.rails.driver, SensorDriver::Iio);
    let names: Vec<_> = d.rails.rails.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]);
    assert_eq!(d.rails.total, Some(0));
    // iio reports mW directly.
    let (total, each) = d.rails.read(&d.sysfs()).unwrap();
    assert_eq!(each, vec![4798.0, 1851.0, 483.0]);
    assert_eq!(total, 4798.0);
}

#[test]
fn discovery_finds_the_xavier_nx_jetpack5_layout_and_skips_other_devfreq_devices() {
    let (_t, root) = fixture("xavier-nx-jp5");
    let d = discover(&root).unwrap();
    let cpus: Vec<_> = d.cpu.iter().map(|p| p.cpus.clone()).collect();
    assert_eq!(cpus, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
    assert!(d.cpu.iter().all(|p| p.available_khz.len() == 25));
    // 15340000.vic sorts first under /sys/class/devfreq and is not the GPU.
    assert_eq!(d.gpu.name, "17000000.gv11b");
    assert_eq!(d.gpu.available_hz.len(), 15);
    assert_eq!(d.rails.driver, SensorDriver::Hwmon);
    assert_eq!(d.rails.total_name(), "VDD_IN");
    // hwmon has no power file: mV x mA / 1000.
    let (total, each) = d.rails.read(&d.sysfs()).unwrap();
    assert!((each[0] - 5048.0 * 864.0 / 1000.0).abs() < 1e-9, "{each:?}");
    assert_eq!(total, each[0]);
    // The shunt-sum channel 7 is not a rail.
    assert_eq!(d.rails.rails.len(), 3);
}

#[test]
fn discovery_finds_the_orin_nano_jetpack6_layout() {
    let (_t, root) = fixture("orin-nano-jp6");
    let d = discover(&root).unwrap();
    let cpus: Vec<_> = d.cpu.iter().map(|p| p.cpus.clone()).collect();
    assert_eq!(cpus, vec![vec![0, 1, 2, 3], vec![4, 5]]);
    assert!(!d.cpu[0].has_userspace());
    assert_eq!(d.gpu.name, "17000000.gpu");
    assert_eq!(d.gpu.node, "gpu");
    assert_eq!(
        d.gpu.available_hz,
        vec![
            306_000_000,
            408_000_000,
            510_000_000,
            612_000_000,
            624_750_000
        ]
    );
    assert_eq!(d.rails.total_name(), "VDD_IN");
}

#[test]
fn discovery_finds_the_orin_nano_jetpack5_layout() {
    let (_t, root) = fixture("orin-nano-jp5");
    let d = discover(&root).unwrap();
    assert_eq!(
        (d.gpu.name.as_str(), d.gpu.node.as_str()),
        ("17000000.ga10b", "ga10b")
    );
    assert_eq!(d.gpu.available_hz.len(), 5);
    assert_eq!(d.rails.total_name(), "VDD_IN");
    assert_eq!(d.cpu.len(), 2);
}

#[test]
fn discovery_finds_the_orin_nx_and_agx_orin_jetpack6_layouts() {
    let (_t, root) = fixture("orin-nx-jp6");
    let d = discover(&root).unwrap();
    let cpus: Vec<_> = d.cpu.iter().map(|p| p.cpus.clone()).collect();
    assert_eq!(cpus, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
    assert_eq!(d.gpu.available_hz.last(), Some(&918_000_000));
    assert_eq!(d.rails.total_name(), "VDD_IN");
    // AGX Orin: three clusters, two ina3221s, no input rail: the rails are added up, the
    // channels JetPack labels NC left out.
    let (_t, root) = fixture("agx-orin-jp6");
    let d = discover(&root).unwrap();
    assert_eq!(d.cpu.len(), 3);
    assert_eq!(d.gpu.available_hz.len(), 11);
    assert_eq!(
        d.rails.total_name(),
        "sum of VDD_GPU_SOC + VDD_CPU_CV + VIN_SYS_5V0 + VDDQ_VDD2_1V8AO"
    );
    let (total_mw, each) = d.rails.read(&d.sysfs()).unwrap();
    assert_eq!(each.len(), 4);
    // 5140 + 3270 + 5500 + 300.6 mW: the section 4.3 capture and the AO rail.
    assert!((total_mw - 14210.6).abs() < 1.0, "{total_mw}");
}

#[test]
fn the_total_rail_is_never_summed_and_the_sum_is_used_only_without_one() {
    let (_t, root) = fixture("xavier-nx-jp5");
    let d = discover(&root).unwrap();
    let (total, each) = d.rails.read(&d.sysfs()).unwrap();
    assert!(total < each.iter().sum::<f64>());
    // Relabel VDD_IN: now no rail is the total, so the rails are added up.
    let hw = d.rails.dirs[0].clone();
    std::fs::write(hw.join("in1_label"), "VDD_GPU_SOC\n").unwrap();
    let d = discover(&root).unwrap();
    assert_eq!(d.rails.total, None);
    let (total, each) = d.rails.read(&d.sysfs()).unwrap();
    assert_eq!(total, each.iter().sum::<f64>());
    assert!(d.rails.total_name().starts_with("sum of"));
}

#[test]
fn not_a_jetson_says_what_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let e = discover(t.path()).unwrap_err().to_string();
    assert!(e.contains("proc/device-tree/model"), "{e}");
    let (_t, root) = fixture("nano-jp4");
    std::fs::remove_file(root.join("sys/class/devfreq/57000000.gpu")).unwrap();
    let e = discover(&root).unwrap_err().to_string();
    assert!(
        e.contains("no GPU devfreq device") && e.contains("gv11b"),
        "{e}"
    );
    let (_t, root) = fixture("nano-jp4");
    std::fs::remove_file(root.join("sys/bus/i2c/drivers/ina3221x/6-0040")).unwrap();
    let e = discover(&root).unwrap_err().to_string();
    assert!(e.contains("INA3221") && e.contains("ina3221x"), "{e}");
}

#[test]
fn pinning_uses_userspace_and_setspeed_where_available_and_reads_back() {
    let (_t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let mut dev = open(&root);
    assert!(
        !state(&root).exists(),
        "nothing is written before the first apply"
    );
    dev.apply(&pinned(921_600, 614_400_000)).unwrap();
    let p = root.join("sys/devices/system/cpu/cpufreq/policy0");
    assert_eq!(read(&p.join("scaling_governor")), "userspace");
    assert_eq!(read(&p.join("scaling_setspeed")), "921600");
    let g = root.join("sys/devices/57000000.gpu/devfreq/57000000.gpu");
    assert_eq!(read(&g.join("min_freq")), "614400000");
    assert_eq!(read(&g.join("max_freq")), "614400000");
    assert!(state(&root).exists());
    // The fixture's cur_freq files do not follow, so the read-back mismatch is noted once each.
    let notes = dev.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("scaling_cur_freq") && n.contains("921600")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("cur_freq read 76800000")),
        "{notes:?}"
    );
    dev.apply(&pinned(1_479_000, 76_800_000)).unwrap();
    assert_eq!(dev.notes().len(), 2, "one note per file");
    dev.restore().unwrap();
    same(&tree(&root), &before);
    assert!(!state(&root).exists());
}

#[test]
fn pinning_without_userspace_sets_min_equal_max_in_the_safe_order() {
    for (fx, cpu, gpu) in [
        ("orin-nano-jp6", 115_200, 624_750_000),
        ("orin-nano-jp6", 1_510_400, 306_000_000),
        ("xavier-nx-jp5", 1_907_200, 114_750_000),
        ("xavier-nx-jp5", 115_200, 1_109_250_000),
    ] {
        let (_t, root) = fixture(fx);
        let before = tree(&root);
        let mut dev = open(&root);
        dev.apply(&pinned(cpu, gpu)).unwrap();
        // Replay every write from the fixture's values: min never exceeds max in between.
        let mut cur: BTreeMap<PathBuf, String> = BTreeMap::new();
        for (path, v) in dev.write_log() {
            cur.insert(path.clone(), v.clone());
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let pair = match name.as_str() {
                "scaling_min_freq" | "scaling_max_freq" => ("scaling_min_freq", "scaling_max_freq"),
                "min_freq" | "max_freq" => ("min_freq", "max_freq"),
                _ => continue,
            };
            let dir = path.parent().unwrap();
            let get = |f: &str| -> u64 {
                cur.get(&dir.join(f))
                    .cloned()
                    .unwrap_or_else(|| String::from_utf8(before[&dir.join(f)].clone()).unwrap())
                    .trim()
                    .parse()
                    .unwrap()
            };
            assert!(
                get(pair.0) <= get(pair.1),
                "{fx}: {} > {} after writing {}",
                get(pair.0),
                get(pair.1),
                path.display()
            );
        }
        for p in &dev.discovery().cpu.clone() {
            if p.has_userspace() {
                assert_eq!(read(&p.dir.join("scaling_setspeed")), cpu.to_string());
                let (lo, hi) = (
                    read(&p.dir.join("scaling_min_freq")),
                    read(&p.dir.join("scaling_max_freq")),
                );
                assert!(
                    lo.parse::<u64>().unwrap() <= cpu && cpu <= hi.parse::<u64>().unwrap(),
                    "{fx}"
                );
            } else {
                assert_eq!(read(&p.dir.join("scaling_min_freq")), cpu.to_string());
                assert_eq!(read(&p.dir.join("scaling_max_freq")), cpu.to_string());
                assert_eq!(read(&p.dir.join("scaling_governor")), "schedutil");
            }
        }
        let g = dev.discovery().gpu.dir.clone();
        assert_eq!(read(&g.join("min_freq")), gpu.to_string());
        assert_eq!(read(&g.join("max_freq")), gpu.to_string());
        dev.restore().unwrap();
        same(&tree(&root), &before);
    }
}

#[test]
fn a_frequency_the_board_does_not_list_is_refused_before_any_write() {
    let (_t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let mut dev = open(&root);
    let e = dev
        .apply(&pinned(1_500_000, 614_400_000))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1500000") && e.contains("scaling_available_frequencies"),
        "{e}"
    );
    let e = dev
        .apply(&pinned(921_600, 998_400_000))
        .unwrap_err()
        .to_string();
    assert!(e.contains("998400000"), "{e}");
    assert!(dev.write_log().is_empty());
    assert!(!state(&root).exists());
    drop(dev);
    same(&tree(&root), &before);
}

#[test]
fn permission_denied_is_reported_before_anything_changes() {
    let (_t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let gpu_max = root.join("sys/devices/17000000.gv11b/devfreq/17000000.gv11b/max_freq");
    DENY.with(|d| *d.borrow_mut() = Some(gpu_max.clone()));
    let r = JetsonDevice::open(discover(&root).unwrap(), &state(&root), None);
    DENY.with(|d| *d.borrow_mut() = None);
    let e = r.err().unwrap().to_string();
    assert!(
        e.contains("permission denied") && e.contains("max_freq") && e.contains("sudo"),
        "{e}"
    );
    same(&tree(&root), &before);
    assert!(!state(&root).exists());
}

#[test]
fn a_failed_write_mid_pin_is_undone() {
    let (_t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let mut dev = open(&root);
    // The CPU policies get pinned, then the GPU write fails.
    let gpu_min = dev.discovery().gpu.dir.join("min_freq");
    DENY.with(|d| *d.borrow_mut() = Some(gpu_min));
    let e = dev
        .apply(&pinned(1_907_200, 510_000_000))
        .unwrap_err()
        .to_string();
    DENY.with(|d| *d.borrow_mut() = None);
    assert!(e.contains("permission denied"), "{e}");
    assert_ne!(tree(&root), before);
    drop(dev);
    same(&tree(&root), &before);
    assert!(!state(&root).exists());
}

#[test]
fn a_panic_restores_the_board() {
    let (_t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let mut dev = open(&root);
    dev.apply(&pinned(204_000, 230_400_000)).unwrap();
    assert_ne!(tree(&root), before);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = dev;
        panic!("a bug while measuring");
    }));
    assert!(r.is_err());
    same(&tree(&root), &before);
    assert!(!state(&root).exists());
}

#[test]
fn the_dvfs_baseline_is_the_state_found_at_start() {
    let (_t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let mut dev = open(&root);
    assert_eq!(dev.baseline_kind(), BaselineKind::Dvfs);
    dev.apply(&pinned(729_600, 306_000_000)).unwrap();
    dev.apply(&FreqSetting::Dvfs).unwrap();
    assert_eq!(
        tree(&root).len(),
        before.len() + 1,
        "only the state file is new"
    );
    let mut now = tree(&root);
    now.remove(&state(&root));
    same(&now, &before);
    dev.restore().unwrap();
    assert!(!state(&root).exists());
}

#[test]
fn a_board_pinned_at_start_is_not_called_dvfs() {
    let (_t, root) = fixture("nano-jp4");
    let g = root.join("sys/devices/57000000.gpu/devfreq/57000000.gpu");
    std::fs::write(g.join("min_freq"), "921600000\n").unwrap();
    let dev = open(&root);
    assert_eq!(dev.baseline_kind(), BaselineKind::AsFound);
}

#[test]
fn a_stale_snapshot_blocks_a_new_run_and_restore_clears_it() {
    let (_t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let mut dev = open(&root);
    dev.apply(&pinned(102_000, 76_800_000)).unwrap();
    // A SIGKILL: nothing runs, the board stays pinned, the state file stays.
    dev.killed();
    assert!(state(&root).exists());
    let e = JetsonDevice::open(discover(&root).unwrap(), &state(&root), None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("edgetune restore") && e.contains("restore.json"),
        "{e}"
    );
    let r = restore_from_state(&root, &state(&root), false).unwrap();
    assert!(r.found && !r.files.is_empty());
    same(&tree(&root), &before);
    assert!(
        !restore_from_state(&root, &state(&root), false)
            .unwrap()
            .found
    );
}

#[test]
fn a_snapshot_naming_another_file_is_refused_whole() {
    let (_t, root) = fixture("nano-jp4");
    let mut dev = open(&root);
    dev.apply(&pinned(102_000, 76_800_000)).unwrap();
    dev.killed();
    let pinned_tree = tree(&root);
    let mut snap = Snapshot::load(&state(&root)).unwrap();
    let victim = root.join("proc/device-tree/model");
    snap.entries.push(snapshot::Entry::File {
        path: victim.clone(),
        value: "pwned".into(),
        best_effort: false,
    });
    snap.save(&state(&root)).unwrap();
    let e = restore_from_state(&root, &state(&root), false).unwrap_err();
    assert!(matches!(e, JetsonError::Forbidden(_)), "{e}");
    assert!(e.is_usage());
    let mut now = tree(&root);
    now.insert(state(&root), pinned_tree[&state(&root)].clone());
    assert_eq!(now.get(&victim), pinned_tree.get(&victim));
    assert!(state(&root).exists(), "kept for a corrected retry");
}

#[test]
fn rails_are_integrated_per_rail_and_a_vanishing_sensor_fails_the_run() {
    let (_t, root) = fixture("nano-jp4");
    let mut dev = open(&root);
    dev.window_begin().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let w = dev.window_end().unwrap();
    assert!((w.energy_j - 4.798 * w.time_s).abs() < 1e-9, "{w:?}");
    let names: Vec<_> = w.rail_energy_j.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(names, ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]);
    assert!((w.rail_energy_j[1].1 - 1.851 * w.time_s).abs() < 1e-9);
    let p = dev.discovery().rails.dirs[0].join("in_power0_input");
    dev.window_begin().unwrap();
    std::thread::sleep(Duration::from_millis(60));
    std::fs::write(&p, "garbage\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let e = dev.window_end().unwrap_err().to_string();
    assert!(
        e.contains("in_power0_input") && e.contains("discarded"),
        "{e}"
    );
    std::fs::remove_file(&p).unwrap();
    dev.window_begin().unwrap();
    std::thread::sleep(Duration::from_millis(60));
    let e = dev.window_end().unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn a_sensor_stuck_for_over_a_second_is_noted() {
    let (_t, root) = fixture("xavier-nx-jp5");
    let mut dev = open(&root);
    dev.window_begin().unwrap();
    std::thread::sleep(Duration::from_millis(1150));
    dev.window_end().unwrap();
    assert!(
        dev.notes().iter().any(|n| n.contains("repeated one value")),
        "{:?}",
        dev.notes()
    );
}

fn pinned_emc(cpu_freq_khz: u64, gpu_freq_hz: u64, emc_freq_hz: u64) -> FreqSetting {
    FreqSetting::Pinned {
        cpu_freq_khz,
        gpu_freq_hz,
        emc_freq_hz: Some(emc_freq_hz),
        cpu_cores: None,
        power_mode: None,
    }
}

#[test]
fn the_memory_clock_is_pinned_through_debugfs_and_restored() {
    for (fx, kind, rate, flag, emc) in [
        (
            "nano-jp4",
            EmcKind::Tegra210,
            "clk_update_rate",
            "clk_state",
            800_000_000,
        ),
        (
            "xavier-nx-jp5",
            EmcKind::Bpmp,
            "rate",
            "mrq_rate_locked",
            1_331_200_000,
        ),
    ] {
        let (_t, root) = fixture(fx);
        let before = tree(&root);
        let disc = discover(&root).unwrap();
        let (cpu, gpu) = (disc.cpu[0].available_khz[3], disc.gpu.available_hz[2]);
        let disc = disc.with_emc().unwrap();
        let e = disc.emc.clone().unwrap();
        assert_eq!(
            (e.kind, e.min_hz, e.max_hz),
            (kind, 204_000_000, 1_600_000_000)
        );
        let mut dev = JetsonDevice::open(disc, &state(&root), None).unwrap();
        // Outside the board's limits: refused before any write.
        let err = dev
            .apply(&pinned_emc(cpu, gpu, 1_866_000_000))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1866000000") && err.contains("limits"),
            "{err}"
        );
        assert!(dev.write_log().is_empty());
        dev.apply(&pinned_emc(cpu, gpu, emc)).unwrap();
        assert_eq!(read(&e.dir.join(rate)), emc.to_string(), "{fx}");
        assert_eq!(read(&e.dir.join(flag)), "1", "{fx}");
        dev.restore().unwrap();
        same(&tree(&root), &before);
    }
    // Without --emc a memory clock is refused, and nothing under debugfs may be written.
    let (_t, root) = fixture("nano-jp4");
    let mut dev = open(&root);
    let err = dev
        .apply(&pinned_emc(921_600, 614_400_000, 800_000_000))
        .unwrap_err()
        .to_string();
    assert!(err.contains("emc"), "{err}");
    let mut fs = discover(&root).unwrap().sysfs();
    let flag = root.join("sys/kernel/debug/clk/override.emc/clk_state");
    assert!(matches!(
        fs.write(&flag, "1"),
        Err(JetsonError::Forbidden(_))
    ));
    // A board without debugfs says what to mount.
    let (_t, orin) = fixture("orin-nano-jp6");
    let err = discover(&orin).unwrap().with_emc().unwrap_err().to_string();
    assert!(err.contains("debugfs"), "{err}");
}

#[test]
fn one_owner_at_a_time_whatever_the_command() {
    let (_t, root) = fixture("nano-jp4");
    let first = open(&root);
    // A second study, `apply` and `restore` are refused before reading or writing anything,
    // even before the first one has pinned (no snapshot exists yet).
    let busy = |e: JetsonError| {
        let said = e.to_string();
        assert!(e.is_usage() && said.contains("in use"), "{said}");
        assert!(
            said.contains(&format!("pid {}", std::process::id())),
            "{said}"
        );
    };
    busy(
        JetsonDevice::open(discover(&root).unwrap(), &state(&root), None)
            .err()
            .unwrap(),
    );
    busy(
        JetsonDevice::open_keeping(discover(&root).unwrap(), &state(&root))
            .err()
            .unwrap(),
    );
    busy(
        restore_from_state(&root, &state(&root), false)
            .err()
            .unwrap(),
    );
    // Forced, restore goes ahead (for a stuck owner).
    assert!(
        !restore_from_state(&root, &state(&root), true)
            .unwrap()
            .found
    );
    drop(first);
    let second = open(&root);
    drop(second);
}

#[test]
fn a_second_apply_adds_the_files_it_writes_to_the_snapshot() {
    let (_t, root) = fixture("nano-jp4");
    let before = tree(&root);
    let disc = discover(&root).unwrap();
    let (cpu, gpu) = (disc.cpu[0].available_khz[3], disc.gpu.available_hz[2]);
    let dev = JetsonDevice::open_keeping(disc.clone(), &state(&root)).unwrap();
    apply_and_keep(dev, cpu, gpu, None).unwrap();
    let dev = JetsonDevice::open_keeping(disc.with_emc().unwrap(), &state(&root)).unwrap();
    apply_and_keep(dev, cpu, gpu, Some(800_000_000)).unwrap();
    let snap = Snapshot::load(&state(&root)).unwrap();
    assert!(
        snap.entries
            .iter()
            .any(|e| e.paths().iter().any(|p| p.ends_with("clk_state"))),
        "the memory clock's files are in the snapshot"
    );
    restore_from_state(&root, &state(&root), false).unwrap();
    same(&tree(&root), &before);
}

#[test]
fn a_restore_that_does_not_read_back_keeps_the_snapshot() {
    let (_t, root) = fixture("nano-jp4");
    let mut dev = open(&root);
    dev.apply(&pinned(102_000, 76_800_000)).unwrap();
    dev.killed();
    // A governor file that does not keep what restoring writes (here: a second entry for it
    // writes something else, as a kernel refusing the value would leave it).
    let mut snap = Snapshot::load(&state(&root)).unwrap();
    let gov = root.join("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    let gov = std::fs::canonicalize(gov).unwrap();
    snap.entries.push(snapshot::Entry::File {
        path: gov.clone(),
        value: "performance".into(),
        best_effort: false,
    });
    snap.save(&state(&root)).unwrap();
    let e = restore_from_state(&root, &state(&root), false).unwrap_err();
    assert!(matches!(e, JetsonError::NotRestored { .. }), "{e}");
    assert!(e.to_string().contains("scaling_governor"), "{e}");
    assert!(
        state(&root).exists(),
        "the snapshot is deleted only once the tree is back"
    );
}

/// Issue 18, case 1: a second signal while a pin is half done. The signal's restore runs on
/// its own thread (as ctrlc's handler does) at a seeded moment while the main thread pins and
/// restores in a loop; afterwards every file must be as found, with no snapshot left, or a
/// snapshot left that `restore` brings back. 200 trials, well under a second each.
#[test]
fn a_second_signal_at_any_moment_leaves_the_board_as_found() {
    let (_t, root) = fixture("xavier-nx-jp5");
    let before = tree(&root);
    let disc = discover(&root).unwrap();
    let (cpus, gpus) = (
        disc.cpu[0].available_khz.clone(),
        disc.gpu.available_hz.clone(),
    );
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for trial in 0..200 {
        let state_path = root.join(format!("var/lib/edgetune/trial-{trial}.json"));
        let mut dev = JetsonDevice::open(disc.clone(), &state_path, None)
            .unwrap()
            .without_read_back_wait();
        let picks: Vec<(u64, u64, bool)> = (0..40)
            .map(|_| {
                let r = next();
                let c = cpus[(r % cpus.len() as u64) as usize];
                let g = gpus[((r >> 16) % gpus.len() as u64) as usize];
                (c, g, (r >> 32) % 5 == 0)
            })
            .collect();
        let delay_us = next() % 3000;
        let pinner = std::thread::spawn(move || {
            for (c, g, dvfs) in picks {
                let s = if dvfs {
                    FreqSetting::Dvfs
                } else {
                    pinned(c, g)
                };
                if let Err(DeviceError::Interrupted) = dev.apply(&s) {
                    break;
                }
            }
            // What a graceful stop does next; then the device is dropped.
            let _ = dev.restore();
        });
        std::thread::sleep(Duration::from_micros(delay_us));
        let said = snapshot::put_back_for_good(&root, &state_path);
        pinner.join().unwrap();
        if state_path.exists() {
            restore_from_state(&root, &state_path, false).unwrap();
        }
        assert!(!state_path.exists(), "trial {trial}");
        same(&tree(&root), &before);
        let _ = said;
    }
}

#[test]
fn a_refused_write_says_what_refused_it() {
    let p = Path::new("/sys/x/min_freq");
    let eperm = JetsonError::io(p, std::io::Error::from_raw_os_error(1)).to_string();
    assert!(
        eperm.contains("immutable") && !eperm.contains("sudo"),
        "{eperm}"
    );
    let eacces = JetsonError::io(p, std::io::Error::from_raw_os_error(13)).to_string();
    assert!(eacces.contains("needs root"), "{eacces}");
}

/// Issue 18, case 7: writes never leave the tree. A hard-linked clock file and a policy folder
/// linked to a folder outside the root are refused before anything is written.
#[test]
fn writes_through_links_out_of_the_tree_are_refused() {
    let (t, root) = fixture("nano-jp4");
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let policy = std::fs::canonicalize(root.join("sys/devices/system/cpu/cpu0/cpufreq")).unwrap();
    // A hard link: the same file under a name outside the tree.
    let setspeed = policy.join("scaling_setspeed");
    std::fs::hard_link(&setspeed, outside.join("victim")).unwrap();
    let e = JetsonDevice::open(discover(&root).unwrap(), &state(&root), None)
        .err()
        .unwrap();
    assert!(matches!(e, JetsonError::Linked(_)) && e.is_usage(), "{e}");
    std::fs::remove_file(outside.join("victim")).unwrap();
    // The policy folder moved outside the tree, a link left in its place.
    let moved = outside.join("policy0");
    std::fs::rename(&policy, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &policy).unwrap();
    let before = tree(&outside);
    let r = JetsonDevice::open(discover(&root).unwrap(), &state(&root), None);
    let e = r.err().expect("a policy outside the tree is refused");
    assert!(matches!(e, JetsonError::Forbidden(_)), "{e}");
    same(&tree(&outside), &before);
}
