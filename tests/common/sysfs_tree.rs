//! Helpers shared by the tests that write to sysfs trees: a writable copy of a fixture, and a
//! comparison of whole trees that names what differs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A fixture tree under `tests/fixtures/`.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A writable copy of a fixture tree (the backend writes), links kept as links.
pub fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture_dir(name))
        .arg(&root)
        .status()
        .unwrap()
        .success();
    assert!(ok, "copying the fixture {name}");
    (t, root)
}

/// Every regular file under `root` (links not followed) with its content. A file that vanishes
/// while it is read (a live emulator renames its temporary files into place) is left out, and so
/// are edgetune's own lock files (`restore.lock`, which stays like dpkg's: not the board's).
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && e.path().extension().is_none_or(|x| x != "lock") {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    m.insert(e.path(), bytes);
                }
            }
        }
    }
    m
}

/// Asserts two trees are equal, naming the files that differ and how.
#[track_caller]
pub fn same(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) {
    let differ: Vec<_> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |m: &BTreeMap<PathBuf, Vec<u8>>| {
                m.get(k).map(|v| String::from_utf8_lossy(v).to_string())
            };
            format!("{}: {:?} vs {:?}", k.display(), show(a), show(b))
        })
        .collect();
    assert!(differ.is_empty(), "trees differ:\n{}", differ.join("\n"));
}
