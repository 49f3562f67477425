//! The real Jetson backend: CPU clocks through cpufreq, GPU clocks through devfreq, board power
//! from the INA3221 rails, all under a sysfs root (`/` on a board, a fixture tree in tests).
//!
//! Every file this backend may write is snapshotted to a state file before the first write
//! ([`snapshot`]); the snapshot is written back on success, on error, on panic (the device's
//! `Drop`), on SIGINT/SIGTERM/SIGHUP, and by `edgetune restore` after a SIGKILL or power loss.

pub mod live;
pub mod owner;
pub mod rails;
pub mod snapshot;
pub mod sysfs;

use crate::device::BaselineKind;
use crate::device::{Device, DeviceError, EnergyWindow, FreqSetting};
use crate::measure::power::{Poller, DEFAULT_POLL_MS};
use rails::Rails;
use serde::Serialize;
use snapshot::{Entry, Snapshot};
use std::path::{Path, PathBuf};
use std::time::Duration;
use sysfs::{subdirs, Sysfs};
use thiserror::Error;

/// What can go wrong with a board's files.
#[derive(Debug, Error)]
pub enum JetsonError {
    /// Reading or writing a file failed.
    #[error("{}", io_message(path, source))]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A file held something that is not what its interface defines.
    #[error("{path} holds `{value}`, which is not a number; the sensor or driver is misbehaving")]
    Garbage {
        /// The file.
        path: PathBuf,
        /// What it held.
        value: String,
    },
    /// A write outside the cpufreq, devfreq and memory-clock directories discovery found.
    #[error("refusing to write {0}: edgetune writes only under the board's cpufreq, devfreq and memory-clock directories")]
    Forbidden(PathBuf),
    /// edgetune's own file (the board lock, the state file) is a link or not a plain file:
    /// written, it would change another file.
    #[error("refusing to write {path}: {reason}; remove it (edgetune makes it again)")]
    NotOwn {
        /// The file.
        path: PathBuf,
        /// What it is.
        reason: String,
    },
    /// A file with other names (hard links): a write would change them too.
    #[error("refusing to write {0}: it has more than one hard link, so the write would reach another file too; sysfs files have one")]
    Linked(PathBuf),
    /// Something discovery needs is not there (not a Jetson, or an unknown layout).
    #[error("{0}")]
    NotFound(String),
    /// A frequency the board does not list.
    #[error("{0}")]
    Unsupported(String),
    /// A snapshot from an earlier run is still there.
    #[error("a snapshot of the board's clocks from an earlier edgetune run is still at {path} ({what}); the board may still be pinned. Run `sudo edgetune restore` first (add --sysfs-root/--state-file as you used them)")]
    StaleSnapshot {
        /// The state file.
        path: PathBuf,
        /// Who wrote it, and when.
        what: String,
    },
    /// A snapshot file that cannot be used.
    #[error("{0}")]
    Snapshot(String),
    /// Another edgetune owns the board.
    #[error("the board is in use by another run ({holder}; lock {}): wait for it to finish or stop it (Ctrl-C puts the board back); one edgetune drives a board at a time", lock.display())]
    Busy {
        /// The lock file.
        lock: PathBuf,
        /// Who holds it.
        holder: String,
    },
    /// The board was put back for good by a second interrupt; nothing more is written.
    #[error("the board was put back after a second interrupt; edgetune is quitting")]
    Closed,
    /// A file did not read back what restoring wrote.
    #[error("{path} reads `{got}` after restoring `{want}`; the snapshot is kept at {state}: run `sudo edgetune restore` again, or reboot")]
    NotRestored {
        /// The file.
        path: PathBuf,
        /// What it reads.
        got: String,
        /// What was written.
        want: String,
        /// The state file kept.
        state: PathBuf,
    },
}

fn io_message(path: &Path, e: &std::io::Error) -> String {
    // EPERM is the kernel (or an immutable file) refusing the operation, whoever asks; EACCES
    // is file permissions, which root passes.
    const EPERM: i32 = 1;
    match e.kind() {
        std::io::ErrorKind::PermissionDenied if e.raw_os_error() == Some(EPERM) => format!(
            "the kernel refused the write to {} (operation not permitted): the file may be immutable (chattr +i, lsattr shows it) or its driver refuses this operation",
            path.display()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied on {}: changing clocks needs root; run edgetune with sudo",
            path.display()
        ),
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("{}: {e}", path.display()),
    }
}

impl JetsonError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> JetsonError {
        // crate::files refuses a link or a shared file: the user's to fix.
        if crate::files::is_not_own(&source) {
            return JetsonError::NotOwn {
                path: path.to_path_buf(),
                reason: source.to_string(),
            };
        }
        JetsonError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the user can fix this by changing what they asked for (exit code 2), as opposed
    /// to a failure of the board or of permissions at run time (exit code 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            JetsonError::Forbidden(_)
                | JetsonError::Linked(_)
                | JetsonError::NotOwn { .. }
                | JetsonError::NotFound(_)
                | JetsonError::Unsupported(_)
                | JetsonError::StaleSnapshot { .. }
                | JetsonError::Snapshot(_)
                | JetsonError::Busy { .. }
        )
    }
}

impl From<JetsonError> for DeviceError {
    fn from(e: JetsonError) -> DeviceError {
        match e {
            JetsonError::Unsupported(m) => DeviceError::Unsupported(m),
            // A second signal restored the board: the run is over.
            JetsonError::Closed => DeviceError::Interrupted,
            e => DeviceError::Failed(e.to_string()),
        }
    }
}

/// GPU devfreq device names (`device/of_node/name`) of Jetson GPUs (jetson_clocks, jtop).
pub const GPU_NODE_NAMES: [&str; 5] = ["gp10b", "gv11b", "ga10b", "gb10b", "gpu"];

/// One cpufreq policy (clock domain).
#[derive(Debug, Clone, Serialize)]
pub struct CpuPolicy {
    /// The policy's cpufreq directory (symbolic links resolved).
    pub dir: PathBuf,
    /// CPUs it clocks.
    pub cpus: Vec<u32>,
    /// `scaling_available_frequencies`, kHz, ascending.
    pub available_khz: Vec<u64>,
    /// `scaling_available_governors`.
    pub governors: Vec<String>,
}

impl CpuPolicy {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// Whether it can be pinned with the userspace governor and `scaling_setspeed`.
    pub fn has_userspace(&self) -> bool {
        self.governors.iter().any(|g| g == "userspace") && self.file("scaling_setspeed").exists()
    }
}

/// The GPU's devfreq device.
#[derive(Debug, Clone, Serialize)]
pub struct GpuDevfreq {
    /// The devfreq directory (symbolic links resolved).
    pub dir: PathBuf,
    /// Its name under `/sys/class/devfreq`.
    pub name: String,
    /// `device/of_node/name` (gp10b, gv11b, ga10b, gpu).
    pub node: String,
    /// `available_frequencies`, Hz, ascending.
    pub available_hz: Vec<u64>,
    /// `available_governors`.
    pub governors: Vec<String>,
}

/// Which debugfs interface sets the memory clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmcKind {
    /// T210 (Nano): `clk/override.emc` (`clk_update_rate`, `clk_state`, `clk_rate`).
    Tegra210,
    /// T186/T194/T234: BPMP `clk/emc` (`rate`, `mrq_rate_locked`).
    Bpmp,
}

/// The memory clock's debugfs control (only with `--emc`).
#[derive(Debug, Clone, Serialize)]
pub struct EmcControl {
    /// Interface.
    pub kind: EmcKind,
    /// Its directory.
    pub dir: PathBuf,
    /// Lowest rate the board allows, Hz.
    pub min_hz: u64,
    /// Highest rate the board allows, Hz.
    pub max_hz: u64,
}

impl EmcControl {
    /// (rate file to write, override flag file, file to read the rate back).
    fn files(&self) -> (PathBuf, PathBuf, PathBuf) {
        match self.kind {
            EmcKind::Tegra210 => (
                self.dir.join("clk_update_rate"),
                self.dir.join("clk_state"),
                self.dir.join("clk_rate"),
            ),
            EmcKind::Bpmp => (
                self.dir.join("rate"),
                self.dir.join("mrq_rate_locked"),
                self.dir.join("rate"),
            ),
        }
    }
}

/// Finds the memory-clock control in debugfs (jetson_clocks' `do_emc`).
pub fn discover_emc(fs: &Sysfs) -> Result<EmcControl, JetsonError> {
    let t210 = fs.path("/sys/kernel/debug/clk/override.emc");
    let bwmgr = fs.path("/sys/kernel/debug/tegra_bwmgr");
    let bpmp = fs.path("/sys/kernel/debug/bpmp/debug/clk/emc");
    let (kind, dir, min_hz, max_hz) = if t210.join("clk_update_rate").exists() {
        (
            EmcKind::Tegra210,
            t210,
            fs.read_u64(&bwmgr.join("emc_min_rate"))?,
            fs.read_u64(&bwmgr.join("emc_max_rate"))?,
        )
    } else if bpmp.join("mrq_rate_locked").exists() {
        (
            EmcKind::Bpmp,
            bpmp.clone(),
            fs.read_u64(&bpmp.join("min_rate"))?,
            fs.read_u64(&bpmp.join("max_rate"))?,
        )
    } else {
        return Err(JetsonError::NotFound(format!(
            "--emc: no memory-clock control in debugfs (looked for {} and {}); debugfs must be mounted (`mount -t debugfs none /sys/kernel/debug`) and readable by root",
            t210.join("clk_update_rate").display(),
            bpmp.join("mrq_rate_locked").display()
        )));
    };
    let dir = std::fs::canonicalize(&dir).map_err(|e| JetsonError::io(&dir, e))?;
    Ok(EmcControl {
        kind,
        dir,
        min_hz,
        max_hz,
    })
}

/// What discovery found on a board.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    /// Sysfs root.
    pub root: PathBuf,
    /// `/proc/device-tree/model`.
    pub dt_model: String,
    /// cpufreq policies.
    pub cpu: Vec<CpuPolicy>,
    /// GPU devfreq.
    pub gpu: GpuDevfreq,
    /// Power sensors.
    pub rails: Rails,
    /// Memory-clock control, when asked for (`--emc`).
    pub emc: Option<EmcControl>,
}

/// A note when the tree under `root` is edgetune's virtual Jetson (`emulate`): its figures are
/// the twin's, and its times and energies are scaled by the emulator's time scale.
fn emulated_note(root: &Path) -> Option<String> {
    let c = crate::emulator::load_config(root).ok()?;
    let scale = if (c.time_scale - 1.0).abs() < 1e-12 {
        String::new()
    } else {
        format!(
            "; it runs at time scale {}, so every time and energy here is the twin's multiplied by {}",
            c.time_scale, c.time_scale
        )
    };
    Some(format!(
        "this board is edgetune's virtual Jetson (`edgetune emulate`, root {}): its clocks and sensors are the digital twin's, not a real board's{scale}",
        root.display()
    ))
}

/// `/proc/device-tree/model` under `root` (NULs trimmed), if there is one.
pub fn device_tree_model(root: &Path) -> Option<String> {
    let raw = std::fs::read(root.join("proc/device-tree/model")).ok()?;
    let s = String::from_utf8_lossy(&raw)
        .trim_matches(char::from(0))
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn words(fs: &Sysfs, p: &Path) -> Vec<String> {
    fs.read(p)
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Finds the board's cpufreq policies, GPU devfreq device and power rails under `root`.
pub fn discover(root: &Path) -> Result<Discovery, JetsonError> {
    let fs = Sysfs::new(root);
    let dt_model = device_tree_model(root).ok_or_else(|| {
        JetsonError::NotFound(format!(
            "not a Jetson: {} is missing or empty",
            fs.path("/proc/device-tree/model").display()
        ))
    })?;
    let cpu = discover_cpu(&fs)?;
    let gpu = discover_gpu(&fs)?;
    let rails = rails::discover(&fs)?;
    Ok(Discovery {
        root: root.to_path_buf(),
        dt_model,
        cpu,
        gpu,
        rails,
        emc: None,
    })
}

fn discover_cpu(fs: &Sysfs) -> Result<Vec<CpuPolicy>, JetsonError> {
    let base = fs.path("/sys/devices/system/cpu");
    let mut policies: Vec<CpuPolicy> = Vec::new();
    let cpus = subdirs(&base, |n| {
        n.strip_prefix("cpu")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    });
    for cpu_dir in cpus {
        let n: u32 = cpu_dir.file_name().unwrap().to_string_lossy()[3..]
            .parse()
            .expect("digits");
        // cpuN/cpufreq links to the policy shared by the cluster (absent while offline).
        let Ok(dir) = std::fs::canonicalize(cpu_dir.join("cpufreq")) else {
            continue;
        };
        if let Some(p) = policies.iter_mut().find(|p| p.dir == dir) {
            if !p.cpus.contains(&n) {
                p.cpus.push(n);
            }
            continue;
        }
        let avail = dir.join("scaling_available_frequencies");
        let available_khz = fs.read_list(&avail)?;
        if available_khz.is_empty() {
            return Err(JetsonError::NotFound(format!(
                "{} lists no frequencies",
                avail.display()
            )));
        }
        let mut cpus: Vec<u32> = fs
            .read(&dir.join("related_cpus"))
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if !cpus.contains(&n) {
            cpus.push(n);
        }
        policies.push(CpuPolicy {
            governors: words(fs, &dir.join("scaling_available_governors")),
            dir,
            cpus,
            available_khz,
        });
    }
    if policies.is_empty() {
        return Err(JetsonError::NotFound(format!(
            "no cpufreq policy: looked for {}",
            fs.path("/sys/devices/system/cpu/cpu*/cpufreq/scaling_available_frequencies")
                .display()
        )));
    }
    for p in &mut policies {
        p.cpus.sort_unstable();
    }
    Ok(policies)
}

fn discover_gpu(fs: &Sysfs) -> Result<GpuDevfreq, JetsonError> {
    let class = fs.path("/sys/class/devfreq");
    let mut seen = Vec::new();
    for d in subdirs(&class, |_| true) {
        let node = fs
            .read(&d.join("device/of_node/name"))
            .unwrap_or_default()
            .trim_matches(char::from(0))
            .to_string();
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        if !GPU_NODE_NAMES.contains(&node.as_str()) {
            seen.push(format!("{name} ({node})"));
            continue;
        }
        let dir = std::fs::canonicalize(&d).map_err(|e| JetsonError::io(&d, e))?;
        let avail = dir.join("available_frequencies");
        let available_hz = fs.read_list(&avail)?;
        if available_hz.is_empty() {
            return Err(JetsonError::NotFound(format!(
                "{} lists no frequencies",
                avail.display()
            )));
        }
        return Ok(GpuDevfreq {
            governors: words(fs, &dir.join("available_governors")),
            dir,
            name,
            node,
            available_hz,
        });
    }
    Err(JetsonError::NotFound(format!(
        "no GPU devfreq device: none of {}/*/device/of_node/name is one of {} (found: {}). A rail-gated GPU may be missing until it powers up: run a CUDA program once and retry",
        class.display(),
        GPU_NODE_NAMES.join(", "),
        if seen.is_empty() { "nothing".to_string() } else { seen.join(", ") }
    )))
}

impl Discovery {
    /// Adds the memory-clock control (`--emc`).
    pub fn with_emc(mut self) -> Result<Discovery, JetsonError> {
        self.emc = Some(discover_emc(&Sysfs::new(&self.root))?);
        Ok(self)
    }

    /// A sysfs handle allowed to write exactly where this backend writes: the cpufreq policies,
    /// the GPU devfreq directory and, with `--emc`, the memory clock's debugfs directory.
    pub fn sysfs(&self) -> Sysfs {
        let mut fs = Sysfs::new(&self.root);
        for p in &self.cpu {
            fs.allow(&p.dir);
        }
        fs.allow(&self.gpu.dir);
        if let Some(e) = &self.emc {
            fs.allow(&e.dir);
        }
        fs
    }

    /// The files this backend may write, with their current values, in restore order:
    /// per policy its governor, `scaling_setspeed` (best effort: the kernel accepts it only
    /// under the userspace governor) and min/max; then the GPU's min/max.
    pub fn snapshot_entries(&self, fs: &Sysfs) -> Result<Vec<Entry>, JetsonError> {
        let mut v = Vec::new();
        for p in &self.cpu {
            let gov = p.file("scaling_governor");
            v.push(Entry::File {
                value: fs.read(&gov)?,
                path: gov,
                best_effort: false,
            });
            if p.has_userspace() {
                let s = p.file("scaling_setspeed");
                v.push(Entry::File {
                    value: fs.read(&s)?,
                    path: s,
                    best_effort: true,
                });
            }
            v.push(range_entry(
                fs,
                p.file("scaling_min_freq"),
                p.file("scaling_max_freq"),
            )?);
        }
        v.push(range_entry(
            fs,
            self.gpu.dir.join("min_freq"),
            self.gpu.dir.join("max_freq"),
        )?);
        // The rate goes back first, then the override flag is released.
        if let Some(e) = &self.emc {
            let (rate, flag, _) = e.files();
            for path in [rate, flag] {
                v.push(Entry::File {
                    value: fs.read(&path)?,
                    path,
                    best_effort: false,
                });
            }
        }
        Ok(v)
    }
}

fn range_entry(fs: &Sysfs, min_path: PathBuf, max_path: PathBuf) -> Result<Entry, JetsonError> {
    Ok(Entry::Range {
        min: fs.read_u64(&min_path)?,
        max: fs.read_u64(&max_path)?,
        min_path,
        max_path,
    })
}

/// Where the restore snapshot is kept: `<root>/var/lib/edgetune/restore.json` (so
/// `/var/lib/edgetune/restore.json` on a board) unless overridden.
pub fn default_state_path(root: &Path) -> PathBuf {
    root.join("var/lib/edgetune/restore.json")
}

/// The Jetson device: pins clocks through sysfs and integrates the rails' power.
pub struct JetsonDevice {
    disc: Discovery,
    fs: Sysfs,
    snapshot: Snapshot,
    state_path: PathBuf,
    /// Whether the board may differ from the snapshot (the state file exists).
    dirty: bool,
    poll: Duration,
    poller: Option<Poller>,
    notes: Vec<String>,
    /// Whether the tree is edgetune's virtual Jetson (found once, at open).
    emulated: bool,
    pinned_at_start: bool,
    /// This process's ownership of the board: from open until the board is restored (taken
    /// again should it be written after that).
    owner: Option<owner::BoardLock>,
    /// Times a clock is read again while it has not followed a pin yet (20 ms apart).
    read_back_retries: u32,
}

impl JetsonDevice {
    /// Takes the board over: refuses when a stale snapshot exists, reads every file it may
    /// write into a snapshot and checks each can be opened for writing (so a user who is not
    /// root is told before anything changes). Nothing is written until the first `apply`.
    pub fn open(
        disc: Discovery,
        state_path: &Path,
        poll_ms: Option<u64>,
    ) -> Result<JetsonDevice, JetsonError> {
        let owner = owner::BoardLock::take(state_path)?;
        if state_path.exists() {
            return Err(JetsonError::StaleSnapshot {
                path: state_path.to_path_buf(),
                what: Snapshot::load(state_path)
                    .map(|s| s.describe())
                    .unwrap_or_else(|e| e.to_string()),
            });
        }
        Self::take_over(disc, state_path, poll_ms, None, owner)
    }

    /// Like [`JetsonDevice::open`], but an existing snapshot is kept as the state to return to
    /// (for `edgetune apply` run twice: the first snapshot holds what the board was before).
    pub fn open_keeping(disc: Discovery, state_path: &Path) -> Result<JetsonDevice, JetsonError> {
        let owner = owner::BoardLock::take(state_path)?;
        let old = match state_path.exists() {
            true => Some(Snapshot::load(state_path)?),
            false => None,
        };
        Self::take_over(disc, state_path, None, old, owner)
    }

    fn take_over(
        disc: Discovery,
        state_path: &Path,
        poll_ms: Option<u64>,
        old: Option<Snapshot>,
        owner: owner::BoardLock,
    ) -> Result<JetsonDevice, JetsonError> {
        let fs = disc.sysfs();
        let entries = disc.snapshot_entries(&fs)?;
        for e in &entries {
            for p in e.paths() {
                fs.check_writable(p)?;
            }
        }
        let pinned_at_start = entries
            .iter()
            .any(|e| matches!(e, Entry::Range { min, max, .. } if min == max));
        let dirty = old.is_some();
        let snapshot = match old {
            Some(mut s) => {
                s.check(&fs)?;
                // Files this run may write that the kept snapshot does not hold (a memory
                // clock now, where the first apply had none) still have their values from
                // before: add them, on disk too, before anything is written.
                let held: Vec<PathBuf> = s
                    .entries
                    .iter()
                    .flat_map(|e| e.paths())
                    .map(Path::to_path_buf)
                    .collect();
                let missing: Vec<Entry> = entries
                    .into_iter()
                    .filter(|e| e.paths().iter().any(|p| !held.iter().any(|h| h == p)))
                    .collect();
                if !missing.is_empty() {
                    s.entries.extend(missing);
                    s.save(state_path)?;
                }
                s
            }
            None => Snapshot::new(&disc, entries),
        };
        let emulated = emulated_note(&disc.root);
        Ok(JetsonDevice {
            fs,
            snapshot,
            state_path: state_path.to_path_buf(),
            dirty,
            poll: Duration::from_millis(poll_ms.unwrap_or(DEFAULT_POLL_MS)),
            poller: None,
            emulated: emulated.is_some(),
            notes: emulated.into_iter().collect(),
            pinned_at_start,
            disc,
            owner: Some(owner),
            read_back_retries: 5,
        })
    }

    /// What discovery found.
    pub fn discovery(&self) -> &Discovery {
        &self.disc
    }

    /// The snapshot taken at open.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The state file.
    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    /// Every write made so far (path, value), in order.
    pub fn write_log(&self) -> &[(PathBuf, String)] {
        &self.fs.log
    }

    /// Things the user should know (read-back mismatches, stale sensors), each once.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn note(&mut self, s: String) {
        if !self.notes.contains(&s) {
            self.notes.push(s);
        }
    }

    /// Writes the snapshot to the state file before the first write to the board.
    fn arm(&mut self) -> Result<(), JetsonError> {
        if self.owner.is_none() {
            self.owner = Some(owner::BoardLock::take(&self.state_path)?);
        }
        if !self.dirty {
            self.snapshot.save(&self.state_path)?;
            snapshot::register_emergency(&self.disc.root, &self.state_path);
            self.dirty = true;
        }
        Ok(())
    }

    /// Checks a pinned setting against the board's own lists, before any write.
    fn check(
        &self,
        cpu_freq_khz: u64,
        gpu_freq_hz: u64,
        emc_freq_hz: Option<u64>,
    ) -> Result<(), JetsonError> {
        if let Some(f) = emc_freq_hz {
            match &self.disc.emc {
                None => {
                    return Err(JetsonError::Unsupported(format!(
                        "a memory clock ({f} Hz) was asked for, but memory-clock control is off; pass --emc"
                    )))
                }
                Some(e) if !(e.min_hz..=e.max_hz).contains(&f) => {
                    return Err(JetsonError::Unsupported(format!(
                        "memory clock {f} Hz is outside the board's limits {}-{} Hz",
                        e.min_hz, e.max_hz
                    )))
                }
                Some(_) => {}
            }
        }
        for p in &self.disc.cpu {
            if !p.available_khz.contains(&cpu_freq_khz) {
                return Err(JetsonError::Unsupported(format!(
                    "CPU frequency {cpu_freq_khz} kHz is not in {} ({})",
                    p.file("scaling_available_frequencies").display(),
                    join(&p.available_khz)
                )));
            }
        }
        if !self.disc.gpu.available_hz.contains(&gpu_freq_hz) {
            return Err(JetsonError::Unsupported(format!(
                "GPU frequency {gpu_freq_hz} Hz is not in {} ({})",
                self.disc.gpu.dir.join("available_frequencies").display(),
                join(&self.disc.gpu.available_hz)
            )));
        }
        Ok(())
    }

    /// Pins the clocks, with the board-write guard held for every write of it.
    fn pin(
        &mut self,
        cpu_freq_khz: u64,
        gpu_freq_hz: u64,
        emc_freq_hz: Option<u64>,
    ) -> Result<(), JetsonError> {
        self.check(cpu_freq_khz, gpu_freq_hz, emc_freq_hz)?;
        let closed = snapshot::writes();
        if closed.contains(&self.state_path) {
            return Err(JetsonError::Closed);
        }
        self.pin_locked(cpu_freq_khz, gpu_freq_hz, emc_freq_hz)
    }

    fn pin_locked(
        &mut self,
        cpu_freq_khz: u64,
        gpu_freq_hz: u64,
        emc_freq_hz: Option<u64>,
    ) -> Result<(), JetsonError> {
        self.arm()?;
        for p in self.disc.cpu.clone() {
            let (lo, hi) = (p.file("scaling_min_freq"), p.file("scaling_max_freq"));
            if p.has_userspace() {
                if self.fs.read(&p.file("scaling_governor"))? != "userspace" {
                    self.fs.write(&p.file("scaling_governor"), "userspace")?;
                }
                let (cur_lo, cur_hi) = (self.fs.read_u64(&lo)?, self.fs.read_u64(&hi)?);
                if cpu_freq_khz < cur_lo || cpu_freq_khz > cur_hi {
                    let (a, b) = (cur_lo.min(cpu_freq_khz), cur_hi.max(cpu_freq_khz));
                    self.fs.write_range(&lo, &hi, a, b)?;
                }
                self.fs
                    .write(&p.file("scaling_setspeed"), &cpu_freq_khz.to_string())?;
            } else {
                self.fs.write_range(&lo, &hi, cpu_freq_khz, cpu_freq_khz)?;
            }
            self.read_back(&p.file("scaling_cur_freq"), cpu_freq_khz, "kHz");
        }
        let g = self.disc.gpu.dir.clone();
        self.fs.write_range(
            &g.join("min_freq"),
            &g.join("max_freq"),
            gpu_freq_hz,
            gpu_freq_hz,
        )?;
        self.read_back(&g.join("cur_freq"), gpu_freq_hz, "Hz");
        if let (Some(f), Some(e)) = (emc_freq_hz, self.disc.emc.clone()) {
            let (rate, flag, now) = e.files();
            // jetson_clocks' order: T210 sets the rate, then turns the override on; BPMP
            // locks first, then sets the rate.
            match e.kind {
                EmcKind::Tegra210 => {
                    self.fs.write(&rate, &f.to_string())?;
                    self.fs.write(&flag, "1")?;
                }
                EmcKind::Bpmp => {
                    self.fs.write(&flag, "1")?;
                    self.fs.write(&rate, &f.to_string())?;
                }
            }
            self.read_back(&now, f, "Hz");
        }
        Ok(())
    }

    /// Reads the current frequency back and notes a mismatch (thermal capping, a governor or
    /// nvpmodel fighting the pin).
    fn read_back(&mut self, path: &Path, want: u64, unit: &str) {
        // One note per file: the first mismatch says what to look at.
        let shown = path.display().to_string();
        if self.notes.iter().any(|n| n.starts_with(&shown)) {
            return;
        }
        // A clock can take a moment to follow the write: look again for up to 100 ms.
        let mut got = self.fs.read_u64(path);
        for _ in 0..self.read_back_retries {
            if !matches!(got, Ok(v) if v != want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            got = self.fs.read_u64(path);
        }
        match got {
            Ok(v) if v == want => {}
            Ok(v) => self.note(format!(
                "{shown} read {v} {unit} after pinning {want} {unit}; the clock may be capped (thermal, nvpmodel) or the pin did not take (later mismatches on this file are not repeated)"
            )),
            Err(e) => self.note(format!("{shown}: could not read the clock back: {e}")),
        }
    }

    /// Writes the snapshot back, whatever state the board is in, and checks every file reads
    /// back as it was; nothing to do when a second signal already put the board back.
    /// With `done`, the state file is deleted too, under the same guard as the writes: a second
    /// signal's restore then either finishes first (this waits) or finds nothing to do, and is
    /// never cut short by this process exiting in between.
    fn put_back(&mut self, done: bool) -> Result<(), JetsonError> {
        let closed = snapshot::writes();
        if !closed.contains(&self.state_path) {
            snapshot::restore_and_verify(&mut self.fs, &self.snapshot.entries, &self.state_path)?;
        }
        if done {
            snapshot::remove_state(&self.state_path)?;
        }
        Ok(())
    }
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Device for JetsonDevice {
    fn backend(&self) -> crate::device::BackendKind {
        crate::device::BackendKind::Jetson
    }

    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError> {
        match *setting {
            FreqSetting::Pinned {
                cpu_freq_khz,
                gpu_freq_hz,
                emc_freq_hz,
                cpu_cores,
            } => {
                if cpu_cores.is_some() {
                    return Err(DeviceError::Unsupported(
                        "the jetson backend does not switch CPU cores on and off".into(),
                    ));
                }
                Ok(self.pin(cpu_freq_khz, gpu_freq_hz, emc_freq_hz)?)
            }
            // The governors and limits found at start are the DVFS baseline.
            FreqSetting::Dvfs => {
                if self.dirty {
                    self.put_back(false)?;
                }
                Ok(())
            }
        }
    }

    fn window_begin(&mut self) -> Result<(), DeviceError> {
        if let Some(p) = self.poller.take() {
            p.stop();
        }
        let src = self.disc.rails.source(&self.disc.root);
        self.poller = Some(Poller::start(src, self.poll));
        Ok(())
    }

    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
        let trace = self
            .poller
            .take()
            .ok_or_else(|| DeviceError::Failed("window_end without window_begin".into()))?
            .stop();
        if let Some(e) = trace.error {
            return Err(DeviceError::Failed(format!(
                "the power sensor failed during the run ({e}); the run is discarded"
            )));
        }
        if trace.samples.len() < 2 {
            return Err(DeviceError::Failed(
                "the power sensor gave fewer than two readings in the run".into(),
            ));
        }
        if trace.longest_repeat_s > 1.0 {
            self.note(format!(
                "the power sensor ({}) repeated one value for {:.1} s, longer than its averaging window; readings may be stale",
                self.disc.rails.total_name(),
                trace.longest_repeat_s
            ));
        }
        Ok(EnergyWindow {
            energy_j: trace.energy_j,
            time_s: trace.time_s,
            rail_energy_j: self
                .disc
                .rails
                .rails
                .iter()
                .map(|r| r.name.clone())
                .zip(trace.rail_energy_j)
                .collect(),
        })
    }

    fn restore(&mut self) -> Result<(), DeviceError> {
        if let Some(p) = self.poller.take() {
            p.stop();
        }
        if !self.dirty {
            return Ok(());
        }
        self.put_back(true)?;
        self.dirty = false;
        // Back as found: the board is free for another run.
        self.owner = None;
        Ok(())
    }

    fn emulated(&self) -> bool {
        self.emulated
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn restore_record(&self) -> Option<String> {
        serde_json::to_string_pretty(&self.snapshot).ok()
    }

    fn baseline_kind(&self) -> BaselineKind {
        if self.pinned_at_start {
            BaselineKind::AsFound
        } else {
            BaselineKind::Dvfs
        }
    }
}

impl Drop for JetsonDevice {
    /// The last line of defence (an early return or a panic): put the board back.
    fn drop(&mut self) {
        if self.dirty {
            if let Err(e) = Device::restore(self) {
                eprintln!(
                    "error: restoring the board failed: {e}; run `sudo edgetune restore` (snapshot at {})",
                    self.state_path.display()
                );
            }
        }
    }
}

#[cfg(test)]
impl JetsonDevice {
    /// No waiting for clocks to follow (a fixture's never do).
    pub(crate) fn without_read_back_wait(mut self) -> JetsonDevice {
        self.read_back_retries = 0;
        self
    }

    /// What a SIGKILL leaves: nothing is restored, the kernel drops the lock (its file stays).
    pub(crate) fn killed(mut self) {
        if let Some(o) = self.owner.take() {
            o.leak_unlocked();
        }
        std::mem::forget(self);
    }
}

/// Leaves a pinned setting in place (for `edgetune apply`): the state file stays, so
/// `edgetune restore` undoes it later.
pub fn apply_and_keep(
    mut dev: JetsonDevice,
    cpu_freq_khz: u64,
    gpu_freq_hz: u64,
    emc_freq_hz: Option<u64>,
) -> Result<Vec<String>, JetsonError> {
    let r = dev.pin(cpu_freq_khz, gpu_freq_hz, emc_freq_hz);
    if r.is_err() {
        return r.map(|_| Vec::new());
    }
    dev.dirty = false;
    Ok(std::mem::take(&mut dev.notes))
}

#[cfg(test)]
mod tests;
