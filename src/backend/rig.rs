//! What every backend hands the commands: its registry [`Entry`] (its name and help on the
//! command line, its words in reports, the flags it takes, how it resolves the options into a
//! [`Rig`], how a second Ctrl-C restores its hardware) and the [`Rig`] itself (its search
//! space, what it knows of the grid, how it opens a device and a workload). A leaf of
//! `backend/`: each backend's `rig.rs` implements it, [`super::ALL`] lists the entries.

use super::jetson::snapshot::Restored;
use super::jetson::JetsonError;
use super::nvml::GpuSpec;
use super::replay::ReplayTable;
use super::request::Common;
use crate::catalog::{Board, Catalog, Model};
use crate::device::{BackendKind, Device};
use crate::opt::Opt;
use crate::space::{Knob, Space};
use crate::workload::Workload;
use anyhow::Result;
use std::any::Any;
use std::path::Path;

/// A backend refusing the options it was given, in words for the user (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// A flag that only some backends take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--emc`: the memory clock as a fourth knob.
    Emc,
    /// `--allow-clock-control`: lock a GPU's clocks.
    AllowClockControl,
    /// `--workload-cmd`: an external inference program.
    WorkloadCmd,
    /// `--torchscript` and `--input-shape`: a user's TorchScript model.
    Torchscript,
    /// `--power-modes`: nvpmodel power modes as the knob.
    PowerModes,
}

/// How reports name where a backend's figures came from.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    /// A few words for headings.
    pub heading: &'static str,
    /// Where a profile's energy came from, for the comment lines of profile files.
    pub provenance: &'static str,
    /// The sentence report.md opens with, where the figures are not a board's measured now.
    pub disclaimer: Option<&'static str>,
    /// Whether the figures are simulated time and energy rather than measured.
    pub simulated: bool,
}

/// What a rig's resolution reads: the options and the catalogue.
pub struct Request<'a> {
    /// The options.
    pub c: &'a Common,
    /// The catalogue.
    pub catalog: &'a Catalog,
}

/// Whatever a second Ctrl-C's restore holds until the process exits (a guard on board writes).
pub type Held = Box<dyn Any>;

/// A backend's answer to the options: its rig, or `None` where they are not for it.
pub type Resolved = Result<Option<Box<dyn Rig>>>;

/// One backend in the registry.
pub struct Entry {
    /// Which backend.
    pub kind: BackendKind,
    /// Its line in `--backend`'s help.
    pub help: &'static str,
    /// Its words in reports.
    pub words: Words,
    /// The flags it takes, of those only some backends take.
    pub takes: &'static [Flag],
    /// The protocol's shortest measuring window unless `--min-window-s` says otherwise.
    pub min_window_s: f64,
    /// The rig for the options, `Ok(None)` where they are not for this backend (tried in the
    /// registry's order; `--backend auto` takes the first that answers).
    pub resolve: fn(&Request) -> Resolved,
    /// On a second Ctrl-C: puts back what this process changed, and says what it did.
    pub emergency_restore: fn() -> (Option<String>, Held),
    /// `edgetune restore`: puts back, from the state file, what a run of this backend that was
    /// killed left changed; `None` where it keeps no state file (its snapshot says whose it is).
    pub restore_from_state: Option<RestoreFromState>,
}

/// Puts a machine back from a state file: (sysfs root, state file, `--force`).
pub type RestoreFromState = fn(&Path, &Path, bool) -> Result<Restored, JetsonError>;

/// Nothing to restore on a second Ctrl-C.
pub fn nothing_to_restore() -> (Option<String>, Held) {
    (None, Box::new(()))
}

/// Builds the real workload (`--workload-cmd`, or the built-in or TorchScript model) on the
/// torch device given (`cuda:N`, `cpu`), or where `--torch-device` says when none is given.
pub type RealWorkload<'a> = &'a dyn Fn(Option<String>) -> Result<Box<dyn Workload>>;

/// What measures: a backend with everything it needs, and the model it measures.
pub trait Rig {
    /// Which backend.
    fn kind(&self) -> BackendKind;
    /// The model's id in reports (a catalogue id, or a replay table's label).
    fn model_id(&self) -> &str;
    /// The device's id in reports (a board's id, `gpu:N`, `host:...`, or a table's label).
    fn device_id(&self) -> &str;
    /// The catalogue model, unless it is a label only.
    fn model(&self) -> Option<&Model>;
    /// The catalogue board (board files are written for it), unless there is none.
    fn board(&self) -> Option<&Board> {
        None
    }
    /// What it is about to measure, and anything else to know, for notes on stderr.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The search space for the batch sizes and pinned knobs asked for.
    fn space(&self, batch_sizes: Option<&[u64]>, fixes: &[(Knob, u64)]) -> Result<Space>;
    /// The recorded table, on replay.
    fn recorded(&self) -> Option<&ReplayTable> {
        None
    }
    /// The board and model the twin predicts for it, where it has them.
    fn twin(&self) -> Option<(&Board, &Model)> {
        None
    }
    /// The grid's energy and time per point of `space` where they are known without measuring
    /// (the twin's noiseless figures, a table's means), with words for what they are.
    fn known_grid(
        &self,
        _space: &Space,
        _inferences: u32,
    ) -> Option<(Vec<(f64, f64)>, &'static str)> {
        None
    }
    /// Whether it sets clocks per configuration (a GPU without `--allow-clock-control` does not:
    /// its frequency saving would be run-to-run noise).
    fn sets_clocks(&self) -> bool {
        true
    }
    /// The GPU, for an nvidia-smi profile script.
    fn gpu(&self) -> Option<&GpuSpec> {
        None
    }
    /// Opens the device and the workload to measure with; on real hardware the workload is
    /// built (through `real`) first, so a model that cannot load changes nothing.
    fn open(&self, c: &Common, real: RealWorkload) -> Result<(Box<dyn Device>, Box<dyn Workload>)>;
}

/// Whether this binary has the built-in models.
const TORCH: bool = cfg!(feature = "torch");

/// Checks that a real device (`on`, for the message) has a workload: `--workload-cmd`,
/// `--torchscript` or the built-in model, never two of them; `otherwise` ends the message.
pub fn check_workload(c: &Common, on: &str, otherwise: &str) -> Result<(), Refusal> {
    if c.workload_cmd.is_some() && c.torch.torchscript.is_some() {
        return Err(Refusal(format!(
            "give {} or {}, not both: each is the workload",
            Opt::WorkloadCmd,
            Opt::Torchscript
        )));
    }
    if c.workload_cmd.is_none() && !TORCH {
        return Err(Refusal(format!(
            "on {on} edgetune measures a real workload: give {cmd} 'your-program --model {{model}} --batch {{batch}} --count {{inferences}}' (see examples/infer-with-markers.py), or build edgetune with `--features torch` to run the built-in model{otherwise}",
            cmd = Opt::WorkloadCmd
        )));
    }
    Ok(())
}
