//! The one rule for every file edgetune writes: never through a symbolic link, never into a
//! file another name also points at (a hard link). Reports, profiles, state files and
//! restore records are written whole to a new temporary file beside them and renamed into
//! place (a link at the path is replaced, its target untouched); files edgetune keeps open
//! (the board lock, a journal) are opened without following a link and must be plain files
//! of one name.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Writes `body` to `path` whole: into a new file beside it (created exclusively, so a link
/// placed at the temporary name is refused, not followed), flushed, then renamed over `path`.
pub fn write_replacing(path: &Path, body: &[u8]) -> io::Result<()> {
    if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Err(not_own("a folder is in the way"));
    }
    let tmp = temporary(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = f.write_all(body).and_then(|_| f.sync_all());
    let renamed = written.and_then(|_| std::fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Opens `path` with `options`, refusing a symbolic link (`O_NOFOLLOW`) and anything but a plain
/// file with one name.
pub fn open_own(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let f = options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                not_own("it is a symbolic link, and edgetune never writes through one")
            } else {
                e
            }
        })?;
    let m = f.metadata()?;
    if !m.is_file() || m.nlink() > 1 {
        return Err(not_own(
            "it is not a plain file of one name (a hard link, a device or a folder), and edgetune never writes into one",
        ));
    }
    Ok(f)
}

/// The error of a path edgetune refuses to write by this rule (what it is, for the message).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotOwnFile(&'static str);

fn not_own(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, NotOwnFile(why))
}

/// Whether `e` is this rule's refusal (the user's to fix), not a failure of the file system.
pub fn is_not_own(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotOwnFile>())
}

/// The temporary name `path` is written under: hidden, beside it, this process's.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_at_the_path_is_replaced_and_its_target_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        std::fs::write(&target, "mine").unwrap();
        let p = t.path().join("report.md");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        write_replacing(&p, b"report").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "report");
        assert!(!p.symlink_metadata().unwrap().file_type().is_symlink());
    }

    #[test]
    fn links_and_hard_links_are_never_opened_for_writing() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        std::fs::write(&target, "mine").unwrap();
        let soft = t.path().join("soft");
        std::os::unix::fs::symlink(&target, &soft).unwrap();
        let hard = t.path().join("hard");
        std::fs::hard_link(&target, &hard).unwrap();
        for p in [&soft, &hard] {
            let e = open_own(OpenOptions::new().write(true).create(true), p).unwrap_err();
            assert!(is_not_own(&e), "{}: {e}", p.display());
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
        let own = t.path().join("own");
        open_own(OpenOptions::new().write(true).create(true), &own).unwrap();
    }
}
