//! One owner per board. A run that drives a board's clocks (`tune`, `apply`, `restore`) first
//! takes an advisory lock on a file beside the state file (`restore.lock`), holding it until it
//! exits; the kernel drops it when the process dies, even by SIGKILL. A second run is refused
//! with the owner's pid before it reads or writes anything, so two studies never share a board
//! and the one that finishes first never deletes the other's snapshot. Like dpkg's lock, the
//! file stays when its owner is gone (deleting lock files races with the next taker); what it
//! holds names the last owner.

use super::error::JetsonError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock, held while this value lives.
#[derive(Debug)]
pub struct BoardLock {
    /// Holding the open file holds the lock; the kernel drops it with the file.
    #[cfg_attr(not(test), allow(dead_code))]
    file: File,
}

/// The lock file for the state file `state_path`.
pub fn lock_path(state_path: &Path) -> PathBuf {
    state_path.with_extension("lock")
}

impl BoardLock {
    /// Takes the board, or says who has it ([`JetsonError::Busy`]).
    pub fn take(state_path: &Path) -> Result<BoardLock, JetsonError> {
        let path = lock_path(state_path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| JetsonError::io(dir, e))?;
        }
        // Never through a link: the lock is written (the owner's pid) once it is taken.
        let mut file = crate::files::open_own(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
            &path,
        )
        .map_err(|e| JetsonError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(JetsonError::Busy {
                    lock: path,
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(JetsonError::io(&path, e)),
        }
        // Who holds it, for the message the next run prints.
        let who = format!(
            "edgetune pid {} since {}",
            std::process::id(),
            chrono::Local::now().to_rfc3339()
        );
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(who.as_bytes()))
            .map_err(|e| JetsonError::io(&path, e))?;
        Ok(BoardLock { file })
    }

    /// Lets go as a killed process does: the kernel drops the lock.
    #[cfg(test)]
    pub(crate) fn leak_unlocked(self) {
        let _ = self.file.unlock();
        std::mem::forget(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_with_the_first_one_s_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("lib/restore.json");
        let first = BoardLock::take(&state).unwrap();
        let e = BoardLock::take(&state).unwrap_err();
        assert!(e.is_usage());
        let said = e.to_string();
        assert!(
            said.contains(&format!("pid {}", std::process::id())),
            "{said}"
        );
        drop(first);
        BoardLock::take(&state).unwrap();
    }
}
