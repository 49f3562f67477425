//! `edgetune apply --persist`: a profile that survives a reboot. A systemd unit runs `edgetune
//! apply` on the profile's copy at every boot (after nvpmodel has set its mode), enabled the way
//! `systemctl enable` does it (a link in `multi-user.target.wants`); `edgetune restore` removes
//! the three again. Only files edgetune wrote are replaced or removed: each carries a mark.

use super::error::JetsonError;
use std::path::{Path, PathBuf};

/// The unit, under the board's root.
pub const UNIT: &str = "etc/systemd/system/edgetune-profile.service";
/// Its enabling link.
pub const WANTS: &str = "etc/systemd/system/multi-user.target.wants/edgetune-profile.service";
/// The profile's copy the unit applies.
pub const PROFILE: &str = "etc/edgetune/profile.toml";
/// The line that says a file is edgetune's.
const MARK: &str = "# Written by `edgetune apply --persist`; `edgetune restore` removes it.";

/// What `install` wrote, for the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Persisted {
    /// The unit file.
    pub unit: PathBuf,
    /// The profile's copy.
    pub profile: PathBuf,
}

/// Whether the file at `path` is edgetune's (holds the mark), or absent.
fn ours_or_absent(path: &Path) -> Result<bool, JetsonError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(JetsonError::io(path, e)),
        Ok(m) if !m.is_file() => Ok(false),
        Ok(_) => Ok(std::fs::read_to_string(path)
            .map_err(|e| JetsonError::io(path, e))?
            .lines()
            .any(|l| l == MARK)),
    }
}

/// The unit's text: `edgetune` (the program at `exe`) applying the profile's copy at boot.
pub fn unit_text(exe: &Path, description: &str) -> String {
    let quote = |p: &str| shlex::try_quote(p).map_or_else(|_| p.to_string(), |q| q.into_owned());
    let line = |s: &str| s.replace(char::is_control, " ");
    format!(
        "{MARK}\n[Unit]\nDescription=edgetune profile: {}\nAfter=nvpmodel.service\n\n[Service]\nType=oneshot\nExecStart={} apply /{PROFILE}\n\n[Install]\nWantedBy=multi-user.target\n",
        line(description),
        quote(&exe.display().to_string())
    )
}

/// Writes the unit, the profile's copy (`profile`, the profile file's text) and the enabling
/// link under `root`. Refuses (changing nothing) where one of them is a file edgetune did not
/// write.
pub fn install(
    root: &Path,
    profile: &str,
    exe: &Path,
    description: &str,
) -> Result<Persisted, JetsonError> {
    check(root)?;
    let (unit, copy, wants) = (root.join(UNIT), root.join(PROFILE), root.join(WANTS));
    for p in [&unit, &copy, &wants] {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| JetsonError::io(dir, e))?;
        }
    }
    let write = |p: &Path, body: String| {
        crate::files::write_replacing(p, body.as_bytes()).map_err(|e| JetsonError::io(p, e))
    };
    write(&copy, format!("{MARK}\n{profile}"))?;
    write(&unit, unit_text(exe, description))?;
    let _ = std::fs::remove_file(&wants);
    std::os::unix::fs::symlink("../edgetune-profile.service", &wants)
        .map_err(|e| JetsonError::io(&wants, e))?;
    Ok(Persisted {
        unit,
        profile: copy,
    })
}

/// Refuses where a file `install` would write is one edgetune did not make.
pub fn check(root: &Path) -> Result<(), JetsonError> {
    let (unit, copy, wants) = (root.join(UNIT), root.join(PROFILE), root.join(WANTS));
    for p in [&unit, &copy] {
        if !ours_or_absent(p)? {
            return Err(JetsonError::Unsupported(format!(
                "{} is not edgetune's (it lacks the line `{MARK}`): edgetune never writes over a file it did not make; move it away to persist a profile",
                p.display()
            )));
        }
    }
    if std::fs::symlink_metadata(&wants).is_ok_and(|m| !m.file_type().is_symlink()) {
        return Err(JetsonError::Unsupported(format!(
            "{} is not the link `systemctl enable` makes; move it away to persist a profile",
            wants.display()
        )));
    }
    Ok(())
}

/// Removes what `install` wrote under `root` (edgetune's files only); returns what it removed.
pub fn remove(root: &Path) -> Result<Vec<PathBuf>, JetsonError> {
    let mut removed = Vec::new();
    let wants = root.join(WANTS);
    if std::fs::symlink_metadata(&wants).is_ok_and(|m| m.file_type().is_symlink())
        && ours_or_absent(&root.join(UNIT))?
    {
        std::fs::remove_file(&wants).map_err(|e| JetsonError::io(&wants, e))?;
        removed.push(wants);
    }
    for p in [root.join(UNIT), root.join(PROFILE)] {
        if p.exists() && ours_or_absent(&p)? {
            std::fs::remove_file(&p).map_err(|e| JetsonError::io(&p, e))?;
            removed.push(p);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_then_remove_leaves_nothing_and_never_takes_a_users_file() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let p = install(
            r,
            "[profile]\n",
            Path::new("/usr/local/bin/edge tune"),
            "m on b",
        )
        .unwrap();
        let unit = std::fs::read_to_string(&p.unit).unwrap();
        assert!(
            unit.contains("ExecStart='/usr/local/bin/edge tune' apply /etc/edgetune/profile.toml"),
            "{unit}"
        );
        assert_eq!(
            std::fs::read_link(r.join(WANTS)).unwrap(),
            Path::new("../edgetune-profile.service")
        );
        // Again: replaces its own files.
        install(r, "[profile]\n", Path::new("/bin/edgetune"), "m on b").unwrap();
        assert_eq!(remove(r).unwrap().len(), 3);
        assert!(!r.join(UNIT).exists() && r.join(WANTS).symlink_metadata().is_err());
        // A unit of the user's is neither overwritten nor removed.
        std::fs::write(r.join(UNIT), "[Unit]\n").unwrap();
        assert!(install(r, "[profile]\n", Path::new("/bin/edgetune"), "x").is_err());
        assert!(remove(r).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(r.join(UNIT)).unwrap(), "[Unit]\n");
    }
}
