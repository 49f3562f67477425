//! nvpmodel power modes on a board: the modes its `/etc/nvpmodel.conf` defines, the mode now
//! (`nvpmodel -q`), and switching modes (`nvpmodel -m N`, which writes the mode's caps itself).
//! The program is `nvpmodel` on the PATH unless the command line names another
//! (`--nvpmodel CMD`, a fake one on fixture trees): never one a stored file names.

use super::error::JetsonError;
use crate::opt::Opt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One mode nvpmodel.conf defines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModeDef {
    /// Its id (`nvpmodel -m ID`).
    pub id: u32,
    /// Its name (`MODE_15W_6CORE`).
    pub name: String,
}

/// The board's nvpmodel.conf under `root`.
pub fn conf_path(root: &Path) -> PathBuf {
    root.join("etc/nvpmodel.conf")
}

/// The modes `conf` defines (`< POWER_MODEL ID=n NAME=x >` lines), in id order.
pub fn parse_modes(conf: &str) -> Vec<ModeDef> {
    let mut modes: Vec<ModeDef> = conf
        .lines()
        .filter_map(|l| {
            let inner = l.trim().strip_prefix('<')?.strip_suffix('>')?;
            let mut words = inner.split_whitespace();
            (words.next()? == "POWER_MODEL").then_some(())?;
            let field = |key: &str| {
                inner
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_string)
            };
            Some(ModeDef {
                id: field("ID=")?.parse().ok()?,
                name: field("NAME=").unwrap_or_default(),
            })
        })
        .collect();
    modes.sort_by_key(|m| m.id);
    modes.dedup_by_key(|m| m.id);
    modes
}

/// The modes of the board under `root`.
pub fn modes(root: &Path) -> Result<Vec<ModeDef>, JetsonError> {
    let path = conf_path(root);
    let text = std::fs::read_to_string(&path).map_err(|e| JetsonError::io(&path, e))?;
    let modes = parse_modes(&text);
    if modes.is_empty() {
        return Err(JetsonError::NotFound(format!(
            "{} defines no POWER_MODEL",
            path.display()
        )));
    }
    Ok(modes)
}

static COMMAND: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Sets the nvpmodel program for this process (`--nvpmodel`), split as a shell would split it.
pub fn use_command(cmd: &str) -> Result<(), JetsonError> {
    let argv = shlex::split(cmd).filter(|v| !v.is_empty()).ok_or_else(|| {
        JetsonError::Unsupported(format!("{} `{cmd}`: not a command", Opt::Nvpmodel))
    })?;
    *COMMAND.lock().unwrap_or_else(|e| e.into_inner()) = Some(argv);
    Ok(())
}

fn run(args: &[&str]) -> Result<String, JetsonError> {
    let argv = COMMAND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| vec!["nvpmodel".into()]);
    let shown = format!("{} {}", argv.join(" "), args.join(" "));
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .args(args)
        .output()
        .map_err(|e| {
            JetsonError::Unsupported(format!(
                "running `{shown}`: {e} (JetPack's nvpmodel; {} names another)",
                Opt::Nvpmodel
            ))
        })?;
    if !out.status.success() {
        return Err(JetsonError::Unsupported(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The mode now (`nvpmodel -q`: its last line is the id).
pub fn query() -> Result<u32, JetsonError> {
    let out = run(&["-q"])?;
    out.lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .ok_or_else(|| {
            JetsonError::Unsupported(format!(
                "`nvpmodel -q` printed no mode id: `{}`",
                out.trim()
            ))
        })
}

/// Switches to mode `id` (`nvpmodel -m ID`).
pub fn set(id: u32) -> Result<(), JetsonError> {
    run(&["-m", &id.to_string()]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_read_from_power_model_lines() {
        let conf = "< PARAM TYPE=CLOCK NAME=GPU >\nMAX_FREQ /sys/x\n\
                    < POWER_MODEL ID=1 NAME=5W >\nGPU MAX_FREQ 640000000\n\
                    < POWER_MODEL ID=0 NAME=MAXN >\nGPU MAX_FREQ -1\n< PM_CONFIG DEFAULT=0 >\n";
        let m = parse_modes(conf);
        assert_eq!(
            m,
            [
                ModeDef {
                    id: 0,
                    name: "MAXN".into()
                },
                ModeDef {
                    id: 1,
                    name: "5W".into()
                }
            ]
        );
        assert!(parse_modes("< PM_CONFIG DEFAULT=0 >").is_empty());
    }
}
