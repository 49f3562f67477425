//! The NVML backend on a fake GPU: counter, wrap-around, polling fallback, clock locking and its
//! restore on every path, permission errors.

use super::*;
use crate::measure::{measure, ProtocolSettings};
use crate::workload::{Meter, Workload, WorkloadRun};

use super::fake::{FakeGpu, FakeNvml, FakeSpec};

/// A fake H100 and A100 with `f` applied to the first.
fn fake(f: impl FnOnce(&mut FakeGpu), root: bool) -> FakeNvml {
    let mut h100 = FakeGpu {
        name: "NVIDIA H100 80GB HBM3".into(),
        power_w: 300.0,
        counter: true,
        counter_start_mj: 5_000_000,
        step_ms: 0,
        clocks_mhz: vec![345, 1410, 1980],
    };
    f(&mut h100);
    let a100 = FakeGpu {
        name: "NVIDIA A100-SXM4-40GB".into(),
        ..h100.clone()
    };
    FakeNvml::new(FakeSpec {
        gpus: vec![h100, a100],
        root,
        log: None,
    })
}

fn shared(f: &FakeNvml) -> SharedNvml {
    Arc::new(Mutex::new(Box::new(f.clone())))
}

fn locked(f: &FakeNvml) -> Option<(u32, u32)> {
    f.0.lock().unwrap().locked[0]
}

fn open(fake: &FakeNvml, clock_control: bool, dir: &Path) -> NvmlDevice {
    let gpu = pick(fake, "gpu:0").unwrap();
    NvmlDevice::open(
        shared(fake),
        gpu,
        clock_control,
        &dir.join("restore.json"),
        Duration::from_millis(5),
    )
    .unwrap()
}

fn window(d: &mut NvmlDevice, ms: u64) -> EnergyWindow {
    d.window_begin().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    d.window_end().unwrap()
}

#[test]
fn the_counter_gives_the_energy_of_the_window() {
    let t = tempfile::tempdir().unwrap();
    let fake = fake(|_| {}, true);
    let mut d = open(&fake, false, t.path());
    let w = window(&mut d, 60);
    // 300 W over the window, give or take a millisecond of reading.
    let want = 300.0 * w.time_s;
    assert!((w.energy_j - want).abs() < 0.6, "{} vs {want}", w.energy_j);
    assert!(d.notes().iter().any(|n| n.contains("not locked")));
}

#[test]
fn a_counter_that_wraps_around_still_gives_the_energy() {
    assert_eq!(counter_delta_mj(u64::MAX - 9, 10), 20);
    assert_eq!(counter_delta_mj(100, 350), 250);
    let t = tempfile::tempdir().unwrap();
    let fake = fake(|g| g.counter_start_mj = u64::MAX - 3, true);
    let mut d = open(&fake, false, t.path());
    let w = window(&mut d, 40);
    assert!(w.energy_j > 5.0 && w.energy_j < 100.0, "{}", w.energy_j);
}

#[test]
fn without_a_counter_the_power_is_polled() {
    let t = tempfile::tempdir().unwrap();
    let fake = fake(
        |g| {
            g.counter = false;
            g.power_w = 120.0;
        },
        true,
    );
    let mut d = open(&fake, false, t.path());
    let w = window(&mut d, 80);
    assert!((w.energy_j / w.time_s - 120.0).abs() < 1.0, "{w:?}");
    assert!(
        d.notes()[0].contains("polled every 5 ms"),
        "{:?}",
        d.notes()
    );
}

/// A workload whose runs take 1 us per inference.
struct Quick;
impl Workload for Quick {
    fn name(&self) -> String {
        "quick".into()
    }
    fn run(&mut self, _: u32, n: u32, m: &mut dyn Meter) -> Result<WorkloadRun, DeviceError> {
        m.begin()?;
        std::thread::sleep(Duration::from_micros(n as u64));
        m.end()?;
        Ok(WorkloadRun::default())
    }
}

#[test]
fn short_windows_on_a_stepped_counter_are_lengthened_by_the_protocol() {
    let t = tempfile::tempdir().unwrap();
    // The counter moves every 100 ms; 3200 inferences take about 3 ms.
    let fake = fake(|g| g.step_ms = 100, true);
    let mut d = open(&fake, false, t.path());
    let s = ProtocolSettings {
        warmup_inferences: 0,
        min_window_s: 0.5,
        min_runs: 2,
        cv_target: 0.5,
        ..Default::default()
    };
    let m = measure(&mut d, &mut Quick, &FreqSetting::Dvfs, 8, &s).unwrap();
    assert!(m.window_repeats > 50, "{}", m.window_repeats);
    // Per 3200 inferences: 300 W x the run's time, within the counter's step over the window.
    let want = 300.0 * m.time_s;
    assert!(
        (m.energy_j - want).abs() < 300.0 * 0.1 / m.window_repeats as f64 + 0.05 * want,
        "{} vs {want}",
        m.energy_j
    );
}

#[test]
fn locked_clocks_are_recorded_and_reset_on_every_path() {
    let t = tempfile::tempdir().unwrap();
    let record = t.path().join("nvml-restore.json");
    let fake = fake(|_| {}, true);
    let pinned = |mhz: u64| FreqSetting::Pinned {
        cpu_freq_khz: 0,
        gpu_freq_hz: mhz * 1_000_000,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    };
    // Success: lock, lock again (no second call), baseline resets, restore is a no-op.
    let mut d = open(&fake, true, t.path());
    d.apply(&pinned(1410)).unwrap();
    assert!(
        record.exists(),
        "the record is written before the first lock"
    );
    d.apply(&pinned(1410)).unwrap();
    d.apply(&pinned(345)).unwrap();
    d.apply(&FreqSetting::Dvfs).unwrap();
    assert!(!record.exists());
    d.apply(&pinned(1980)).unwrap();
    d.restore().unwrap();
    drop(d);
    assert_eq!(
        fake.calls(),
        [
            "lock 0 1410 1410",
            "lock 0 345 345",
            "reset 0",
            "lock 0 1980 1980",
            "reset 0"
        ]
    );
    // A clock the GPU does not list is refused before any call.
    let mut d = open(&fake, true, t.path());
    assert!(matches!(
        d.apply(&pinned(1000)),
        Err(DeviceError::Unsupported(_))
    ));
    // An error or a panic drops the device: the lock goes with it.
    let f2 = fake.clone();
    let dir = t.path().to_path_buf();
    let r = std::panic::catch_unwind(move || {
        let mut d = open(&f2, true, &dir);
        d.apply(&pinned(345)).unwrap();
        panic!("a bug");
    });
    assert!(r.is_err());
    assert_eq!(fake.calls().last().unwrap(), "reset 0");
    assert!(locked(&fake).is_none());
    assert!(!record.exists());
}

#[test]
fn a_killed_run_is_undone_by_restore_and_blocks_a_new_one_until_then() {
    let t = tempfile::tempdir().unwrap();
    let fake = fake(|_| {}, true);
    let mut d = open(&fake, true, t.path());
    d.apply(&FreqSetting::Pinned {
        cpu_freq_khz: 0,
        gpu_freq_hz: 345_000_000,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    })
    .unwrap();
    // SIGKILL: nothing runs, not even Drop.
    std::mem::forget(d);
    let record = record_path(&t.path().join("restore.json"));
    let gpu = pick(&fake, "gpu").unwrap();
    let e = NvmlDevice::open(
        shared(&fake),
        gpu,
        true,
        &t.path().join("restore.json"),
        Duration::from_millis(5),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("edgetune restore"), "{e}");
    let mut api = fake.clone();
    let rec = restore_from_record(&mut api, &record).unwrap().unwrap();
    assert_eq!(rec.gpu, 0);
    assert!(locked(&fake).is_none());
    assert!(!record.exists());
    assert!(restore_from_record(&mut api, &record).unwrap().is_none());
}

#[test]
fn clock_control_without_permission_or_without_the_flag_is_explained() {
    let t = tempfile::tempdir().unwrap();
    let fake = fake(|_| {}, false);
    let pinned = FreqSetting::Pinned {
        cpu_freq_khz: 0,
        gpu_freq_hz: 1_410_000_000,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    };
    let mut d = open(&fake, true, t.path());
    let e = d.apply(&pinned).unwrap_err().to_string();
    assert!(e.contains("run as root"), "{e}");
    assert!(!record_path(&t.path().join("restore.json")).exists());
    let mut d = open(&fake, false, t.path());
    let e = d.apply(&pinned).unwrap_err().to_string();
    assert!(e.contains("allow_clock_control"), "{e}");
    // The default clocks need no permission at all.
    let default = FreqSetting::Pinned {
        cpu_freq_khz: 0,
        gpu_freq_hz: DEFAULT_CLOCKS,
        emc_freq_hz: None,
        cpu_cores: None,
        power_mode: None,
    };
    d.apply(&default).unwrap();
    d.apply(&FreqSetting::Dvfs).unwrap();
    assert!(fake.calls().is_empty());
}

#[test]
fn gpus_are_named_by_index_or_name() {
    let fake = fake(|_| {}, true);
    assert_eq!(pick(&fake, "gpu").unwrap().index, 0);
    assert_eq!(pick(&fake, "gpu:1").unwrap().index, 1);
    assert_eq!(pick(&fake, "cuda:1").unwrap().index, 1);
    assert_eq!(pick(&fake, "A100").unwrap().index, 1);
    assert_eq!(pick(&fake, "nvidia h100 80gb hbm3").unwrap().index, 0);
    let e = pick(&fake, "gpu:7").unwrap_err().to_string();
    assert!(
        e.contains("gpu:0 NVIDIA H100 80GB HBM3, gpu:1 NVIDIA A100"),
        "{e}"
    );
    assert!(names_a_gpu("gpu") && names_a_gpu("GPU:2") && !names_a_gpu("nano"));
    let info = describe(&fake, 0).unwrap();
    assert_eq!(info.graphics_clocks_mhz, [345, 1410, 1980]);
    assert!(info.energy_counter);
    assert_eq!(info.power_w, Some(300.0));
}
