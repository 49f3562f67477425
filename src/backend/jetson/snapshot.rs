//! The restore snapshot: every file the Jetson backend may write, with the value it had before
//! the first write, saved to a state file that outlives the process (SIGKILL, power loss) so
//! `edgetune restore` can put the board back.

use super::discover::{discover, discover_emc, Discovery};
use super::error::JetsonError;
use super::owner::BoardLock;
use super::sysfs::Sysfs;
use crate::device::BackendKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// One thing to put back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A file and its text.
    File {
        /// The file.
        path: PathBuf,
        /// Its text before edgetune wrote it.
        value: String,
        /// A failure to write it back is not an error (`scaling_setspeed`, which the kernel
        /// accepts only under the userspace governor, and which restoring the governor resets).
        #[serde(default)]
        best_effort: bool,
    },
    /// A min/max pair, written back in the order that keeps min at most max.
    Range {
        /// Lower-limit file.
        min_path: PathBuf,
        /// Upper-limit file.
        max_path: PathBuf,
        /// Lower limit before.
        min: u64,
        /// Upper limit before.
        max: u64,
    },
}

impl Entry {
    /// The files this entry writes.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Entry::File { path, .. } => vec![path],
            Entry::Range {
                min_path, max_path, ..
            } => vec![min_path, max_path],
        }
    }
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// edgetune version that wrote it.
    pub edgetune_version: String,
    /// When (RFC 3339).
    pub created: String,
    /// Process that wrote it.
    pub pid: u32,
    /// Sysfs root it is for.
    pub sysfs_root: PathBuf,
    /// `/proc/device-tree/model` of the board.
    pub dt_model: String,
    /// What to put back, in order.
    pub entries: Vec<Entry>,
    /// The backend that wrote it where not the Jetson's (`powercap`: a host's cpufreq limits,
    /// put back by that backend's restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendKind>,
    /// The nvpmodel power mode found, where the run switches modes: put back (`nvpmodel -m`)
    /// before the files, since a mode switch writes the clock limits itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mode: Option<u32>,
}

/// Whether `pid` is a live edgetune process: not a zombie, and not another program that was
/// given the pid of one that died.
fn edgetune_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // pid (comm) state ...: comm may hold spaces and parentheses, so split at the last `)`.
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map_or("", |(_, c)| c);
    let state = tail.trim_start().chars().next();
    comm.starts_with("edgetune") && !matches!(state, Some('Z' | 'X'))
}

impl Snapshot {
    /// A snapshot of `entries` on the discovered board.
    pub fn new(disc: &Discovery, entries: Vec<Entry>) -> Snapshot {
        // A Jetson's snapshot names no backend (files written before there was one read so).
        Snapshot {
            dt_model: disc.dt_model.clone(),
            backend: None,
            ..Snapshot::of(BackendKind::Jetson, &disc.root, entries)
        }
    }

    /// A snapshot of `entries` written by `backend` on the machine under `root` (no board).
    pub fn of(backend: BackendKind, root: &Path, entries: Vec<Entry>) -> Snapshot {
        Snapshot {
            edgetune_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Local::now().to_rfc3339(),
            pid: std::process::id(),
            sysfs_root: root.to_path_buf(),
            dt_model: String::new(),
            entries,
            backend: Some(backend),
            power_mode: None,
        }
    }

    /// Who wrote it and when, for messages.
    pub fn describe(&self) -> String {
        let alive = edgetune_running(self.pid);
        format!(
            "written by edgetune {} pid {}{} at {}",
            self.edgetune_version,
            self.pid,
            if alive && self.pid != std::process::id() {
                ", still running"
            } else {
                ""
            },
            self.created
        )
    }

    /// Reads a state file.
    pub fn load(path: &Path) -> Result<Snapshot, JetsonError> {
        let text = std::fs::read_to_string(path).map_err(|e| JetsonError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            JetsonError::Snapshot(format!(
                "{} is not an edgetune snapshot ({e}); restore the clocks by hand or reboot, then delete it",
                path.display()
            ))
        })
    }

    /// Writes the state file (parent folders created) and flushes it to disk before returning,
    /// so it survives a power loss that follows the first write to the board.
    pub fn save(&self, path: &Path) -> Result<(), JetsonError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| JetsonError::io(dir, e))?;
        }
        let body = serde_json::to_string_pretty(self).expect("snapshot serialises");
        crate::files::write_replacing(path, body.as_bytes()).map_err(|e| JetsonError::io(path, e))
    }

    /// Checks every entry names a file this backend may write (a snapshot edited to name any
    /// other file is refused before anything is written).
    pub fn check(&self, fs: &Sysfs) -> Result<(), JetsonError> {
        for e in &self.entries {
            for p in e.paths() {
                fs.check_writable(p)?;
            }
        }
        Ok(())
    }
}

/// Every write to a board in this process happens while this is held: a pin, a restore, and
/// the restore a second signal makes from its own thread, which so never interleaves with a
/// pin half done. It lists the state files whose boards a second signal put back for good:
/// nothing is written to those again.
static WRITES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Holds the board-write guard (a panic while it was held does not block restoring).
pub(crate) fn writes() -> MutexGuard<'static, Vec<PathBuf>> {
    WRITES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `entries` back in order. Every entry is tried even when one fails; the first failure
/// is returned.
pub fn restore_entries(fs: &mut Sysfs, entries: &[Entry]) -> Result<(), JetsonError> {
    let mut first_err = None;
    for e in entries {
        let r = match e {
            Entry::File {
                path,
                value,
                best_effort,
            } => match fs.write(path, value) {
                Err(_) if *best_effort => Ok(()),
                r => r,
            },
            Entry::Range {
                min_path,
                max_path,
                min,
                max,
            } => fs.write_range(min_path, max_path, *min, *max),
        };
        if let Err(err) = r {
            first_err.get_or_insert(err);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Writes `entries` back, then reads every one of them (but the best-effort ones) again: the
/// state file `state` may be deleted only once this returns `Ok`.
pub fn restore_and_verify(
    fs: &mut Sysfs,
    entries: &[Entry],
    state: &Path,
) -> Result<(), JetsonError> {
    restore_entries(fs, entries)?;
    let differs = |path: &Path, got: String, want: String| JetsonError::NotRestored {
        path: path.to_path_buf(),
        got,
        want,
        state: state.to_path_buf(),
    };
    for e in entries {
        match e {
            Entry::File {
                best_effort: true, ..
            } => {}
            Entry::File { path, value, .. } => {
                let got = fs.read(path)?;
                if got.trim() != value.trim() {
                    return Err(differs(path, got, value.clone()));
                }
            }
            Entry::Range {
                min_path,
                max_path,
                min,
                max,
            } => {
                for (p, want) in [(min_path, min), (max_path, max)] {
                    let got = fs.read_u64(p)?;
                    if got != *want {
                        return Err(differs(p, got.to_string(), want.to_string()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Deletes the state file (it is absent once the board is back as found).
pub fn remove_state(path: &Path) -> Result<(), JetsonError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(JetsonError::io(path, e)),
        _ => Ok(()),
    }
}

/// What `edgetune restore` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restored {
    /// The state file.
    pub state_path: PathBuf,
    /// Whether there was anything to restore.
    pub found: bool,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Who wrote the snapshot.
    pub written_by: Option<String>,
}

/// Puts the board under `root` back from the state file and deletes it once every file reads
/// back as it was (`edgetune restore`). Takes the board's lock first, so a live run's board is
/// not restored under it, unless `force`. Refuses a snapshot naming any file outside the
/// discovered cpufreq and devfreq directories.
pub fn restore_from_state(
    root: &Path,
    state_path: &Path,
    force: bool,
) -> Result<Restored, JetsonError> {
    let _owner = lock_unless_forced(state_path, force)?;
    let _writing = writes();
    restore_locked(root, state_path)
}

/// [`restore_from_state`] with the board's lock and the write guard held.
fn restore_locked(root: &Path, state_path: &Path) -> Result<Restored, JetsonError> {
    if !state_path.exists() {
        return Ok(Restored {
            state_path: state_path.to_path_buf(),
            found: false,
            files: Vec::new(),
            written_by: None,
        });
    }
    let snap = Snapshot::load(state_path)?;
    let mut disc = discover(root)?;
    // The memory clock's directory is allowed where the board has one (a run with --emc).
    disc.emc = discover_emc(&Sysfs::new(root)).ok();
    put_back(&mut disc.sysfs(), &snap, state_path)
}

/// Puts `snap`'s entries back through `fs` (allowed only where its backend writes: a snapshot
/// naming any other file is refused first), checks they read back, and deletes the state file.
pub fn put_back(
    fs: &mut Sysfs,
    snap: &Snapshot,
    state_path: &Path,
) -> Result<Restored, JetsonError> {
    snap.check(fs)?;
    if let Some(m) = snap.power_mode {
        put_mode_back(m)?;
    }
    restore_and_verify(fs, &snap.entries, state_path)?;
    remove_state(state_path)?;
    let mut files: Vec<PathBuf> = fs.log.iter().map(|(p, _)| p.clone()).collect();
    files.dedup();
    Ok(Restored {
        state_path: state_path.to_path_buf(),
        found: true,
        files,
        written_by: Some(snap.describe()),
    })
}

/// Switches the board back to power mode `m` where it is in another one.
pub fn put_mode_back(m: u32) -> Result<(), JetsonError> {
    if super::nvpmodel::query()? != m {
        super::nvpmodel::set(m)?;
    }
    Ok(())
}

/// The machine's lock for `edgetune restore`, unless `force` (a run that is stuck holds it).
pub fn lock_unless_forced(
    state_path: &Path,
    force: bool,
) -> Result<Option<BoardLock>, JetsonError> {
    match force {
        false => Ok(Some(BoardLock::take(state_path)?)),
        true => Ok(None),
    }
}

/// Refuses to take a machine whose state file an earlier run left: its clocks may still be
/// pinned, and `edgetune restore` puts them back.
pub fn refuse_stale(state_path: &Path) -> Result<(), JetsonError> {
    if !state_path.exists() {
        return Ok(());
    }
    Err(JetsonError::StaleSnapshot {
        path: state_path.to_path_buf(),
        what: Snapshot::load(state_path)
            .map(|s| s.describe())
            .unwrap_or_else(|e| e.to_string()),
    })
}

static EMERGENCY: Mutex<Option<(PathBuf, PathBuf)>> = Mutex::new(None);

/// Records which board and state file a second interrupt should restore at once.
pub fn register_emergency(root: &Path, state_path: &Path) {
    if let Ok(mut g) = EMERGENCY.lock() {
        *g = Some((root.to_path_buf(), state_path.to_path_buf()));
    }
}

/// The guard on every board write, held (see [`emergency_restore`]).
pub type WritesHeld = MutexGuard<'static, Vec<PathBuf>>;

/// For a second Ctrl-C while a run is still going: waits for a pin in flight, restores the
/// registered board, if any, and returns what it did with the write guard, which the caller
/// keeps until the process exits, so no write can start, or be cut short, in between.
pub fn emergency_restore() -> (Option<String>, WritesHeld) {
    let mut held = writes();
    let registered = EMERGENCY.lock().ok().and_then(|g| g.clone());
    let said = registered.map(|(root, state)| put_back_held(&root, &state, &mut held));
    (said, held)
}

/// Waits for a pin in flight to finish, restores the board from `state` (this process owns
/// it), and closes it: nothing is written to it again. Returns what it did.
pub fn put_back_for_good(root: &Path, state: &Path) -> String {
    put_back_held(root, state, &mut writes())
}

fn put_back_held(root: &Path, state: &Path, closed: &mut WritesHeld) -> String {
    let said = match restore_locked(root, state) {
        Ok(r) if r.found => format!("restored {} files from {}", r.files.len(), state.display()),
        Ok(_) => "nothing to restore".into(),
        Err(e) => format!("restoring failed: {e}; run `sudo edgetune restore`"),
    };
    closed.push(state.to_path_buf());
    said
}

impl Discovery {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_edgetune_counts_as_running() {
        // This test binary is edgetune's (its name starts so); pid 1 is not; pid_max is a pid
        // no process can have. (No child is spawned here: a fork in this test binary while the
        // board-lock test drops its lock keeps that lock alive in the child until it execs.)
        assert!(edgetune_running(std::process::id()));
        assert!(!edgetune_running(1));
        let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!edgetune_running(max));
    }
}
