//! The twin's registry entry and rig: a catalogue board simulated by its digital twin, the
//! fallback of `--backend auto` off a board.

use super::SimBoard;
use crate::backend::jetson::rig::choose_board;
use crate::backend::request::Common;
use crate::backend::rig::{nothing_to_restore, Entry, RealWorkload, Request, Resolved, Rig, Words};
use crate::catalog::{Board, Model};
use crate::device::{BackendKind, Device};
use crate::space::{Knob, Space};
use crate::workload::Workload;
use anyhow::Result;

/// The registry's entry.
pub const ENTRY: Entry = Entry {
    kind: BackendKind::Sim,
    help: "The digital twin of a catalogue board",
    words: Words {
        heading: "digital twin",
        provenance: "measured on the digital twin, not on a board",
        disclaimer: Some("Measured on the **digital twin** of the board (no board was attached), not on hardware."),
        simulated: true,
    },
    takes: &[],
    min_window_s: 0.0,
    resolve,
    emergency_restore: nothing_to_restore,
    restore_from_state: None,
};

/// The twin of the board named (or detected) when asked for, or as `--backend auto`'s last word.
fn resolve(r: &Request) -> Resolved {
    let c = r.c;
    if !matches!(c.backend, None | Some(BackendKind::Sim)) {
        return Ok(None);
    }
    let model = r.catalog.model(&c.model)?.clone();
    let board = choose_board(r)?.board;
    model.twin_for(&board.board.id)?;
    let note = c.backend.is_none().then(|| {
        format!(
            "no {} detected here; using its digital twin (backend sim), calibrated to the paper's measurements",
            board.board.name
        )
    });
    Ok(Some(Box::new(SimRig { board, model, note })))
}

/// The digital twin of a catalogue board.
struct SimRig {
    board: Board,
    model: Model,
    /// Why the twin stands in for a board, where it was not asked for.
    note: Option<String>,
}

impl Rig for SimRig {
    fn kind(&self) -> BackendKind {
        BackendKind::Sim
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
        self.note.iter().cloned().collect()
    }
    fn twin(&self) -> Option<(&Board, &Model)> {
        Some((&self.board, &self.model))
    }
    fn space(&self, batch_sizes: Option<&[u64]>, fixes: &[(Knob, u64)]) -> Result<Space> {
        Ok(Space::new(&self.board, &self.model, batch_sizes, fixes)?)
    }
    fn known_grid(
        &self,
        space: &Space,
        inferences: u32,
    ) -> Option<(Vec<(f64, f64)>, &'static str)> {
        let truth = crate::twin::true_grid(&self.board, &self.model, space, inferences);
        let grid = truth.iter().map(|p| (p.energy_j, p.time_s)).collect();
        Some((grid, "twin, noiseless"))
    }
    fn open(
        &self,
        c: &Common,
        _real: RealWorkload,
    ) -> Result<(Box<dyn Device>, Box<dyn Workload>)> {
        let board = self.board.with_static_power_pct(c.twin_static_power_pct);
        let b = SimBoard::new(&board, c.noise(c.noise_salt))
            .with_sleep(c.twin_sleep)
            .with_first_run_pct(c.twin_first_run_pct);
        Ok((Box::new(b.device()), Box::new(b.workload(&self.model)?)))
    }
}
