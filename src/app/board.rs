//! The commands and checks that touch a real board: choosing the jetson backend, `devices` on a
//! board, `restore` and `apply`.

use super::options::load_catalog;
use crate::backend::jetson::live::{live, Live};
use crate::backend::jetson::persist;
use crate::backend::jetson::rig::{discover_or_explain, not_a_known_board};
use crate::backend::jetson::snapshot::Snapshot;
use crate::backend::jetson::{
    apply_and_keep, device_tree_model, discover, JetsonDevice, JetsonError,
};
use crate::catalog::Catalog;
use crate::device::BackendKind;
use crate::error::UsageError;
use crate::report::profile::Profile;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

pub use super::options::BoardOptions;

/// The board under `o.sysfs_root`, if it is one. A root given explicitly must hold a board.
pub fn live_board(o: &BoardOptions, catalog: &Catalog, explicit: bool) -> Result<Option<Live>> {
    match discover(&o.sysfs_root) {
        Ok(d) => Ok(Some(live(&d, catalog, &o.state_path()))),
        Err(e) if explicit => {
            Err(UsageError(format!("--sysfs-root {}: {e}", o.sysfs_root.display())).into())
        }
        Err(_) => Ok(None),
    }
}

/// `edgetune restore`: puts the board back from the snapshot and deletes it.
pub fn restore(o: &BoardOptions, json: bool, out: &mut dyn Write) -> Result<()> {
    let state = o.state_path();
    // GPU clocks an NVML run left locked come first: that needs no board.
    let record = crate::backend::nvml::record_path(&state);
    if record.exists() {
        let mut api = crate::backend::nvml::load().map_err(|e| UsageError(e.to_string()))?;
        let rec = crate::backend::nvml::restore_from_record(api.as_mut(), &record)?
            .expect("the record exists");
        if json {
            writeln!(out, "{}", serde_json::json!({"found": true, "nvml": rec}))?;
        } else {
            writeln!(
                out,
                "reset the locked clocks of GPU {} ({}) from {}; the record is deleted",
                rec.gpu,
                rec.name,
                record.display()
            )?;
        }
        if !state.exists() {
            return Ok(());
        }
    }
    // The snapshot says whose it is (a Jetson's where it does not say); a snapshot that does
    // not load is the Jetson restore's to report.
    let whose = Snapshot::load(&state)
        .ok()
        .and_then(|s| s.backend)
        .unwrap_or(BackendKind::Jetson);
    // A run that switched power modes is put back through this nvpmodel (the command line's,
    // never one a file names).
    if let Some(cmd) = &o.nvpmodel {
        crate::backend::jetson::nvpmodel::use_command(cmd)
            .map_err(|e| UsageError(e.to_string()))?;
    }
    let restore_from_state = crate::backend::entry(whose)
        .restore_from_state
        .ok_or_else(|| {
            UsageError(format!(
                "{} names the {whose} backend, which keeps no state file: it was not written by edgetune; delete it",
                state.display()
            ))
        })?;
    let r = restore_from_state(&o.sysfs_root, &state, o.force).map_err(|e| -> anyhow::Error {
        if let JetsonError::Busy { .. } = e {
            return UsageError(format!(
                "{e}. `edgetune restore --force` restores anyway, for a run that is stuck"
            ))
            .into();
        }
        if e.is_usage() {
            UsageError(e.to_string()).into()
        } else {
            anyhow::Error::new(e).context(format!("restoring from {}", state.display()))
        }
    })?;
    // A persisted profile goes with the clocks it pinned.
    let unpersisted = persist::remove(&o.sysfs_root).map_err(jetson_err)?;
    if !json && !unpersisted.is_empty() {
        writeln!(
            out,
            "removed the profile applied at boot ({})",
            unpersisted
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
    } else if r.found {
        writeln!(
            out,
            "restored {} files from {} ({}); the snapshot is deleted",
            r.files.len(),
            state.display(),
            r.written_by.as_deref().unwrap_or("")
        )?;
    } else {
        writeln!(
            out,
            "nothing to restore: no snapshot at {}",
            state.display()
        )?;
    }
    Ok(())
}

/// The keys `[profile]` may hold.
const PROFILE_KEYS: [&str; 12] = [
    "board",
    "model",
    "backend",
    "cpu_freq_khz",
    "gpu_freq_hz",
    "emc_freq_hz",
    "cpu_cores",
    "batch_size",
    "power_mode",
    "energy_j",
    "inferences",
    "saving_pct",
];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    profile: Profile,
}

/// A profile `apply` cannot pin: a power mode (nvpmodel selects it), or a clock the study did
/// not search (a replay table without its column, a GPU's CPU).
fn refuse_unsettable(p: &Profile, profile: &Path) -> Result<()> {
    if let Some(m) = p.config.power_mode {
        return Err(UsageError(format!(
            "{} selects nvpmodel power mode {m}: run `sudo nvpmodel -m {m}` (or its apply-profile.sh); `edgetune apply` pins clocks",
            profile.display()
        ))
        .into());
    }
    if let Some(which) = [
        (p.config.cpu_freq_khz, "CPU"),
        (p.config.gpu_freq_hz, "GPU"),
    ]
    .iter()
    .find_map(|(v, w)| (*v == 0).then_some(*w))
    {
        return Err(UsageError(format!(
            "{} sets no {which} clock (the study did not search it), and `edgetune apply` pins both; set that clock yourself, or tune with both knobs",
            profile.display()
        ))
        .into());
    }
    Ok(())
}

/// `edgetune apply PROFILE`: pins the profile's clocks and leaves them pinned; the snapshot of
/// what the board was before stays for `edgetune restore`.
pub fn apply(
    catalog_dir: Option<&Path>,
    o: &BoardOptions,
    profile: &Path,
    persist: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let text = std::fs::read_to_string(profile).map_err(|e| {
        UsageError(format!(
            "cannot read the profile {}: {e}",
            profile.display()
        ))
    })?;
    let not_a_profile = |e: String| {
        UsageError(format!(
            "{} is not an edgetune profile: {e}",
            profile.display()
        ))
    };
    let p = toml::from_str::<ProfileFile>(&text)
        .map_err(|e| not_a_profile(e.to_string()))?
        .profile;
    // Profile flattens its configuration, which serde cannot combine with deny_unknown_fields:
    // the keys are checked here (a misspelt key must not be silently ignored).
    let table: toml::Table = toml::from_str(&text).map_err(|e| not_a_profile(e.to_string()))?;
    if let Some(t) = table.get("profile").and_then(|v| v.as_table()) {
        if let Some(k) = t.keys().find(|k| !PROFILE_KEYS.contains(&k.as_str())) {
            return Err(not_a_profile(format!(
                "unknown key `{k}` in [profile]; the keys are {}",
                PROFILE_KEYS.join(", ")
            ))
            .into());
        }
    }
    refuse_unsettable(&p, profile)?;
    let catalog = load_catalog(catalog_dir)?;
    let dt = device_tree_model(&o.sysfs_root);
    let here = catalog.detect(dt.as_deref());
    match here {
        None => return Err(not_a_known_board(&o.sysfs_root, dt.as_deref(), &catalog).into()),
        Some(b)
            if catalog.board(&p.board).map(|x| x.board.id.clone()).ok()
                != Some(b.board.id.clone()) =>
        {
            return Err(UsageError(format!(
                "{} is a profile for board `{}`, but this board is the {}",
                profile.display(),
                p.board,
                b.board.name
            ))
            .into())
        }
        Some(_) => {}
    }
    let mut disc = discover_or_explain(&o.sysfs_root)?;
    if p.config.emc_freq_hz.is_some() {
        disc = disc.with_emc().map_err(|e| UsageError(e.to_string()))?;
    }
    let state = o.state_path();
    if persist {
        // Before any pin: a unit of the user's in the way changes nothing.
        persist::check(&o.sysfs_root).map_err(jetson_err)?;
    }
    let dev = JetsonDevice::open_keeping(disc, &state).map_err(jetson_err)?;
    let notes = apply_and_keep(
        dev,
        p.config.cpu_freq_khz,
        p.config.gpu_freq_hz,
        p.config.emc_freq_hz,
    )
    .map_err(jetson_err)?;
    writeln!(
        out,
        "applied {}: CPU {} kHz, GPU {} Hz{} (batch size {} is for your program to use). The clocks stay pinned; `sudo edgetune restore` puts back what was there before (snapshot at {})",
        profile.display(),
        p.config.cpu_freq_khz,
        p.config.gpu_freq_hz,
        p.config.emc_freq_hz.map_or(String::new(), |f| format!(", memory {f} Hz")),
        p.config.batch_size,
        state.display()
    )?;
    for n in notes {
        eprintln!("note: {n}");
    }
    if persist {
        persist_profile(o, &p, &text, out)?;
    }
    Ok(())
}

/// `apply --persist`: the unit that applies the profile's copy at every boot.
fn persist_profile(o: &BoardOptions, p: &Profile, text: &str, out: &mut dyn Write) -> Result<()> {
    let exe = std::env::current_exe().context("finding this edgetune to run at boot")?;
    let what = format!(
        "{} on {} (CPU {} kHz, GPU {} Hz)",
        p.model, p.board, p.config.cpu_freq_khz, p.config.gpu_freq_hz
    );
    let done = persist::install(&o.sysfs_root, text, &exe, &what).map_err(jetson_err)?;
    writeln!(
        out,
        "persisted: {} applies {} at every boot (enabled); `sudo edgetune restore` removes it",
        done.unit.display(),
        done.profile.display()
    )?;
    Ok(())
}

fn jetson_err(e: JetsonError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        anyhow::Error::new(e)
    }
}
