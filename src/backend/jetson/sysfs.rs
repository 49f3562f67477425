//! Reading and writing sysfs files under a root folder (`/` on a board, a fixture tree in tests),
//! with every write confined to the directories discovery allowed.

use super::error::JetsonError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Files under a root, with a list of directories that may be written.
#[derive(Debug, Clone)]
pub struct Sysfs {
    root: PathBuf,
    allowed: Vec<PathBuf>,
    /// Every write made, in order: (path, value).
    pub log: Vec<(PathBuf, String)>,
}

#[cfg(test)]
thread_local! {
    /// Test seam: opening this file for writing fails with "permission denied", as it does for
    /// a user who is not root (tests run as root here, where a read-only mode does not stop a
    /// write).
    pub static DENY: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

impl Sysfs {
    /// Files under `root`; nothing may be written until [`Sysfs::allow`] is called.
    pub fn new(root: &Path) -> Sysfs {
        Sysfs {
            root: root.to_path_buf(),
            allowed: Vec::new(),
            log: Vec::new(),
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` (an absolute board path such as `/sys/class/devfreq`) under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Allows writes to files inside `dir` (symbolic links resolved).
    pub fn allow(&mut self, dir: &Path) {
        let d = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if !self.allowed.contains(&d) {
            self.allowed.push(d);
        }
    }

    /// Whether `path` lies inside an allowed directory and, links resolved, inside the root
    /// (on a real board, whose root is `/`, inside `/sys`): a policy or devfreq folder linked
    /// to somewhere else is not the board's.
    pub fn is_allowed(&self, path: &Path) -> bool {
        let Ok(real) = std::fs::canonicalize(path) else {
            return false;
        };
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        let inside = match root == Path::new("/") {
            true => real.starts_with("/sys"),
            false => real.starts_with(&root),
        };
        inside && self.allowed.iter().any(|d| real.starts_with(d))
    }

    /// The file's content, trimmed.
    pub fn read(&self, path: &Path) -> Result<String, JetsonError> {
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .map_err(|e| JetsonError::io(path, e))
    }

    /// The file's content as an unsigned integer.
    pub fn read_u64(&self, path: &Path) -> Result<u64, JetsonError> {
        let s = self.read(path)?;
        s.parse().map_err(|_| JetsonError::Garbage {
            path: path.to_path_buf(),
            value: s,
        })
    }

    /// A space-separated list of unsigned integers, sorted ascending.
    pub fn read_list(&self, path: &Path) -> Result<Vec<u64>, JetsonError> {
        let s = self.read(path)?;
        let mut v = s
            .split_whitespace()
            .map(|w| w.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| JetsonError::Garbage {
                path: path.to_path_buf(),
                value: s.clone(),
            })?;
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    fn check_allowed(&self, path: &Path) -> Result<(), JetsonError> {
        if self.is_allowed(path) {
            Ok(())
        } else {
            Err(JetsonError::Forbidden(path.to_path_buf()))
        }
    }

    /// Checks that `path` may be written and can be opened for writing, without writing.
    pub fn check_writable(&self, path: &Path) -> Result<(), JetsonError> {
        self.check_allowed(path)?;
        // A hard link would carry the write to its other names (sysfs files have one).
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(path).is_ok_and(|m| m.nlink() > 1) {
            return Err(JetsonError::Linked(path.to_path_buf()));
        }
        #[cfg(test)]
        if DENY.with(|d| d.borrow().as_deref() == Some(path)) {
            return Err(JetsonError::io(
                path,
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            ));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map(|_| ())
            .map_err(|e| JetsonError::io(path, e))
    }

    /// Writes `value` to an existing file (sysfs files are never created).
    pub fn write(&mut self, path: &Path, value: &str) -> Result<(), JetsonError> {
        self.check_writable(path)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| JetsonError::io(path, e))?;
        // One write with a newline, as `echo value > file` does.
        f.write_all(format!("{value}\n").as_bytes())
            .map_err(|e| JetsonError::io(path, e))?;
        self.log.push((path.to_path_buf(), value.to_string()));
        Ok(())
    }

    /// Sets a `[min, max]` pair of limit files to `[lo, hi]` in the order that never leaves
    /// min above max in between (the kernel refuses such a write).
    pub fn write_range(
        &mut self,
        min_path: &Path,
        max_path: &Path,
        lo: u64,
        hi: u64,
    ) -> Result<(), JetsonError> {
        let cur_max = self.read_u64(max_path)?;
        if lo <= cur_max {
            self.write(min_path, &lo.to_string())?;
            self.write(max_path, &hi.to_string())
        } else {
            self.write(max_path, &hi.to_string())?;
            self.write(min_path, &lo.to_string())
        }
    }
}

/// Sub-directories of `dir` whose names satisfy `keep`, sorted by name.
pub fn subdirs(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort_by_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    v
}

/// Sort key that orders `cpu10` after `cpu9`.
fn natural_key(name: &str) -> (String, u64) {
    let digits: String = name
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let stem = name[..name.len() - digits.len()].to_string();
    (stem, digits.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_outside_allowed_directories_are_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        std::fs::write(t.path().join("a/f"), "1").unwrap();
        std::fs::write(t.path().join("g"), "1").unwrap();
        let mut s = Sysfs::new(t.path());
        s.allow(&t.path().join("a"));
        s.write(&t.path().join("a/f"), "2").unwrap();
        assert_eq!(s.read(&t.path().join("a/f")).unwrap(), "2");
        let e = s.write(&t.path().join("g"), "2").unwrap_err();
        assert!(matches!(e, JetsonError::Forbidden(_)), "{e}");
        // `..` does not escape either.
        let e = s.write(&t.path().join("a/../g"), "2").unwrap_err();
        assert!(matches!(e, JetsonError::Forbidden(_)), "{e}");
        assert_eq!(s.read(&t.path().join("g")).unwrap(), "1");
        // Files are never created.
        assert!(s.write(&t.path().join("a/new"), "1").is_err());
        assert!(!t.path().join("a/new").exists());
    }

    #[test]
    fn ranges_are_written_in_the_order_that_keeps_min_at_most_max() {
        let t = tempfile::tempdir().unwrap();
        let (lo, hi) = (t.path().join("min"), t.path().join("max"));
        let mut s = Sysfs::new(t.path());
        s.allow(t.path());
        for (start, target) in [
            ((100, 200), (300, 300)),
            ((100, 200), (50, 50)),
            ((150, 150), (100, 200)),
            ((300, 300), (100, 200)),
            ((100, 100), (250, 400)),
        ] {
            std::fs::write(&lo, start.0.to_string()).unwrap();
            std::fs::write(&hi, start.1.to_string()).unwrap();
            s.log.clear();
            s.write_range(&lo, &hi, target.0, target.1).unwrap();
            // Replay the writes and check min <= max after each.
            let (mut a, mut b) = start;
            for (p, v) in &s.log {
                if p == &lo {
                    a = v.parse().unwrap();
                } else {
                    b = v.parse().unwrap();
                }
                assert!(a <= b, "{start:?} -> {target:?}: min {a} > max {b}");
            }
            assert_eq!((a, b), target);
        }
    }

    #[test]
    fn garbage_in_a_number_file_is_reported_with_its_path() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "12a\n").unwrap();
        let e = Sysfs::new(t.path())
            .read_u64(&t.path().join("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("12a") && e.contains("/f"), "{e}");
    }
}
