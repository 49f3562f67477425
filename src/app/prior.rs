//! `--prior`: what a search knows before it measures. The twin's predictions where the
//! catalogue has the board and model (the default), nothing, or an earlier study's
//! measurements carried over to this space.

use super::target::Target;
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
#[derive(Debug, Clone, PartialEq)]
pub enum PriorChoice {
    /// Not given: the twin where the catalogue has the board and model, else none.
    Auto,
    /// `twin`.
    Twin,
    /// `none`.
    None,
    /// The folder of an earlier tune.
    Dir(PathBuf),
    /// `stored`: the earlier study's prior stored with this study (what a study recorded with
    /// `--prior DIR` says in its arguments); the prior itself once read from the study.
    Stored(Option<GridPrior>),
}

impl PriorChoice {
    /// From the flag's value.
    pub fn parse(s: Option<&str>) -> PriorChoice {
        match s.map(str::trim) {
            None => PriorChoice::Auto,
            Some(w) if w.eq_ignore_ascii_case("twin") => PriorChoice::Twin,
            Some(w) if w.eq_ignore_ascii_case("none") => PriorChoice::None,
            Some(w) if w.eq_ignore_ascii_case("stored") => PriorChoice::Stored(None),
            Some(d) => PriorChoice::Dir(PathBuf::from(d)),
        }
    }
}

/// Which prior a study got, in words for its report.
#[derive(Debug, Clone, PartialEq)]
pub enum PriorUsed {
    /// None.
    None,
    /// The catalogue twin of the board and model.
    Twin,
    /// An earlier study's measurements (read from its folder now, or stored with this study).
    Study(GridPrior),
}

impl PriorUsed {
    /// For the report.
    pub fn words(&self) -> String {
        match self {
            PriorUsed::None => "none".into(),
            PriorUsed::Twin => "the catalogue's digital twin".into(),
            // The same words read from a folder or from the study: a resume compares them.
            PriorUsed::Study(_) => "an earlier study's measurements".into(),
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
    // A recorded table of a board and model the catalogue knows only over the knobs the twin
    // models: then the twin predicts its rows as it predicts the board's.
    let twin = t
        .rig
        .twin()
        .filter(|_| t.rig.recorded().is_none() || twin_models(space));
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
        (PriorChoice::Dir(d), _) => {
            let g = super::earlier::prior_from(d, space, goal, inferences)?;
            Ok((g.clone(), PriorUsed::Study(g)))
        }
        (PriorChoice::Stored(Some(g)), _) => {
            let fits = |v: &[f64]| {
                (v.is_empty() || v.len() == space.size())
                    && v.iter().all(|x| x.is_finite() && *x > 0.0)
            };
            if !(fits(&g.value) && fits(&g.time_s)) {
                return Err(UsageError(format!(
                    "the prior stored with this study does not fit its search space of {} configurations (or holds values that are not positive numbers): it was changed outside edgetune",
                    space.size()
                ))
                .into());
            }
            Ok((g.clone(), PriorUsed::Study(g.clone())))
        }
        (PriorChoice::Stored(None), _) => Err(UsageError(
            "--prior stored takes the prior stored with a study (`tune --resume`, a worker), and this study holds none; give --prior twin, none or DIR".into(),
        )
        .into()),
    }
}

impl PriorChoice {
    /// `--prior stored` filled in with the prior stored in `header` (a study's, read by a
    /// worker, a report or a resume); any other choice as it is.
    pub fn from_study(&self, header: &crate::study::StudyHeader) -> PriorChoice {
        match self {
            PriorChoice::Stored(None) => PriorChoice::Stored(header.prior_grid.clone()),
            other => other.clone(),
        }
    }
}

impl PriorUsed {
    /// The prior to store with the study: an earlier study's (the twin's is the catalogue's,
    /// made again anywhere).
    pub fn to_store(&self) -> Option<GridPrior> {
        match self {
            PriorUsed::Study(g) => Some(g.clone()),
            _ => None,
        }
    }
}
