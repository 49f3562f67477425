//! The jetson backend's registry entry and rig: a catalogue board (named, or detected through
//! the device tree) measured through sysfs, with the frequency lists the board itself lists.

use super::{device_tree_model, discover, Discovery, JetsonDevice, JetsonError};
use crate::backend::request::Common;
use crate::backend::rig::{
    check_workload, Entry, Flag, RealWorkload, Refusal, Request, Resolved, Rig, Words,
};
use crate::catalog::{Board, Catalog, Model};
use crate::device::{BackendKind, Device};
use crate::opt::Opt;
use crate::space::{top_corner, Axis, Knob, Space};
use crate::workload::Workload;
use anyhow::Result;
use std::path::Path;

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    kind: BackendKind::Jetson,
    help: "A real Jetson through sysfs (runs --workload-cmd, or the built-in model with the `torch` feature)",
    words: Words {
        heading: "measured on the board",
        provenance: "measured on the board",
        disclaimer: None,
        simulated: false,
    },
    takes: &[
        Flag::Emc,
        Flag::WorkloadCmd,
        Flag::Torchscript,
        Flag::PowerModes,
    ],
    min_window_s: 0.0,
    resolve,
    emergency_restore: restore_now,
    restore_from_state: Some(super::snapshot::restore_from_state),
};

fn restore_now() -> (Option<String>, crate::backend::rig::Held) {
    let (said, held) = super::snapshot::emergency_restore();
    (said, Box::new(held))
}

/// The board a board backend (this one, or the twin) measures: named by `--device` or detected
/// here; with the board detected and the device tree's model.
pub struct BoardChoice {
    /// The catalogue board.
    pub board: Board,
    /// The catalogue board detected under the sysfs root.
    pub detected: Option<Board>,
    /// The device tree's model under the sysfs root.
    pub dt: Option<String>,
}

/// Chooses the board of `r`: `--device`, else the one detected (else says what is missing).
pub fn choose_board(r: &Request) -> Result<BoardChoice> {
    let (c, catalog) = (r.c, r.catalog);
    let dt = device_tree_model(&c.board.sysfs_root);
    let detected = catalog.detect(dt.as_deref()).cloned();
    let board = match (&c.device, &detected) {
        (Some(d), _) => catalog.board(d)?.clone(),
        (None, Some(b)) => b.clone(),
        // On a board the catalogue does not know (or asked for the board): say what is missing.
        (None, None) if c.backend == Some(BackendKind::Jetson) || dt.is_some() => {
            return Err(not_a_known_board(&c.board.sysfs_root, dt.as_deref(), catalog).into())
        }
        (None, None) => {
            return Err(Refusal(format!(
                "no Jetson detected here, so name the board to simulate with {} ({})",
                Opt::Device,
                catalog.board_ids().join(", ")
            ))
            .into())
        }
    };
    Ok(BoardChoice {
        board,
        detected,
        dt,
    })
}

/// The board when asked for, or (`--backend auto`) when running on it or with a real workload
/// where a device tree names a board.
fn resolve(r: &Request) -> Resolved {
    let c = r.c;
    if !matches!(c.backend, None | Some(BackendKind::Jetson)) {
        return Ok(None);
    }
    let model = r.catalog.model_or_own(&c.model, c.brings_workload())?;
    let ch = choose_board(r)?;
    let on_board = ch.detected.as_ref().map(|b| b.board.id.as_str()) == Some(&ch.board.board.id);
    let real_workload_on_a_board = c.workload_cmd.is_some() && ch.dt.is_some();
    if c.backend.is_none() && !on_board && !real_workload_on_a_board {
        return Ok(None);
    }
    let (board, discovery, mut notes) =
        jetson_target(c, r.catalog, ch.board, ch.detected.as_ref(), ch.dt)?;
    let (discovery, power_modes) = power_modes(c, discovery, &mut notes)?;
    Ok(Some(Box::new(JetsonRig {
        board,
        model,
        discovery,
        notes,
        power_modes,
    })))
}

/// `--power-modes`: the board's nvpmodel modes (all, or the ids given, each checked against
/// its nvpmodel.conf) as the knob, with the nvpmodel program to switch them.
fn power_modes(
    c: &Common,
    disc: Discovery,
    notes: &mut Vec<String>,
) -> Result<(Discovery, Option<Vec<u32>>)> {
    let Some(asked) = &c.board.power_modes else {
        return Ok((disc, None));
    };
    if c.board.emc {
        return Err(Refusal(format!(
            "{} and {} are two ways to set the clocks: a power mode sets the memory clock's cap itself",
            Opt::PowerModes,
            Opt::Emc
        ))
        .into());
    }
    let asked = crate::space::parse_mode_list(asked).map_err(|e| Refusal(e.to_string()))?;
    if let Some(cmd) = &c.board.nvpmodel {
        super::nvpmodel::use_command(cmd).map_err(|e| Refusal(e.to_string()))?;
    }
    let disc = disc.with_power_modes().map_err(|e| {
        Refusal(format!(
            "{}: {e} (JetPack keeps the board's modes in /etc/nvpmodel.conf)",
            Opt::PowerModes
        ))
    })?;
    let defined = disc.power_modes.clone().unwrap_or_default();
    let ids: Vec<u32> = match asked {
        None => defined.iter().map(|m| m.id).collect(),
        Some(ids) => ids,
    };
    if let Some(bad) = ids.iter().find(|id| !defined.iter().any(|m| m.id == **id)) {
        let list: Vec<String> = defined
            .iter()
            .map(|m| format!("{} {}", m.id, m.name))
            .collect();
        return Err(Refusal(format!(
            "power mode {bad} is not one of this board's ({})",
            list.join(", ")
        ))
        .into());
    }
    let names: Vec<String> = defined
        .iter()
        .filter(|m| ids.contains(&m.id))
        .map(|m| format!("{} {}", m.id, m.name))
        .collect();
    notes.push(format!(
        "searching nvpmodel power modes ({}) x batch sizes: each mode's caps with the governors running within them, no clock pinned; the mode found is put back",
        names.join(", ")
    ));
    Ok((disc, Some(ids)))
}

/// A real Jetson through sysfs.
struct JetsonRig {
    /// The catalogue board, with the frequency lists the board itself lists.
    board: Board,
    model: Model,
    /// What discovery found under the sysfs root.
    discovery: Discovery,
    /// What it is about to drive, and where the board's lists differ from the catalogue's.
    notes: Vec<String>,
    /// The power modes searched (`--power-modes`), else `None`: pinned clocks.
    power_modes: Option<Vec<u32>>,
}

impl Rig for JetsonRig {
    fn kind(&self) -> BackendKind {
        BackendKind::Jetson
    }
    fn model_id(&self) -> &str {
        self.model.id()
    }
    fn device_id(&self) -> &str {
        &self.board.board.id
    }
    fn model(&self) -> Option<&Model> {
        Some(&self.model)
    }
    fn board(&self) -> Option<&Board> {
        Some(&self.board)
    }
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
    fn twin(&self) -> Option<(&Board, &Model)> {
        // The twin pins clocks; it knows nothing of power modes.
        if self.power_modes.is_some() {
            return None;
        }
        self.model
            .twin_for(&self.board.board.id)
            .ok()
            .map(|_| (&self.board, &self.model))
    }
    fn space(&self, batch_sizes: Option<&[u64]>, fixes: &[(Knob, u64)]) -> Result<Space> {
        if let Some(ids) = &self.power_modes {
            return mode_space(ids, &self.board, &self.model, batch_sizes, fixes);
        }
        // The workload is real: any batch size runs (the model's are the default).
        let s = Space::with_any_batches((&self.board).into(), &self.model, batch_sizes, fixes)?;
        Ok(match (&self.discovery.emc, &self.board.emc) {
            // --emc on a board: the memory clock is a fourth axis.
            (Some(_), Some(emc)) => {
                let mut axes = s.axes;
                axes.push(Axis {
                    knob: Knob::EmcFreqHz,
                    values: emc.frequencies_hz.clone(),
                });
                Space::from_axes(axes, top_corner(&self.board, &self.model))
            }
            _ => s,
        })
    }
    fn open(&self, c: &Common, real: RealWorkload) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        let w = real(None)?;
        let d = JetsonDevice::open(
            self.discovery.clone(),
            &c.board.state_path(),
            Some(c.board.poll_ms),
        )?;
        Ok((Box::new(d), w))
    }
}

/// Power modes `ids` x the batch sizes (any, the model's by default); `--fix mode=N` and
/// `--fix batch=B` narrow it, a clock cannot be fixed (a mode sets the clocks' caps).
fn mode_space(
    ids: &[u32],
    board: &Board,
    model: &Model,
    batch_sizes: Option<&[u64]>,
    fixes: &[(Knob, u64)],
) -> Result<Space> {
    let mut modes: Vec<u64> = ids.iter().map(|m| u64::from(*m)).collect();
    for (k, v) in fixes {
        match k {
            Knob::PowerMode if modes.contains(v) => modes = vec![*v],
            Knob::PowerMode => {
                return Err(Refusal(format!(
                    "{} mode={v}: not among the modes searched",
                    Opt::Fix
                ))
                .into())
            }
            Knob::BatchSize => {}
            _ => {
                return Err(Refusal(format!(
                    "{} {k}: with {} the modes set the clocks' caps; fix a mode or the batch size",
                    Opt::Fix,
                    Opt::PowerModes
                ))
                .into())
            }
        }
    }
    let batch_fixes: Vec<(Knob, u64)> = fixes
        .iter()
        .filter(|(k, _)| *k == Knob::BatchSize)
        .copied()
        .collect();
    let s = Space::with_any_batches(board.into(), model, batch_sizes, &batch_fixes)?;
    let batch = s
        .axes
        .into_iter()
        .find(|a| a.knob == Knob::BatchSize)
        .expect("a batch axis");
    let mut base = crate::space::Config::new(0, 0, 0);
    base.power_mode = modes.first().map(|m| *m as u32);
    let axes = vec![
        Axis {
            knob: Knob::PowerMode,
            values: modes,
        },
        batch,
    ];
    Ok(Space::from_axes(axes, base))
}

/// The error for `--backend jetson` where no catalogue board is found.
pub fn not_a_known_board(root: &Path, dt: Option<&str>, catalog: &Catalog) -> Refusal {
    Refusal(match dt {
        None => format!(
            "{backend} jetson: not a Jetson ({} is missing); use {backend} sim for the digital twin, or {} for a board's files mounted elsewhere",
            root.join("proc/device-tree/model").display(),
            Opt::SysfsRoot,
            backend = Opt::Backend
        ),
        Some(m) => format!(
            "this board (`{m}`) matches no search-spaces file ({}); add one for it (copy search-spaces/xavier-nx.toml, set detect_model and the frequency lists from `edgetune devices`) and pass {}, or name the closest board with {}",
            catalog.board_ids().join(", "),
            Opt::Catalog,
            Opt::Device
        ),
    })
}

/// Discovery, or what is missing for `--backend jetson`.
pub fn discover_or_explain(root: &Path) -> Result<Discovery> {
    discover(root).map_err(|e| match e {
        JetsonError::NotFound(m) => Refusal(format!("{} jetson: {m}", Opt::Backend)).into(),
        e => anyhow::Error::new(e),
    })
}

/// The board for the jetson backend, with the frequency lists the board itself lists (they win
/// over the catalogue's), what discovery found, and notes on what it is about to drive.
fn jetson_target(
    c: &Common,
    catalog: &Catalog,
    mut board: Board,
    detected: Option<&Board>,
    dt: Option<String>,
) -> Result<(Board, Discovery, Vec<String>)> {
    let root = &c.board.sysfs_root;
    let mut disc = discover_or_explain(root)?;
    if c.board.emc {
        disc = disc.with_emc().map_err(|e| Refusal(e.to_string()))?;
    }
    match detected {
        Some(d) if d.board.id != board.board.id => {
            return Err(Refusal(format!(
            "{device} {} was given, but this board is the {} (`{}`); leave {device} out on the board",
            board.board.id,
            d.board.name,
            dt.unwrap_or_default(),
            device = Opt::Device
        ))
            .into())
        }
        None => return Err(not_a_known_board(root, dt.as_deref(), catalog).into()),
        Some(_) => {}
    }
    check_workload(
        c,
        &format!("the {}", board.board.name),
        &format!(", or use {} sim for the digital twin", Opt::Backend),
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
        // A board summed from its rails may have more of them than the catalogue lists (AGX
        // Orin's second ina3221): any sum is that board's power.
        (match &board.sensors.total_rail {
            Some(t) => &disc.rails.total_name() != t,
            None => disc.rails.total.is_some(),
        })
        .then(|| {
            format!(
                "board power is {} here, the catalogue expects {}",
                disc.rails.total_name(),
                board.sensors.total_words()
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
    let measuring = format!(
        "measuring on this {} (`{}`, {}) through {}: {}, GPU devfreq {}, power {}",
        board.board.name,
        disc.dt_model,
        disc.rails.driver.jetpack(),
        root.display(),
        match disc.cpu.len() {
            1 => "1 cpufreq policy".to_string(),
            n => format!("{n} cpufreq policies"),
        },
        disc.gpu.name,
        disc.rails.total_name()
    );
    let notes = std::iter::once(measuring)
        .chain(notes.into_iter().flatten())
        .collect();
    Ok((board, disc, notes))
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
        return Err(Refusal(format!(
            "{}: {} lists no memory-clock rates within the board's limits {min_hz}-{max_hz} Hz; add them under [emc] frequencies_hz",
            Opt::Emc,
            board.file
        ))
        .into());
    }
    Ok(rates)
}
