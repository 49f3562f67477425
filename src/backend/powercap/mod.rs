//! The host CPU through Linux powercap: RAPL energy counters
//! (`/sys/class/powercap/intel-rapl:N/energy_uj`, which wrap around at `max_energy_range_uj`)
//! and the CPU clock through cpufreq (`scaling_min_freq` = `scaling_max_freq`). It tunes the CPU
//! frequency and the batch size of a workload command on an x86 host, as the jetson backend does
//! on a board. Energy is the sum of the package zones (`intel-rapl:N` named `package-N`, on AMD
//! hosts too) and of their `dram` subzones where there are any; the other zones (core and uncore,
//! parts of their package; psys, the platform, which holds the packages) are reported as rails
//! only.

pub mod rig;
mod spec;
#[cfg(test)]
mod tests;

pub use spec::HostSpec;

use crate::backend::jetson::owner::BoardLock;
use crate::backend::jetson::snapshot::{self, Entry, Restored, Snapshot};
use crate::backend::jetson::sysfs::{subdirs, Sysfs};
use crate::backend::jetson::JetsonError;
use crate::device::{BackendKind, Device, DeviceError, EnergyWindow, FreqSetting};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use thiserror::Error;

/// What can go wrong with a host's powercap and cpufreq files.
#[derive(Debug, Error)]
pub enum PowercapError {
    /// The files a host needs are not there.
    #[error("{0}")]
    NotFound(String),
    /// Reading or writing a file failed, or a write would leave the cpufreq folders (the
    /// board backend's checked sysfs access, which this one shares).
    #[error(transparent)]
    Files(#[from] JetsonError),
    /// Another process owns the host's clocks.
    #[error("{0}")]
    Busy(String),
}

impl From<PowercapError> for DeviceError {
    fn from(e: PowercapError) -> DeviceError {
        DeviceError::Failed(e.to_string())
    }
}

/// One RAPL energy counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Its `name` (`package-0`, `dram`, `core`, `psys`).
    pub name: String,
    /// `energy_uj`.
    pub energy_path: PathBuf,
    /// `max_energy_range_uj`: the counter wraps around past it.
    pub max_range_uj: u64,
    /// Whether it counts towards the total (a package, or a package's `dram` subzone).
    pub counted: bool,
}

/// One cpufreq policy and its limits as found.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `.../cpufreq/policyN`.
    pub dir: PathBuf,
    /// `scaling_min_freq` as found, kHz.
    pub min_khz: u64,
    /// `scaling_max_freq` as found, kHz.
    pub max_khz: u64,
}

/// What a host offers under a sysfs root.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// `/` on a host, a fixture tree in tests.
    pub root: PathBuf,
    /// Every RAPL zone, packages first.
    pub zones: Vec<Zone>,
    /// Every cpufreq policy.
    pub policies: Vec<Policy>,
    /// The CPU clocks every policy offers, kHz, ascending.
    pub cpu_freq_khz: Vec<u64>,
}

/// A package zone is `intel-rapl:N`; a subzone `intel-rapl:N:M` (also a directory inside it).
fn zones(fs: &Sysfs) -> Result<Vec<Zone>, PowercapError> {
    let class = fs.path("/sys/class/powercap");
    let mut out = Vec::new();
    for dir in subdirs(&class, |n| n.starts_with("intel-rapl:")) {
        let depth = dir
            .file_name()
            .map_or(0, |n| n.to_string_lossy().matches(':').count());
        let name = fs.read(&dir.join("name"))?;
        out.push(Zone {
            // psys (the platform) already holds the packages: never added to them.
            counted: (depth == 1 && name.starts_with("package")) || (depth == 2 && name == "dram"),
            energy_path: dir.join("energy_uj"),
            max_range_uj: fs.read_u64(&dir.join("max_energy_range_uj"))?,
            name,
        });
    }
    if !out.iter().any(|z| z.counted) {
        return Err(PowercapError::NotFound(format!(
            "no RAPL package zone: {}/intel-rapl:N is missing (the intel_rapl_common module, or a CPU without RAPL)",
            class.display()
        )));
    }
    out.sort_by_key(|z| !z.counted);
    Ok(out)
}

fn policies(fs: &Sysfs) -> Result<(Vec<Policy>, Vec<u64>), PowercapError> {
    let dir = fs.path("/sys/devices/system/cpu/cpufreq");
    let mut out = Vec::new();
    let mut common: Option<Vec<u64>> = None;
    for p in subdirs(&dir, |n| n.starts_with("policy")) {
        let listed = p.join("scaling_available_frequencies");
        if !listed.exists() {
            common = Some(Vec::new());
            continue;
        }
        let khz = fs.read_list(&listed)?;
        common = Some(match common {
            None => khz,
            Some(c) => c.into_iter().filter(|f| khz.contains(f)).collect(),
        });
        out.push(Policy {
            min_khz: fs.read_u64(&p.join("scaling_min_freq"))?,
            max_khz: fs.read_u64(&p.join("scaling_max_freq"))?,
            dir: p,
        });
    }
    match common {
        Some(c) if !c.is_empty() => Ok((out, c)),
        _ => Err(PowercapError::NotFound(format!(
            "no cpufreq policy lists its clocks: {}/policy*/scaling_available_frequencies is missing (intel_pstate in active mode lists none; boot with intel_pstate=passive, or use acpi-cpufreq)",
            dir.display()
        ))),
    }
}

/// Finds the host's RAPL zones and cpufreq policies under `root`.
pub fn discover(root: &Path) -> Result<Discovery, PowercapError> {
    let fs = Sysfs::new(root);
    let zones = zones(&fs)?;
    let (policies, cpu_freq_khz) = policies(&fs)?;
    Ok(Discovery {
        root: root.into(),
        zones,
        policies,
        cpu_freq_khz,
    })
}

impl Discovery {
    /// A sysfs handle allowed to write exactly where this backend writes: the cpufreq
    /// policies' folders.
    pub fn sysfs(&self) -> Sysfs {
        let mut fs = Sysfs::new(&self.root);
        for p in &self.policies {
            fs.allow(&p.dir);
        }
        fs
    }
}

/// Energy between two readings of a counter that wraps around past `max_range_uj` (one wrap at
/// most: at 200 W a 262 J-range counter wraps every 1.3 s, a 262 kJ one every 22 min, and the
/// protocol's windows are shorter than the latter).
pub fn delta_uj(start: u64, end: u64, max_range_uj: u64) -> u64 {
    if end >= start {
        end - start
    } else {
        end + max_range_uj.saturating_sub(start)
    }
}

/// Every open device's discovery (its policies as found) and state file, by device: what a
/// second Ctrl-C puts back. Writes hold it, so the signal's restore never interleaves with a pin.
static OPEN: Mutex<Vec<(u64, Discovery, PathBuf)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The list of open devices, held.
pub type OpenDevices = MutexGuard<'static, Vec<(u64, Discovery, PathBuf)>>;

fn open_devices() -> OpenDevices {
    OPEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pins every policy at `pin` kHz (min = max), or puts its limits back as found (`None`), in
/// the order that keeps min <= max.
fn write_limits(
    fs: &mut Sysfs,
    policies: &[Policy],
    pin: Option<u64>,
) -> Result<(), PowercapError> {
    for p in policies {
        let (min, max) = pin.map_or((p.min_khz, p.max_khz), |f| (f, f));
        let (min_f, max_f) = (
            p.dir.join("scaling_min_freq"),
            p.dir.join("scaling_max_freq"),
        );
        fs.write_range(&min_f, &max_f, min, max)?;
    }
    Ok(())
}

/// The limits as found, as the restore snapshot holds them.
fn entries(policies: &[Policy]) -> Vec<Entry> {
    policies
        .iter()
        .map(|p| Entry::Range {
            min_path: p.dir.join("scaling_min_freq"),
            max_path: p.dir.join("scaling_max_freq"),
            min: p.min_khz,
            max: p.max_khz,
        })
        .collect()
}

/// `edgetune restore` on a host: puts the cpufreq limits back from the state file a run that
/// was killed left (SIGKILL, power loss), checks they read back, and deletes it. Takes the
/// host's lock first unless `force`; refuses a snapshot naming any file outside the policies'
/// folders.
pub fn restore_from_state(
    root: &Path,
    state_path: &Path,
    force: bool,
) -> Result<Restored, JetsonError> {
    let _owner = snapshot::lock_unless_forced(state_path, force)?;
    let snap = Snapshot::load(state_path)?;
    let disc = discover(root).map_err(|e| match e {
        PowercapError::Files(j) => j,
        e => JetsonError::NotFound(e.to_string()),
    })?;
    snapshot::put_back(&mut disc.sysfs(), &snap, state_path)
}

/// Puts back the limits of every open device (a second Ctrl-C; the process exits right after)
/// and returns what it did, with the guard that keeps any later write from starting: hold it
/// until exit. `None` when no device is open.
pub fn emergency_restore() -> (Option<String>, OpenDevices) {
    let mut open = open_devices();
    if open.is_empty() {
        return (None, open);
    }
    let failed: Vec<String> = open
        .iter()
        .filter_map(|(_, d, state)| {
            write_limits(&mut d.sysfs(), &d.policies, None)
                .and_then(|()| Ok(snapshot::remove_state(state)?))
                .err()
        })
        .map(|e| e.to_string())
        .collect();
    open.clear();
    let said = if failed.is_empty() {
        "put the CPU clock limits back as found".to_string()
    } else {
        format!(
            "putting the CPU clock limits back failed: {}",
            failed.join("; ")
        )
    };
    (Some(said), open)
}

/// The host's CPU: pins clocks through cpufreq and reads RAPL counters.
pub struct PowercapDevice {
    id: u64,
    disc: Discovery,
    fs: Sysfs,
    _lock: BoardLock,
    /// Where the limits as found are saved before the first write, for `edgetune restore`.
    state_path: PathBuf,
    window: Option<(Instant, Vec<u64>)>,
    /// Whether a limit was written since the last restore.
    touched: bool,
}

impl PowercapDevice {
    /// Takes the host (one process at a time, through a lock beside `state_path`) and reads
    /// its counters once, so a missing permission shows before anything is pinned. A state
    /// file left by a run that was killed is refused: `edgetune restore` puts its limits back.
    pub fn open(disc: Discovery, state_path: &Path) -> Result<PowercapDevice, PowercapError> {
        let lock = BoardLock::take(state_path).map_err(|e| PowercapError::Busy(e.to_string()))?;
        snapshot::refuse_stale(state_path)?;
        let fs = disc.sysfs();
        for z in &disc.zones {
            fs.read_u64(&z.energy_path)?;
        }
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        open_devices().push((id, disc.clone(), state_path.to_path_buf()));
        Ok(PowercapDevice {
            id,
            disc,
            fs,
            _lock: lock,
            state_path: state_path.to_path_buf(),
            window: None,
            touched: false,
        })
    }

    fn counters(&self) -> Result<Vec<u64>, PowercapError> {
        self.disc
            .zones
            .iter()
            .map(|z| Ok(self.fs.read_u64(&z.energy_path)?))
            .collect()
    }

    /// Sets every policy's limits, unless a second signal restored them (then nothing is
    /// written again: the process is about to exit). The first write after opening or
    /// restoring saves the limits as found to the state file first, durably.
    fn set_limits(&mut self, pin: Option<u64>) -> Result<(), PowercapError> {
        let open = open_devices();
        if !open.iter().any(|(id, ..)| *id == self.id) {
            return Ok(());
        }
        if !self.touched {
            let root = &self.disc.root;
            Snapshot::of(BackendKind::Powercap, root, entries(&self.disc.policies))
                .save(&self.state_path)?;
        }
        self.touched = true;
        write_limits(&mut self.fs, &self.disc.policies, pin)
    }
}

impl Device for PowercapDevice {
    fn backend(&self) -> crate::device::BackendKind {
        crate::device::BackendKind::Powercap
    }

    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError> {
        match setting {
            FreqSetting::Dvfs => Ok(self.set_limits(None)?),
            FreqSetting::Pinned { cpu_freq_khz, .. } => {
                if !self.disc.cpu_freq_khz.contains(cpu_freq_khz) {
                    return Err(DeviceError::Unsupported(format!(
                        "{cpu_freq_khz} kHz is not a clock every cpufreq policy offers"
                    )));
                }
                Ok(self.set_limits(Some(*cpu_freq_khz))?)
            }
        }
    }

    fn window_begin(&mut self) -> Result<(), DeviceError> {
        self.window = Some((Instant::now(), self.counters()?));
        Ok(())
    }

    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
        let end = self.counters()?;
        let (t0, start) = self
            .window
            .take()
            .ok_or_else(|| DeviceError::Failed("no energy window was open".into()))?;
        let mut w = EnergyWindow {
            time_s: t0.elapsed().as_secs_f64(),
            ..EnergyWindow::default()
        };
        for ((z, s), e) in self.disc.zones.iter().zip(start).zip(end) {
            let j = delta_uj(s, e, z.max_range_uj) as f64 / 1e6;
            if z.counted {
                w.energy_j += j;
            }
            w.rail_energy_j.push((z.name.clone(), j));
        }
        Ok(w)
    }

    fn restore(&mut self) -> Result<(), DeviceError> {
        if self.touched {
            self.set_limits(None)?;
            self.touched = false;
            snapshot::remove_state(&self.state_path).map_err(PowercapError::from)?;
        }
        Ok(())
    }
}

impl Drop for PowercapDevice {
    fn drop(&mut self) {
        // Every way out leaves the limits as found; a panic still unwinds through here.
        let _ = self.restore();
        open_devices().retain(|(id, ..)| *id != self.id);
    }
}
