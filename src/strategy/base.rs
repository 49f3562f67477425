//! What every strategy shares: observations and their history, the [`Strategy`] trait, the
//! init a strategy is made from, its prior and options. A leaf: the strategies import it, and
//! [`super`] re-exports it.

use crate::space::Point;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use thiserror::Error;

/// A strategy name that does not exist.
#[derive(Debug, Error)]
#[error("unknown strategy `{0}`; strategies: {list}", list = NAMES.join(", "))]
pub struct StrategyError(pub String);

/// Strategy names.
pub const NAMES: [&str; 5] = ["bayes", "coordinate", "anneal", "random", "grid"];

/// What a strategy learns about one measured point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// The point.
    pub point: Point,
    /// Objective value (energy in joules for the workload by default; lower is better). For a
    /// strategy that does not model constraints, an infeasible point's value is replaced by
    /// one worse than any feasible value (see [`penalised`]).
    pub value: f64,
    /// Coefficient of variation of the runs behind the value.
    pub cv: f64,
    /// Number of runs behind the value.
    pub runs: u32,
    /// Constraints as `ln(quantity / limit)`, measured conservatively (`<= 0` is met); empty
    /// without constraints.
    pub constraints: Vec<f64>,
    /// Time of one batch, ms (the second objective of a Pareto study).
    pub latency_ms: f64,
    /// The workload failed at this configuration: it is not asked again, and its value (a
    /// penalty) is no measurement.
    pub failed: bool,
    /// Board seconds the measurement took (runs, warm-up); 0 when not known.
    pub cost_s: f64,
    /// One reading with no measured spread to go by (a single-row table): `cv` is a guess, and
    /// a model-based strategy should estimate the noise level itself.
    pub spread_unknown: bool,
    /// With two runs or more: ln of the first run over the mean of the later ones. The first run
    /// after a clock change reads high (settling), so its spread across configurations, not
    /// the runs' CV, measures the noise of one run.
    pub first_run_excess: Option<f64>,
    /// The value comes from screening runs (shorter than the protocol's, scaled to its length),
    /// which read a little high: a model may fit their offset.
    pub screened: bool,
    /// Not a measurement: a configuration another worker of the study is measuring now, told
    /// with a made-up value (the kriging believer, or the constant liar) so that proposals
    /// spread out. It counts as taken, never as budget spent.
    pub pending: bool,
}

/// Value given to an infeasible point for a strategy that does not model constraints: above any
/// feasible value, and lower the less the constraints are violated.
pub fn penalised(violation: f64) -> f64 {
    1e12 * (1.0 + violation)
}

impl Observation {
    /// Whether every constraint is met.
    pub fn feasible(&self) -> bool {
        self.constraints.iter().all(|g| *g <= 0.0)
    }
    /// How far outside its limits the point is (0 when feasible).
    pub fn violation(&self) -> f64 {
        crate::objective::violation(&self.constraints)
    }
    /// Relative standard error of the value.
    pub fn rel_se(&self) -> f64 {
        self.cv / (self.runs.max(1) as f64).sqrt()
    }
}

/// Everything measured so far, in order.
#[derive(Debug, Clone, Default)]
pub struct History {
    obs: Vec<Observation>,
    index: HashMap<Point, usize>,
}

impl History {
    /// Adds an observation (a repeated point replaces the earlier value).
    pub fn push(&mut self, o: Observation) {
        match self.index.get(&o.point) {
            Some(i) => self.obs[*i] = o,
            None => {
                self.index.insert(o.point.clone(), self.obs.len());
                self.obs.push(o);
            }
        }
    }
    /// The observation at a point.
    pub fn get(&self, p: &[usize]) -> Option<&Observation> {
        self.index.get(p).map(|i| &self.obs[*i])
    }
    /// Whether a point was measured.
    pub fn contains(&self, p: &[usize]) -> bool {
        self.index.contains_key(p)
    }
    /// Number of measured points.
    pub fn len(&self) -> usize {
        self.obs.len()
    }
    /// Whether nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.obs.is_empty()
    }
    /// Observations in measurement order.
    pub fn iter(&self) -> impl Iterator<Item = &Observation> {
        self.obs.iter()
    }
    /// The observations that are measurements (failed configurations left out).
    pub fn usable(&self) -> History {
        let mut h = History::default();
        for o in self.obs.iter().filter(|o| !o.failed) {
            h.push(o.clone());
        }
        h
    }
    /// The best measurement: the lowest value among feasible points, else the least
    /// infeasible point.
    pub fn best(&self) -> Option<&Observation> {
        // Feasible points first by value; without any, the least infeasible; never a failure.
        self.obs.iter().filter(|o| !o.failed).min_by(|a, b| {
            (!a.feasible(), a.violation(), a.value)
                .partial_cmp(&(!b.feasible(), b.violation(), b.value))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    }
}

/// A search strategy.
pub trait Strategy: Send {
    /// Name.
    fn name(&self) -> &'static str;
    /// The next point to measure, or `None` when the strategy has nothing more to try.
    fn ask(&mut self, history: &History) -> Option<Point>;
    /// Called after each measurement (the history passed to `ask` holds it too).
    fn tell(&mut self, _obs: &Observation) {}
    /// The configuration to recommend from what was measured: by default the lowest mean
    /// measured; a model-based strategy may prefer its surrogate's view.
    fn recommend(&mut self, history: &History) -> Option<Point> {
        history.best().map(|o| o.point.clone())
    }
    /// The strategy's model of the objective at `points`, if it has one (for plots).
    fn predict(&mut self, _history: &History, _points: &[Point]) -> Option<Vec<f64>> {
        None
    }
    /// What the strategy's model says of each measured configuration's value: the mean and
    /// variance of its ln, for a full-length noiseless reading. `None` without a model (the
    /// readings then speak for themselves).
    fn estimates(&mut self, _history: &History) -> Option<HashMap<Point, (f64, f64)>> {
        None
    }
    /// How well the strategy's model describes what was measured, if it has one.
    fn check(&mut self, _history: &History) -> Option<ModelCheck> {
        None
    }
    /// Whether the strategy pools neighbouring readings (a surrogate), so that a short, noisy
    /// run tells it enough; one that compares readings one by one does not.
    fn pools_readings(&self) -> bool {
        false
    }
    /// Whether the strategy models constraints itself (from [`Observation::constraints`]);
    /// otherwise the study hands it penalised values for infeasible points.
    fn handles_constraints(&self) -> bool {
        false
    }
    /// Why the strategy stopped, once `ask` returned `None`.
    fn stop_reason(&self) -> String {
        "the strategy had nothing more to try".into()
    }
}

/// How well a surrogate describes the measurements (report.json's `surrogate`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelCheck {
    /// The persistent structure per configuration it fitted, percent (standard deviation).
    pub structure_pct: f64,
    /// The per-run noise it assumed for exploring runs, percent (pooled over replicated runs).
    pub noise_pct: f64,
    /// Replicated runs behind that noise figure (degrees of freedom; the baseline's guess
    /// counts as two).
    pub noise_df: f64,
    /// How much higher screening runs read than full-length ones, percent (0 when not fitted).
    pub screening_offset_pct: f64,
    /// Root mean square of the leave-one-out standardised errors (about 1 when the model's
    /// noise and structure are right; well above 1: it is too sure of itself).
    pub loo_rms: f64,
    /// Whether the model describes the measurements poorly (`loo_rms` outside 0.5-2).
    pub poor: bool,
}

/// What a strategy is built from.
#[derive(Debug, Clone)]
pub struct StrategyInit {
    /// Values per axis.
    pub dims: Vec<usize>,
    /// Seed for anything random.
    pub seed: u64,
    /// Measurements the study allows.
    pub budget: usize,
    /// Options of the model-based strategies.
    pub options: StrategyOptions,
    /// Where each axis's values lie in [0, 1] (the space's geometry, for surrogates); empty for
    /// evenly spaced.
    pub coords: Vec<Vec<f64>>,
    /// Axis indices in the order coordinate-wise strategies search them; empty for 0, 1, 2...
    pub axis_order: Vec<usize>,
    /// What is predicted of every point before measuring (the twin, an earlier study).
    pub prior: GridPrior,
}

/// Predictions for every point of the space, in flat-index order, made before the study starts
/// (by the twin, or from an earlier study); each is empty when not known. An earlier study's is
/// stored with the study it informs (a worker or a resume never reads it from a path).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GridPrior {
    /// The objective's predicted value: a surrogate's prior mean.
    pub value: Vec<f64>,
    /// Predicted seconds of one full-length run: the cost model's prior.
    pub time_s: Vec<f64>,
}

impl GridPrior {
    /// Whether it predicts nothing.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty() && self.time_s.is_empty()
    }
}

/// Options of the model-based strategies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrategyOptions {
    /// Acquisition function of `bayes`.
    pub acquisition: Acquisition,
    /// `bayes` stops when the best expected improvement is below this fraction of the incumbent
    /// three times in a row.
    pub ei_stop: f64,
    /// Map the energy-latency Pareto front (`bayes` rotates a scalarisation's weight and spends
    /// its whole budget) instead of one minimum.
    pub pareto: bool,
}

impl Default for StrategyOptions {
    fn default() -> Self {
        StrategyOptions {
            acquisition: Acquisition::Ei,
            ei_stop: 0.002,
            pareto: false,
        }
    }
}

impl StrategyInit {
    /// An init for a space: its axis sizes, log-scaled coordinates and search order.
    pub fn for_space(space: &crate::space::Space, seed: u64, budget: usize) -> StrategyInit {
        StrategyInit {
            coords: space.log_coords(),
            axis_order: space.axis_order(),
            ..StrategyInit::new(space.dims(), seed, budget)
        }
    }

    /// The same init with a prior.
    pub fn with_prior(mut self, prior: GridPrior) -> StrategyInit {
        self.prior = prior;
        self
    }

    /// The same init with other options.
    pub fn with_options(mut self, options: StrategyOptions) -> StrategyInit {
        self.options = options;
        self
    }

    /// Axis indices in search order.
    pub fn order(&self) -> Vec<usize> {
        if self.axis_order.len() == self.dims.len() {
            self.axis_order.clone()
        } else {
            (0..self.dims.len()).collect()
        }
    }

    /// Coordinate in [0, 1] of index `i` on axis `a`.
    pub fn coord(&self, a: usize, i: usize) -> f64 {
        match self.coords.get(a) {
            Some(c) if c.len() == self.dims[a] => c[i],
            _ if self.dims[a] > 1 => i as f64 / (self.dims[a] - 1) as f64,
            _ => 0.5,
        }
    }
    /// An init with default options.
    pub fn new(dims: Vec<usize>, seed: u64, budget: usize) -> StrategyInit {
        StrategyInit {
            dims,
            seed,
            budget,
            options: StrategyOptions::default(),
            coords: Vec::new(),
            axis_order: Vec::new(),
            prior: GridPrior::default(),
        }
    }
}

/// Acquisition function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Acquisition {
    /// Expected improvement.
    Ei,
    /// Lower confidence bound `mu - kappa * sigma`.
    Lcb {
        /// Exploration weight.
        kappa: f64,
    },
}
