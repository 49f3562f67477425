//! The replay backend's registry entry and rig: a recorded table (`--table`), with `--model` and
//! `--device` as labels (catalogue entries where they are one, any name otherwise).

use super::{ReplayBoard, ReplayTable};
use crate::backend::jetson::device_tree_model;
use crate::backend::request::Common;
use crate::backend::rig::{
    nothing_to_restore, Entry, RealWorkload, Refusal, Request, Resolved, Rig, Words,
};
use crate::catalog::{Board, Labelled, Model};
use crate::device::{BackendKind, Device};
use crate::opt::Opt;
use crate::space::{Knob, Space};
use crate::workload::Workload;
use anyhow::Result;

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    kind: BackendKind::Replay,
    help: "A recorded table given with --table",
    words: Words {
        heading: "replay table",
        provenance: "replayed from a recorded table",
        disclaimer: Some("Replayed from a **recorded table**, not measured now."),
        simulated: false,
    },
    takes: &[],
    min_window_s: 0.0,
    resolve,
    emergency_restore: nothing_to_restore,
    restore_from_state: None,
};

/// The device label of a table recorded on a board that is neither named nor detected.
pub const UNNAMED_BOARD: &str = "unnamed-board";

/// The table when `--table` is given (it implies this backend).
fn resolve(r: &Request) -> Resolved {
    let (c, catalog) = (r.c, r.catalog);
    let Some(path) = &c.table else {
        if c.backend == Some(BackendKind::Replay) {
            return Err(Refusal(format!(
                "{} replay needs {} FILE.csv",
                Opt::Backend,
                Opt::Table
            ))
            .into());
        }
        return Ok(None);
    };
    if !matches!(c.backend, None | Some(BackendKind::Replay)) {
        return Err(Refusal(format!(
            "{} is for {backend} replay; leave {backend} out or set it to replay",
            Opt::Table,
            backend = Opt::Backend
        ))
        .into());
    }
    let model = catalog.model_label(&c.model)?;
    let board = match &c.device {
        Some(d) => catalog.board_label(d)?,
        None => match catalog.detect(device_tree_model(&c.board.sysfs_root).as_deref()) {
            Some(b) => Labelled::Known(b),
            None => Labelled::Label(UNNAMED_BOARD.into()),
        },
    };
    let model_id = model.id(|m| m.id());
    let device_id = board.id(|b| &b.board.id);
    let table = ReplayTable::load(path)?;
    let unlisted: Vec<&str> = [
        (model.known().is_none(), "model"),
        (board.known().is_none(), "board"),
    ]
    .iter()
    .filter_map(|(u, w)| u.then_some(*w))
    .collect();
    let note = format!(
        "replaying the measurements in {} (backend replay) for {model_id} on {device_id}{}",
        path.display(),
        match unlisted[..] {
            [] => String::new(),
            _ => format!(
                " ({} not in the catalogue: a label only{})",
                unlisted.join(" and "),
                if board.known().is_none() {
                    "; no nvpmodel.conf or apply-profile.sh is written"
                } else {
                    ""
                }
            ),
        }
    );
    let mut notes = vec![note];
    notes.extend(table_notes(&table));
    Ok(Some(Box::new(ReplayRig {
        board: board.known().map(|b| (*b).clone()),
        model: model.known().map(|m| (*m).clone()),
        model_id,
        device_id,
        table,
        notes,
    })))
}

/// What a table's columns mean beyond its knobs: the power modes' caps, the columns not read.
fn table_notes(table: &ReplayTable) -> Vec<String> {
    let mut notes = Vec::new();
    if !table.modes.is_empty() {
        let modes: Vec<String> = table
            .modes
            .iter()
            .map(|(id, m)| match &m.name {
                Some(n) => format!("{id} {n} ({})", m.caps),
                None => format!("{id} ({})", m.caps),
            })
            .collect();
        notes.push(format!(
            "the table's {} power modes are a knob; their clock and core columns are caps (the governors run within them), not pins: {}",
            modes.len(),
            modes.join("; ")
        ));
    }
    if !table.ignored.is_empty() {
        notes.push(format!(
            "columns not read: {} (edgetune reads the knob columns and energy_j, or power_w and time_s)",
            table.ignored.join(", ")
        ));
    }
    notes
}

/// A recorded table. Its model and board are labels: catalogue entries where they are (then
/// board files are written for the recommendation), any name otherwise.
struct ReplayRig {
    /// The board the table was recorded on, when the catalogue has it.
    board: Option<Board>,
    /// The model, when the catalogue has it.
    model: Option<Model>,
    model_id: String,
    device_id: String,
    table: ReplayTable,
    notes: Vec<String>,
}

impl Rig for ReplayRig {
    fn kind(&self) -> BackendKind {
        BackendKind::Replay
    }
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn device_id(&self) -> &str {
        &self.device_id
    }
    fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }
    fn board(&self) -> Option<&Board> {
        self.board.as_ref()
    }
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
    fn recorded(&self) -> Option<&ReplayTable> {
        Some(&self.table)
    }
    fn twin(&self) -> Option<(&Board, &Model)> {
        // The twin pins clocks; it knows nothing of power modes.
        if !self.table.modes.is_empty() {
            return None;
        }
        let (b, m) = (self.board.as_ref()?, self.model.as_ref()?);
        m.twin_for(&b.board.id).ok().map(|_| (b, m))
    }
    fn space(&self, batch_sizes: Option<&[u64]>, fixes: &[(Knob, u64)]) -> Result<Space> {
        if batch_sizes.is_some() || !fixes.is_empty() {
            return Err(Refusal(format!(
                "{} and {} do not apply to a replay table: its columns define the space; narrow the table instead",
                Opt::BatchSizes,
                Opt::Fix
            ))
            .into());
        }
        Ok(self.table.space.clone())
    }
    fn known_grid(
        &self,
        _space: &Space,
        inferences: u32,
    ) -> Option<(Vec<(f64, f64)>, &'static str)> {
        Some((self.table.mean_energy_time(inferences), "table means"))
    }
    fn open(
        &self,
        _c: &Common,
        _real: RealWorkload,
    ) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        let b = ReplayBoard::new(self.table.clone());
        Ok((Box::new(b.device()), Box::new(b.workload(&self.model_id))))
    }
}
