//! `--prior`: what a search knows before it measures. The twin's predictions where the
//! catalogue has the board and model (the default), nothing, or an earlier study's
//! measurements carried over to this space.

use super::target::{Rig, Target};
use crate::error::UsageError;
use crate::objective::Goal;
use crate::space::Space;
use crate::strategy::GridPrior;
use anyhow::Result;
use std::path::PathBuf;

/// Default `--screen-inferences`: exploring runs a quarter of the protocol's 3200 inferences
/// (see the README's board-time bench for the choice).
pub const DEFAULT_SCREEN_INFERENCES: u32 = 400;

/// `--prior` as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriorChoice {
    /// Not given: the twin where the catalogue has the board and model, else none.
    Auto,
    /// `twin`.
    Twin,
    /// `none`.
    None,
    /// The folder of an earlier tune.
    Dir(PathBuf),
}

impl PriorChoice {
    /// From the flag's value.
    pub fn parse(s: Option<&str>) -> PriorChoice {
        match s.map(str::trim) {
            None => PriorChoice::Auto,
            Some(w) if w.eq_ignore_ascii_case("twin") => PriorChoice::Twin,
            Some(w) if w.eq_ignore_ascii_case("none") => PriorChoice::None,
            Some(d) => PriorChoice::Dir(PathBuf::from(d)),
        }
    }
}

/// Which prior a study got, in words for its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriorUsed {
    /// None.
    None,
    /// The catalogue twin of the board and model.
    Twin,
    /// An earlier study's measurements.
    Study(PathBuf),
}

impl PriorUsed {
    /// For the report.
    pub fn words(&self) -> String {
        match self {
            PriorUsed::None => "none".into(),
            PriorUsed::Twin => "the catalogue's digital twin".into(),
            PriorUsed::Study(d) => format!("the earlier study in {}", d.display()),
        }
    }
}

/// Whether the twin can predict every configuration of `space`: a CPU clock, a GPU clock and a
/// batch size in each, and no knob it does not model (memory clock, cores).
pub fn twin_models(space: &Space) -> bool {
    space.points().all(|p| {
        let c = space.config(&p);
        c.cpu_freq_khz > 0
            && c.gpu_freq_hz > 0
            && c.batch_size > 0
            && c.emc_freq_hz.is_none()
            && c.cpu_cores.is_none()
    })
}

/// The prior of a tune on `t` over `space`.
pub fn resolve(
    choice: &PriorChoice,
    t: &Target,
    space: &Space,
    goal: &Goal,
    inferences: u32,
) -> Result<(GridPrior, PriorUsed)> {
    let twin = match &t.rig {
        Rig::Sim { board, model } | Rig::Jetson { board, model, .. } => {
            model.twin_for(&board.board.id).ok().map(|_| (board, model))
        }
        // A recorded table of a board and model the catalogue knows, over the knobs the twin
        // models: the twin predicts its rows as it predicts the board's.
        Rig::Replay {
            board: Some(board),
            model: Some(model),
            ..
        } if twin_models(space) => model.twin_for(&board.board.id).ok().map(|_| (board, model)),
        Rig::Replay { .. } | Rig::Nvml { .. } => None,
    };
    match (choice, twin) {
        (PriorChoice::None, _) | (PriorChoice::Auto, None) => {
            Ok((GridPrior::default(), PriorUsed::None))
        }
        (PriorChoice::Twin | PriorChoice::Auto, Some((b, m))) => Ok((
            crate::study::twin_prior(b, m, space, goal, inferences),
            PriorUsed::Twin,
        )),
        (PriorChoice::Twin, None) => Err(UsageError(format!(
            "--prior twin needs the catalogue's twin of {} on {}, and there is none here; use --prior none or --prior DIR (an earlier tune)",
            t.model_id(),
            t.device_id()
        ))
        .into()),
        (PriorChoice::Dir(d), _) => Ok((
            super::earlier::prior_from(d, space, goal, inferences)?,
            PriorUsed::Study(d.clone()),
        )),
    }
}
