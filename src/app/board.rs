//! The commands and checks that touch a real board: choosing the jetson backend, `devices` on a
//! board, `restore` and `apply`.

use super::options::{load_catalog, Common};
use crate::backend::jetson::live::{live, Live};
use crate::backend::jetson::snapshot::restore_from_state;
use crate::backend::jetson::{
    apply_and_keep, device_tree_model, discover, Discovery, JetsonDevice, JetsonError,
};
use crate::catalog::{Board, Catalog};
use crate::error::UsageError;
use crate::report::profile::Profile;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

pub use super::options::BoardOptions;

/// The error for `--backend jetson` where no catalogue board is found.
pub fn not_a_known_board(root: &Path, dt: Option<&str>, catalog: &Catalog) -> UsageError {
    UsageError(match dt {
        None => format!(
            "--backend jetson: not a Jetson ({} is missing); use --backend sim for the digital twin, or --sysfs-root for a board's files mounted elsewhere",
            root.join("proc/device-tree/model").display()
        ),
        Some(m) => format!(
            "this board (`{m}`) matches no search-spaces file ({}); add one for it (copy search-spaces/xavier-nx.toml, set detect_model and the frequency lists from `edgetune devices`) and pass --catalog, or name the closest board with --device",
            catalog.board_ids().join(", ")
        ),
    })
}

fn discover_or_explain(root: &Path) -> Result<Discovery> {
    discover(root).map_err(|e| match e {
        JetsonError::NotFound(m) => UsageError(format!("--backend jetson: {m}")).into(),
        e => anyhow::Error::new(e),
    })
}

/// The board for the jetson backend, with the frequency lists the board itself lists (they win
/// over the catalogue's), and what discovery found. Says on stderr what it is about to drive.
pub fn jetson_target(
    c: &Common,
    catalog: &Catalog,
    mut board: Board,
    detected: Option<&Board>,
    dt: Option<String>,
) -> Result<(Board, Discovery)> {
    let root = &c.board.sysfs_root;
    let mut disc = discover_or_explain(root)?;
    if c.board.emc {
        disc = disc.with_emc().map_err(|e| UsageError(e.to_string()))?;
    }
    match detected {
        Some(d) if d.board.id != board.board.id => {
            return Err(UsageError(format!(
            "--device {} was given, but this board is a {} (`{}`); leave --device out on the board",
            board.board.id,
            d.board.name,
            dt.unwrap_or_default()
        ))
            .into())
        }
        None => return Err(not_a_known_board(root, dt.as_deref(), catalog).into()),
        Some(_) => {}
    }
    super::torch::check_workload(
        c,
        &format!("the {}", board.board.name),
        ", or use --backend sim for the digital twin",
    )?;
    // The board's own lists: the CPU steps every policy offers, the GPU's steps.
    let mut cpu: Vec<u64> = disc.cpu[0].available_khz.clone();
    cpu.retain(|f| disc.cpu.iter().all(|p| p.available_khz.contains(f)));
    if cpu.is_empty() {
        return Err(anyhow::anyhow!(
            "the cpufreq policies share no frequency, so one CPU frequency cannot be set on all of them"
        ));
    }
    let notes = [
        (cpu != board.cpu.frequencies_khz).then(|| {
            format!(
                "the board lists {} CPU steps ({}-{} kHz), the catalogue {}; using the board's",
                cpu.len(),
                cpu[0],
                cpu[cpu.len() - 1],
                board.cpu.frequencies_khz.len()
            )
        }),
        (disc.gpu.available_hz != board.gpu.frequencies_hz).then(|| {
            format!(
                "the board lists {} GPU steps, the catalogue {}; using the board's",
                disc.gpu.available_hz.len(),
                board.gpu.frequencies_hz.len()
            )
        }),
        (disc.rails.total_name() != board.sensors.total_rail).then(|| {
            format!(
                "board power is {} here, the catalogue expects {}",
                disc.rails.total_name(),
                board.sensors.total_rail
            )
        }),
    ];
    board.cpu.frequencies_khz = cpu;
    board.gpu.frequencies_hz = disc.gpu.available_hz.clone();
    if let Some(e) = &disc.emc {
        board.emc = Some(crate::catalog::EmcSpec {
            frequencies_hz: emc_rates(&board, e.min_hz, e.max_hz)?,
        });
    }
    if !c.quiet {
        eprintln!(
            "note: measuring on this {} (`{}`, {}) through {}: {} cpufreq policies, GPU devfreq {}, power {}",
            board.board.name,
            disc.dt_model,
            disc.rails.driver.jetpack(),
            root.display(),
            disc.cpu.len(),
            disc.gpu.name,
            disc.rails.total_name()
        );
        for n in notes.into_iter().flatten() {
            eprintln!("note: {n}");
        }
    }
    Ok((board, disc))
}

/// The memory-clock rates for `--emc`: debugfs lists none, so the catalogue's, within the
/// board's limits.
fn emc_rates(board: &Board, min_hz: u64, max_hz: u64) -> Result<Vec<u64>> {
    let rates: Vec<u64> = board
        .emc
        .as_ref()
        .map(|s| s.frequencies_hz.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|f| (min_hz..=max_hz).contains(f))
        .collect();
    if rates.is_empty() {
        return Err(UsageError(format!(
            "--emc: {} lists no memory-clock rates within the board's limits {min_hz}-{max_hz} Hz; add them under [emc] frequencies_hz",
            board.file
        ))
        .into());
    }
    Ok(rates)
}

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
const PROFILE_KEYS: [&str; 11] = [
    "board",
    "model",
    "backend",
    "cpu_freq_khz",
    "gpu_freq_hz",
    "emc_freq_hz",
    "cpu_cores",
    "batch_size",
    "energy_j",
    "inferences",
    "saving_pct",
];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    profile: Profile,
}

/// `edgetune apply PROFILE`: pins the profile's clocks and leaves them pinned; the snapshot of
/// what the board was before stays for `edgetune restore`.
pub fn apply(
    catalog_dir: Option<&Path>,
    o: &BoardOptions,
    profile: &Path,
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
    // A knob at 0 was not searched (a replay table without its column, a GPU's CPU).
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
                "{} is a profile for board `{}`, but this board is a {}",
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
    Ok(())
}

fn jetson_err(e: JetsonError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        anyhow::Error::new(e)
    }
}
