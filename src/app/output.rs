//! Output folders and the files commands write into them.

use crate::error::UsageError;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A folder under `base` named `<stem>-<timestamp>` (or the timestamp alone) that does not
/// exist yet.
pub fn fresh_dir(base: &Path, stem: &str) -> PathBuf {
    let ts = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let first = match stem {
        "" => base.join(ts.to_string()),
        _ => base.join(format!("{stem}-{ts}")),
    };
    let mut p = first.clone();
    let mut k = 2;
    while p.exists() {
        p = PathBuf::from(format!("{}-{k}", first.display()));
        k += 1;
    }
    p
}

/// The output folder of a new study, sweep or bench: `--out` (which must not exist or be
/// empty, so nothing a user made is overwritten), or a fresh folder from `fresh`. Not created
/// yet: a command that is refused before it measures leaves nothing behind.
pub fn new_out_dir(out: Option<&Path>, fresh: impl FnOnce() -> PathBuf) -> Result<PathBuf> {
    let Some(dir) = out else {
        return Ok(fresh());
    };
    let holds = |name: &str| dir.join(name).exists();
    let non_empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if dir.exists() && !dir.is_dir() {
        return Err(UsageError(format!(
            "--out {} is a file, not a folder; choose another --out",
            dir.display()
        ))
        .into());
    }
    if non_empty {
        let what = if holds("journal.jsonl") {
            format!(
                "holds a study (journal.jsonl): continue it with --resume {}, or choose another --out",
                dir.display()
            )
        } else {
            "is not empty, and edgetune never writes over files it did not make: choose a new or empty --out".into()
        };
        return Err(UsageError(format!("--out {} {what}", dir.display())).into());
    }
    Ok(dir.to_path_buf())
}

/// Creates the output folder, or says to choose another.
pub fn create_dir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| {
        UsageError(format!(
            "cannot create the output folder {}: {e}; choose another with --out",
            p.display()
        ))
        .into()
    })
}

/// Writes `body` to `dir/name`, never through a link placed there ([`crate::files`]).
pub fn write_file(dir: &Path, name: &str, body: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    crate::files::write_replacing(&p, body.as_bytes())
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(p)
}

/// Writes `value` as pretty JSON to `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &impl serde::Serialize) -> Result<PathBuf> {
    write_file(dir, name, &serde_json::to_string_pretty(value)?)
}
