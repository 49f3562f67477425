//! What can go wrong with a board's files, in words that say what to do.

use crate::device::DeviceError;
use crate::opt::Opt;
use std::path::{Path, PathBuf};
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
    #[error("a snapshot of the board's clocks from an earlier edgetune run is still at {path} ({what}); the board may still be pinned. Run `sudo edgetune restore` first (add {root}/{state} as you used them)", root = Opt::SysfsRoot, state = Opt::StateFile)]
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
