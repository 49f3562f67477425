//! Bayesian optimization: a Gaussian-process surrogate (egobox-gp, Matern 5/2 kernel, constant
//! mean, fitted hyper-parameters) of log energy over the axes that vary, with the measured
//! run-to-run variance as observation noise; expected improvement (or a lower confidence bound)
//! scored on every unmeasured configuration of the grid.
//!
//! The GP sees each axis through the coordinates the space gives (log frequency, log batch
//! size): energy goes roughly as 1/f where static power dominates, and in log coordinates that
//! cliff is as smooth as the basin, which lets one length-scale per axis fit both. On the bench
//! this halved the measurements needed to get within 2 % of the minimum (median 15 to 10).
//!
//! - Initial design: a Latin hypercube on the grid plus the all-max corner (the DVFS-like point).
//! - Stopping: the budget (enforced by the study), or the best expected improvement below
//!   `ei_stop` (a fraction of the incumbent: improvements of log energy are relative) three times
//!   in a row. While EI is that low, the incumbent's unmeasured neighbours (up to two steps along
//!   each axis) are measured first: the surrogate is smooth and the grid coarse, so the optimum
//!   is often a step or two away.
//! - Recommendation: the measured configuration with the lowest posterior mean, not the luckiest
//!   single reading.
//!
//! egobox-gp has one nugget for all points, so the noise enters as the mean of the points'
//! squared relative standard errors, relative to the variance of the targets.

mod numbers;

pub use super::base::Acquisition;
use super::base::{History, Strategy, StrategyInit};
use super::gp;
use crate::space::Point;
use egobox_gp::correlation_models::Matern52Corr;
use egobox_gp::mean_models::ConstantMean;
use egobox_gp::{GaussianProcess, ThetaTuning};
use linfa::prelude::{Dataset, Fit};
use ndarray::{Array1, Array2};
pub use numbers::regress;
use numbers::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal};

type Gp = GaussianProcess<f64, ConstantMean, Matern52Corr>;

/// How far along each axis, in table steps, the incumbent's neighbourhood is checked before the
/// EI rule may stop the search. One step left p90 regret at 1.7 % on the bench, two at 1.1 %.
const NEIGHBOUR_STEPS: i64 = 2;

/// The Bayesian-optimization strategy.
pub struct Bayes {
    dims: Vec<usize>,
    /// Coordinates of each axis's values in [0, 1].
    coords: Vec<Vec<f64>>,
    /// Axes with more than one value (the GP's inputs).
    active: Vec<usize>,
    acquisition: Acquisition,
    ei_stop: f64,
    init: Vec<Point>,
    rng: ChaCha8Rng,
    /// The objective GP's last hyper-parameters (the next fit starts from them).
    hyper: Option<gp::Hyper>,
    /// How probable it is, after the last fit, that the board is as rough as real boards are
    /// ([`ROUGH_TAU`]) rather than as smooth as fitted.
    p_rough: f64,
    /// The last fit with the structure of a rough board (none when the fit is that rough).
    rough_fit: Option<gp::Gp>,
    /// Points in the history when the hyper-parameters were last re-estimated.
    refitted_at: usize,
    /// The cost model's last hyper-parameters (without a time prior).
    cost_hyper: Option<gp::Hyper>,
    low_ei: u32,
    stopped: Option<String>,
    pareto: bool,
    /// ln of the prior's predicted objective per flat index (empty: no prior; the GP then
    /// models the objective itself, else the residual from the prior).
    prior_ln: Vec<f64>,
    /// ln of the predicted run time per flat index (empty: learnt from measured costs).
    time_ln: Vec<f64>,
    budget: usize,
    /// Points in the initial design.
    n_init: usize,
}

/// The structure of a rough board (standard deviation of ln energy per configuration): the
/// real tables of `real-landscapes.md` show a few percent. Until the readings rule it out, the
/// search weighs the chance that the board is that rough, though a dozen readings fit a smoother
/// one (they cannot tell 1 % from 3 % apart).
const ROUGH_TAU: f64 = 0.03;

/// Below this probability that the likeliest unmeasured configuration meets the limits (and
/// none measured does), the search stops: nothing can meet them.
const HOPELESS: f64 = 1e-3;

/// Configurations with the lowest predicted value that remain candidates: this many per
/// measurement left in the budget, plus [`FOCUS_MIN`].
const FOCUS_PER_MEASUREMENT: usize = 4;
/// See [`FOCUS_PER_MEASUREMENT`].
const FOCUS_MIN: usize = 10;

/// Up to this many points the hyper-parameters are re-estimated at every step; after, each time
/// the history has grown by [`REFIT_GROWTH`].
const REFIT_ALWAYS: usize = 24;
/// See [`REFIT_ALWAYS`].
const REFIT_GROWTH: f64 = 1.2;

/// Prior probability that a board is that rough.
const PRIOR_ROUGH: f64 = 0.5;

/// Below this probability of a rough board, the search may stop on the fitted EI alone.
const SMOOTH_ENOUGH: f64 = 0.15;

/// On a board that may be rough, the search stops once even the rough board's EI falls below
/// this fraction of `ei_stop`.
const ROUGH_STOP: f64 = 0.05;

impl Bayes {
    /// The prior's ln value at `p` (0 without a prior).
    fn offset(&self, p: &Point) -> f64 {
        self.prior_ln
            .get(flat(&self.dims, p))
            .copied()
            .unwrap_or(0.0)
    }

    /// Predicted ln cost of measuring each of `points` (zeros without a time model): the
    /// prior's time scaled by what measurements cost against it, else a GP of measured costs.
    fn ln_cost(&mut self, h: &History, points: &[&Point]) -> Vec<f64> {
        let costed: Vec<&super::base::Observation> = h.iter().filter(|o| o.cost_s > 0.0).collect();
        if !self.time_ln.is_empty() {
            let scale = if costed.is_empty() {
                0.0
            } else {
                costed
                    .iter()
                    .map(|o| o.cost_s.ln() - self.time_ln[flat(&self.dims, &o.point)])
                    .sum::<f64>()
                    / costed.len() as f64
            };
            return points
                .iter()
                .map(|p| self.time_ln[flat(&self.dims, p)] + scale)
                .collect();
        }
        if costed.len() < 3 || costed.len() < h.len() {
            return vec![0.0; points.len()];
        }
        let measured: Vec<&Point> = h.iter().map(|o| &o.point).collect();
        let data = gp::Data {
            x: self.inputs(&measured),
            y: h.iter().map(|o| o.cost_s.ln()).collect(),
            noise: vec![1e-4; h.len()],
            screened: vec![false; h.len()],
        };
        // Re-estimated on the objective's schedule: a run's time is smooth in the clocks.
        let refit = self.cost_hyper.is_none() || self.refitted_at == h.usable().len();
        match gp::Gp::fit(&data, self.cost_hyper.as_ref(), refit) {
            Some(g) => {
                self.cost_hyper = Some(g.hyper().clone());
                g.predict(&self.inputs(points)).0
            }
            None => vec![0.0; points.len()],
        }
    }

    /// CArBO's cost-cooling exponent: 1 right after the initial design (EI per unit cost),
    /// falling to 0 (plain EI) as the budget is spent.
    fn cost_exponent(&self, measured: usize) -> f64 {
        let span = self.budget.saturating_sub(self.n_init).max(1) as f64;
        (1.0 - measured.saturating_sub(self.n_init) as f64 / span).clamp(0.0, 1.0)
    }

    /// A Bayesian optimizer over `init.dims`.
    pub fn new(init: &StrategyInit) -> Bayes {
        let mut rng = ChaCha8Rng::seed_from_u64(init.seed);
        let active: Vec<usize> = (0..init.dims.len()).filter(|a| init.dims[*a] > 1).collect();
        let size: usize = init.dims.iter().product();
        // Enough points for the GP to see every active axis, but a small part of the budget.
        let n_lhs = (2 * active.len() + 1)
            .min(init.budget.saturating_sub(1).max(1))
            .min(size);
        let ln_of = |v: &[f64]| -> Vec<f64> {
            if v.len() == size && v.iter().all(|x| x.is_finite() && *x > 0.0) {
                v.iter().map(|x| x.ln()).collect()
            } else {
                Vec::new()
            }
        };
        let (prior_ln, time_ln) = (ln_of(&init.prior.value), ln_of(&init.prior.time_s));
        let mut design = vec![init.dims.iter().map(|d| d - 1).collect::<Point>()];
        if let Some(i) = crate::measure::stats::argmin(&prior_ln) {
            // The prior's minimum: where the twin (or the earlier study) says to look first.
            design.push(crate::space::point_at(&init.dims, i));
        }
        // With a prior the GP learns a residual, which needs fewer points to see each axis.
        let n_lhs = if prior_ln.is_empty() || init.options.pareto {
            n_lhs
        } else {
            active.len().saturating_sub(1).max(1).min(n_lhs)
        };
        for p in cheapest_design(&init.dims, n_lhs, &time_ln, &mut rng) {
            if !design.contains(&p) {
                design.push(p);
            }
        }
        let coords = (0..init.dims.len())
            .map(|a| (0..init.dims[a]).map(|i| init.coord(a, i)).collect())
            .collect();
        let n_init = design.len();
        Bayes {
            prior_ln,
            time_ln,
            budget: init.budget,
            n_init,
            dims: init.dims.clone(),
            coords,
            active,
            acquisition: init.options.acquisition,
            ei_stop: init.options.ei_stop,
            init: design,
            rng,
            hyper: None,
            p_rough: PRIOR_ROUGH,
            rough_fit: None,
            refitted_at: 0,
            cost_hyper: None,
            low_ei: 0,
            stopped: None,
            pareto: init.options.pareto,
        }
    }

    fn inputs(&self, points: &[&Point]) -> Array2<f64> {
        let mut x = Array2::zeros((points.len(), self.active.len()));
        for (i, p) in points.iter().enumerate() {
            for (j, a) in self.active.iter().enumerate() {
                x[[i, j]] = self.coords[*a][p[*a]];
            }
        }
        x
    }

    /// The objective's GP (its ln value less the prior's, each observation with its own noise),
    /// and the points in order. Hyper-parameters are re-estimated when `refit` (and at least
    /// every few measurements), otherwise the last estimate is kept.
    fn fit_on<'h>(&mut self, h: &'h History, refit: bool) -> Option<(gp::Gp, Vec<&'h Point>)> {
        if h.len() < 3 || self.active.is_empty() {
            return None;
        }
        let points: Vec<&Point> = h.iter().map(|o| &o.point).collect();
        let data = self.objective_data(h, &points);
        // Re-estimating costs far more than a posterior (a long replay fits hundreds of points):
        // every step while the study is small, then each time it has grown by a fifth.
        let refit = refit
            || self.hyper.is_none()
            || h.len() <= REFIT_ALWAYS
            || h.len() as f64 >= REFIT_GROWTH * self.refitted_at as f64;
        if refit {
            self.refitted_at = h.len();
        }
        let (fitted, data) = robust_fit(data, self.hyper.as_ref(), refit)?;
        // How strongly the readings reject a rough board (a likelihood ratio, the other
        // hyper-parameters kept), turned into its probability.
        let fitted_tau = fitted.hyper().tau();
        self.rough_fit = (fitted_tau < ROUGH_TAU)
            .then(|| fitted.with_tau2(&data, ROUGH_TAU.powi(2)))
            .flatten();
        self.p_rough = if fitted_tau >= ROUGH_TAU {
            1.0
        } else {
            match fitted.score_with_tau2(&data, ROUGH_TAU.powi(2)) {
                Some(rough) => {
                    let odds =
                        PRIOR_ROUGH / (1.0 - PRIOR_ROUGH) * (rough - fitted.score()).min(0.0).exp();
                    odds / (1.0 + odds)
                }
                None => 0.0,
            }
        };
        if refit {
            self.hyper = Some(fitted.hyper().clone());
        }
        Some((fitted, points))
    }

    /// What the objective's GP is fitted to: ln value less the prior's, each observation with
    /// the pooled noise of its kind over its runs.
    fn objective_data(&self, h: &History, points: &[&Point]) -> gp::Data {
        let pooled = [pooled_run_cv(h, true), pooled_run_cv(h, false)];
        gp::Data {
            x: self.inputs(points),
            y: h.iter()
                .map(|o| o.value.max(f64::MIN_POSITIVE).ln() - self.offset(&o.point))
                .collect(),
            noise: h
                .iter()
                .map(|o| noise_var(o, pooled[usize::from(!o.screened)]))
                .collect(),
            screened: h.iter().map(|o| o.screened).collect(),
        }
    }

    /// Posterior mean (ln value, the prior added back) and variance of the latent value at each
    /// measured point, in the history's order, averaged, as the search's EI is, over the board as smooth as fitted and as rough as real
    /// boards are (weighted by their probability): on a rough board a reading says more about
    /// its own configuration.
    fn measured_posterior(&self, g: &gp::Gp, points: &[&Point]) -> (Vec<f64>, Vec<f64>) {
        let (mut mu, mut var) = g.predict_measured();
        if let Some(r) = self.rough_fit.as_ref().filter(|_| self.p_rough > 0.0) {
            let (mu_r, var_r) = r.predict_measured();
            let p = self.p_rough;
            for i in 0..mu.len() {
                let m = (1.0 - p) * mu[i] + p * mu_r[i];
                var[i] =
                    (1.0 - p) * (var[i] + mu[i].powi(2)) + p * (var_r[i] + mu_r[i].powi(2)) - m * m;
                mu[i] = m;
            }
        }
        let mu = mu
            .iter()
            .zip(points)
            .map(|(m, p)| m + self.offset(p))
            .collect();
        (mu, var.into_iter().map(|v| v.max(0.0)).collect())
    }

    /// A GP of `y` at `points`, with the runs' relative variance as noise; `theta` fixes (or,
    /// with `refit`, starts) the length-scales. Returns the GP and the targets' spread.
    fn fit_y(
        &self,
        h: &History,
        points: &[&Point],
        y: Array1<f64>,
        theta: Option<&Array1<f64>>,
        refit: bool,
    ) -> Option<(Gp, f64)> {
        // Kept for the cost model, the constraints and the Pareto scalarisation: smooth
        // quantities with no structure of their own to keep.
        let mean = y.mean().unwrap_or(0.0);
        let var_y = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64;
        let noise = h.iter().map(|o| o.rel_se().powi(2)).sum::<f64>() / h.len() as f64;
        let nugget = if var_y > 0.0 {
            (noise / var_y).clamp(1e-8, 1.0)
        } else {
            1e-6
        };
        // Readings of unknown spread: the noise level is fitted (the nugget with the highest
        // likelihood), not taken from guesses.
        let nuggets: Vec<f64> = if h.iter().any(|o| o.spread_unknown) {
            vec![nugget, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3]
        } else {
            vec![nugget]
        };
        let x = self.inputs(points);
        nuggets
            .into_iter()
            .filter_map(|n| {
                let mut params = Gp::params(ConstantMean::default(), Matern52Corr::default())
                    .nugget(n)
                    .n_start(4);
                match (theta, refit) {
                    (Some(t), false) if t.len() == self.active.len() => {
                        params = params.theta_tuning(ThetaTuning::Fixed(t.clone()));
                    }
                    (Some(t), true) if t.len() == self.active.len() => {
                        params = params.theta_init(t.clone());
                    }
                    _ => {}
                }
                params.fit(&Dataset::new(x.clone(), y.clone())).ok()
            })
            .max_by(|a, b| a.likelihood().total_cmp(&b.likelihood()))
            .map(|gp| (gp, var_y.sqrt()))
    }

    /// Probability that each of `points` meets every constraint, from one GP per constraint
    /// (all ones without constraints, or when a fit fails).
    fn feasibility(&self, h: &History, points: &[&Point]) -> Vec<f64> {
        let n_con = h.iter().map(|o| o.constraints.len()).min().unwrap_or(0);
        let mut pof = vec![1.0; points.len()];
        if n_con == 0 || h.len() < 3 {
            return pof;
        }
        let measured: Vec<&Point> = h.iter().map(|o| &o.point).collect();
        let normal = Normal::standard();
        for k in 0..n_con {
            let y: Array1<f64> = h.iter().map(|o| o.constraints[k]).collect();
            let Some((gp, _)) = self.fit_y(h, &measured, y, None, true) else {
                continue;
            };
            let x = self.inputs(points);
            let (Ok(mu), Ok(var)) = (gp.predict(&x), gp.predict_var(&x)) else {
                continue;
            };
            for i in 0..points.len() {
                let sd = var[i].max(0.0).sqrt();
                pof[i] *= if sd < 1e-12 {
                    f64::from(u8::from(mu[i] <= 0.0))
                } else {
                    normal.cdf(-mu[i] / sd)
                };
            }
        }
        pof
    }

    /// A Pareto study's next point: expected improvement of an augmented Chebyshev
    /// scalarisation of (log energy, log latency), both scaled to [0, 1] over what was measured,
    /// with a weight that rotates from one measurement to the next (ParEGO).
    fn ask_pareto(&mut self, h: &History, free: &[Point]) -> Option<Point> {
        const WEIGHTS: [f64; 11] = [0.5, 0.0, 1.0, 0.2, 0.8, 0.4, 0.6, 0.1, 0.9, 0.3, 0.7];
        let w = WEIGHTS[h.len() % WEIGHTS.len()];
        let scale = |v: Vec<f64>| {
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(*x), b.max(*x))
                });
            v.into_iter()
                .map(|x| if hi > lo { (x - lo) / (hi - lo) } else { 0.0 })
                .collect::<Vec<_>>()
        };
        let e = scale(
            h.iter()
                .map(|o| o.value.max(f64::MIN_POSITIVE).ln())
                .collect(),
        );
        let l = scale(
            h.iter()
                .map(|o| o.latency_ms.max(f64::MIN_POSITIVE).ln())
                .collect(),
        );
        let y: Array1<f64> = e
            .iter()
            .zip(&l)
            .map(|(e, l)| (w * e).max((1.0 - w) * l) + 0.05 * (w * e + (1.0 - w) * l))
            .collect();
        let points: Vec<&Point> = h.iter().map(|o| &o.point).collect();
        let any_free = |rng: &mut ChaCha8Rng| Some(free[rng.random_range(0..free.len())].clone());
        let Some((gp, _)) = self.fit_y(h, &points, y.clone(), None, true) else {
            return any_free(&mut self.rng);
        };
        let refs: Vec<&Point> = free.iter().collect();
        let x = self.inputs(&refs);
        let (Ok(mu), Ok(var)) = (gp.predict(&x), gp.predict_var(&x)) else {
            return any_free(&mut self.rng);
        };
        let incumbent = y.iter().copied().fold(f64::INFINITY, f64::min);
        let normal = Normal::standard();
        let best = (0..free.len())
            .map(|i| (i, expected_improvement(incumbent - mu[i], var[i], &normal)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?
            .0;
        Some(free[best].clone())
    }

    /// The next point by the acquisition function, with the best plain EI (times the
    /// probability of feasibility) for the stopping rule (infinite under LCB, which never stops).
    /// EI is chosen per expected cost to a cooling power (CArBO).
    fn acquire(
        &mut self,
        h: &History,
        free: &[&Point],
        mu: &[f64],
        var: &[f64],
        pof: &[f64],
        incumbent: f64,
    ) -> Option<(usize, f64)> {
        let normal = Normal::standard();
        match self.acquisition {
            Acquisition::Ei => {
                let ln_cost = self.ln_cost(h, free);
                // Configurations being measured elsewhere are not budget spent yet.
                let alpha = self.cost_exponent(h.iter().filter(|o| !o.pending).count());
                // EI averaged over the board as smooth as fitted and as rough as real boards
                // are, weighted by how probable each is.
                let extra = (ROUGH_TAU.powi(2)
                    - self.hyper.as_ref().map_or(0.0, |h| h.tau().powi(2)))
                .max(0.0);
                let p = self.p_rough;
                let fitted: Vec<f64> = (0..free.len())
                    .map(|i| expected_improvement(incumbent - mu[i], var[i], &normal) * pof[i])
                    .collect();
                let ei: Vec<f64> = (0..free.len())
                    .map(|i| {
                        let rough =
                            expected_improvement(incumbent - mu[i], var[i] + extra, &normal);
                        (1.0 - p) * fitted[i] + p * rough * pof[i]
                    })
                    .collect();
                let per_cost: Vec<f64> = (0..free.len())
                    .map(|i| -(ei[i].max(1e-300).ln() - alpha * ln_cost[i]))
                    .collect();
                let chosen = crate::measure::stats::argmin(&per_cost)?;
                // Low enough to stop: the board looks smooth and the fit expects little, or
                // even a rough board would give almost nothing more.
                let best_fitted = fitted.iter().copied().fold(0.0, f64::max);
                let best_mixed = ei.iter().copied().fold(0.0, f64::max);
                let low = (p < SMOOTH_ENOUGH && best_fitted < self.ei_stop)
                    || best_mixed < self.ei_stop * ROUGH_STOP;
                Some((
                    chosen,
                    if low {
                        0.0
                    } else {
                        best_mixed.max(self.ei_stop)
                    },
                ))
            }
            Acquisition::Lcb { kappa } => {
                let (i, _) = (0..free.len())
                    .map(|i| (i, mu[i] - kappa * var[i].max(0.0).sqrt() - pof[i].ln()))
                    .min_by(|a, b| a.1.total_cmp(&b.1))?;
                Some((i, f64::INFINITY))
            }
        }
    }

    /// The incumbent's most promising unmeasured axis neighbour that is likely feasible (its
    /// index in `free`): two steps along each axis, one with a prior, which already knows the
    /// shape around the incumbent.
    fn unmeasured_neighbour(
        &self,
        inc: &Point,
        all: &History,
        free: &[Point],
        pof: &[f64],
        mu: &[f64],
    ) -> Option<usize> {
        let dims = &self.dims;
        let steps = if self.prior_ln.is_empty() {
            NEIGHBOUR_STEPS
        } else {
            1
        };
        self.active
            .iter()
            .flat_map(|a| {
                (-steps..=steps).filter(|d| *d != 0).filter_map(move |d| {
                    let v = inc[*a] as i64 + d;
                    (v >= 0 && v < dims[*a] as i64).then(|| {
                        let mut q = inc.clone();
                        q[*a] = v as usize;
                        q
                    })
                })
            })
            .filter(|q| !all.contains(q))
            .filter_map(|q| free.iter().position(|f| *f == q))
            .filter(|i| pof[*i] >= 0.5)
            .min_by(|a, b| mu[*a].total_cmp(&mu[*b]))
    }

    /// Late in the budget, only the configurations predicted lowest are worth a measurement:
    /// far corners keep a large uncertainty, but on a landscape with a flat basin and sharp
    /// dips the budget left is better spent sampling the basin. Zeroes the rest's `pof`.
    fn focus(&self, measured: usize, mu: &[f64], pof: &mut [f64]) {
        let focus = FOCUS_PER_MEASUREMENT * self.budget.saturating_sub(measured) + FOCUS_MIN;
        if focus < mu.len() {
            let mut order: Vec<usize> = (0..mu.len()).collect();
            order.sort_by(|a, b| mu[*a].total_cmp(&mu[*b]));
            for i in &order[focus..] {
                pof[*i] = 0.0;
            }
        }
    }

    /// Why the search stops after three low expected improvements.
    fn low_ei_words(&self) -> String {
        if self.p_rough < SMOOTH_ENOUGH {
            format!(
                "the best expected improvement stayed below {:.2} % of the incumbent three times in a row, with the incumbent's neighbours measured, and the readings made a board as rough as real ones improbable ({:.0} %)",
                self.ei_stop * 100.0,
                self.p_rough * 100.0
            )
        } else {
            format!(
                "the best expected improvement stayed below {:.3} % of the incumbent three times in a row, with the incumbent's neighbours measured, even for a board as rough as real ones",
                self.ei_stop * ROUGH_STOP * 100.0
            )
        }
    }

    fn random_unmeasured(&mut self, h: &History) -> Option<Point> {
        let free: Vec<Point> = all_points(&self.dims).filter(|p| !h.contains(p)).collect();
        if free.is_empty() {
            None
        } else {
            Some(free[self.rng.random_range(0..free.len())].clone())
        }
    }
}

impl Strategy for Bayes {
    fn name(&self) -> &'static str {
        "bayes"
    }

    fn ask(&mut self, all: &History) -> Option<Point> {
        // Failed configurations are never asked again, but they are not data for the surrogate.
        let usable = all.usable();
        let h = &usable;
        if self.stopped.is_some() {
            return None;
        }
        if let Some(p) = self.init.iter().find(|p| !all.contains(p)) {
            return Some(p.clone());
        }
        let free: Vec<Point> = all_points(&self.dims)
            .filter(|p| !all.contains(p))
            .collect();
        if free.is_empty() {
            self.stopped = Some("every configuration was measured".into());
            return None;
        }
        if self.pareto && h.len() >= 3 {
            return self.ask_pareto(h, &free);
        }
        let Some((g, points)) = self.fit_on(h, false) else {
            // Too few points or a degenerate fit: keep exploring.
            return self.random_unmeasured(all);
        };
        let free_refs: Vec<&Point> = free.iter().collect();
        let (mu, var) = g.predict(&self.inputs(&free_refs));
        // The GP models the residual from the prior: add the prior back.
        let mu: Vec<f64> = (0..free.len())
            .map(|i| mu[i] + self.offset(&free[i]))
            .collect();
        // With constraints: EI times the probability of meeting them, against the best
        // feasible point; before any point is feasible, the most probably feasible one.
        let mut pof = self.feasibility(h, &free_refs);
        let likeliest = pof.iter().copied().fold(0.0, f64::max);
        self.focus(h.len(), &mu, &mut pof);
        let (mu_measured, _) = self.measured_posterior(&g, &points);
        let feasible: Vec<bool> = h.iter().map(|o| o.feasible()).collect();
        let incumbent = (0..points.len())
            .filter(|i| feasible[*i])
            .map(|i| mu_measured[i])
            .fold(f64::INFINITY, f64::min);
        if !incumbent.is_finite() {
            // Nothing measured meets the limits. Once the initial design is in, a search whose
            // models give no unmeasured configuration a real chance stops and says so, rather
            // than spend the budget (hours of board time) on limits nothing meets.
            if h.len() >= self.n_init && likeliest < HOPELESS {
                self.stopped = Some(format!(
                    "no configuration can meet the limits: none of the {} measured does, and by the models of the limits fitted to them the likeliest of the rest would with probability {likeliest:.1e}",
                    h.len()
                ));
                return None;
            }
            let i = crate::measure::stats::argmin(&pof.iter().map(|p| -p).collect::<Vec<_>>())?;
            return Some(free[i].clone());
        }
        let (best, score) = self.acquire(h, &free_refs, &mu, &var, &pof, incumbent)?;
        // EI is in log-energy units: a relative improvement of the incumbent.
        if score >= self.ei_stop {
            self.low_ei = 0;
            return Some(free[best].clone());
        }
        self.low_ei += 1;
        // The surrogate is smooth and the grid coarse: before believing it, measure the
        // incumbent's unmeasured axis neighbours (those likely feasible), most promising first.
        let masked: Vec<f64> = (0..points.len())
            .map(|i| {
                if feasible[i] {
                    mu_measured[i]
                } else {
                    f64::INFINITY
                }
            })
            .collect();
        let inc = points[crate::measure::stats::argmin(&masked)?];
        let neighbour = self.unmeasured_neighbour(inc, all, &free, &pof, &mu);
        if let Some(i) = neighbour {
            return Some(free[i].clone());
        }
        // With readings of unknown spread a low EI may be the noise talking: spend the budget.
        if self.low_ei >= 3 && !h.iter().any(|o| o.spread_unknown) {
            self.stopped = Some(self.low_ei_words());
            return None;
        }
        Some(free[best].clone())
    }

    fn recommend(&mut self, all: &History) -> Option<Point> {
        let usable = all.usable();
        let h = &usable;
        // The feasible measured point with the lowest posterior mean; with none feasible, the
        // least infeasible.
        if !h.iter().any(|o| o.feasible()) {
            return h.best().map(|o| o.point.clone());
        }
        match self.fit_on(h, self.hyper.is_none()) {
            Some((g, points)) => {
                let (mu, _) = self.measured_posterior(&g, &points);
                let masked: Vec<f64> = h
                    .iter()
                    .zip(&mu)
                    .map(|(o, m)| if o.feasible() { *m } else { f64::INFINITY })
                    .collect();
                let i = crate::measure::stats::argmin(&masked)?;
                Some(points[i].clone())
            }
            None => h.best().map(|o| o.point.clone()),
        }
    }

    fn handles_constraints(&self) -> bool {
        true
    }

    fn pools_readings(&self) -> bool {
        true
    }

    fn predict(&mut self, all: &History, points: &[Point]) -> Option<Vec<f64>> {
        let usable = all.usable();
        let h = &usable;
        let (g, measured) = self.fit_on(h, self.hyper.is_none())?;
        // A measured point's estimate keeps its own structure; an unmeasured one is the trend.
        let (mu_m, _) = self.measured_posterior(&g, &measured);
        let fresh: Vec<&Point> = points.iter().filter(|p| !h.contains(p)).collect();
        let (mu_f, _) = g.predict(&self.inputs(&fresh));
        let mut fresh_mu = mu_f.into_iter();
        Some(
            points
                .iter()
                .map(|p| match measured.iter().position(|q| *q == p) {
                    Some(i) => mu_m[i].exp(),
                    None => (fresh_mu.next().unwrap_or(0.0) + self.offset(p)).exp(),
                })
                .collect(),
        )
    }

    fn estimates(&mut self, all: &History) -> Option<std::collections::HashMap<Point, (f64, f64)>> {
        let usable = all.usable();
        let (g, points) = self.fit_on(&usable, self.hyper.is_none())?;
        let (mu, var) = self.measured_posterior(&g, &points);
        Some(
            points
                .into_iter()
                .zip(mu.into_iter().zip(var))
                .map(|(p, e)| (p.clone(), e))
                .collect(),
        )
    }

    fn check(&mut self, all: &History) -> Option<super::base::ModelCheck> {
        let usable = all.usable();
        if usable.len() < 3 || self.active.is_empty() {
            return None;
        }
        // A fit from scratch: the check depends on the measurements alone, not on how the
        // search reached them (a stored study's report says what tune said).
        let points: Vec<&Point> = usable.iter().map(|o| &o.point).collect();
        let (g, _) = robust_fit(self.objective_data(&usable, &points), None, true)?;
        let z = g.loo_z();
        let loo_rms = (z.iter().map(|z| z * z).sum::<f64>() / z.len().max(1) as f64).sqrt();
        let (cv, df) = pooled_noise(&usable, true)
            .or_else(|| pooled_noise(&usable, false))
            .unwrap_or((0.0, 0.0));
        Some(super::base::ModelCheck {
            structure_pct: g.hyper().tau() * 100.0,
            noise_pct: cv * 100.0,
            noise_df: df,
            screening_offset_pct: g.screening_offset() * 100.0,
            loo_rms,
            poor: !(0.5..=2.0).contains(&loo_rms),
        })
    }

    fn stop_reason(&self) -> String {
        self.stopped
            .clone()
            .unwrap_or_else(|| "the strategy had nothing more to try".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Observation;

    #[test]
    fn latin_hypercube_covers_each_axis_evenly() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pts = latin_hypercube(&[15, 12, 5], 5, &mut rng);
        assert_eq!(pts.len(), 5);
        for axis in 0..3 {
            let mut strata: Vec<usize> = pts
                .iter()
                .map(|p| p[axis] * 5 / [15, 12, 5][axis])
                .collect();
            strata.sort();
            assert_eq!(strata, vec![0, 1, 2, 3, 4], "axis {axis}");
        }
    }

    /// A smooth bowl over a 15 x 12 x 5 grid, minimum 100 at (9, 5, 3).
    fn bowl(p: &[usize]) -> f64 {
        100.0
            * (1.0
                + 0.01 * (p[0] as f64 - 9.0).powi(2)
                + 0.02 * (p[1] as f64 - 5.0).powi(2)
                + 0.03 * (p[2] as f64 - 3.0).powi(2))
    }

    #[test]
    fn finds_the_minimum_of_a_smooth_bowl_quickly() {
        let init = StrategyInit::new(vec![15, 12, 5], 4, 40);
        let mut s = Bayes::new(&init);
        let f = bowl;
        let h = run_on(&mut s, &f);
        let rec = s.recommend(&h).unwrap();
        assert!(
            f(&rec) <= 101.0,
            "recommended {rec:?} after {} points",
            h.len()
        );
    }

    #[test]
    fn with_a_constraint_it_recommends_the_best_feasible_point() {
        // The bowl's minimum (axis 0 at 9) is outside the limit axis 0 <= 5; the constrained
        // minimum is on the boundary, at 5.
        let init = StrategyInit::new(vec![15, 12, 5], 4, 40);
        let mut s = Bayes::new(&init);
        let f = bowl;
        let g = |p: &[usize]| ((p[0] as f64 + 1.0) / 6.0).ln();
        let mut h = History::default();
        while h.len() < 40 {
            let Some(p) = s.ask(&h) else { break };
            h.push(Observation {
                value: f(&p),
                constraints: vec![g(&p)],
                point: p,
                cv: 0.0,
                runs: 3,
                ..Default::default()
            });
        }
        let rec = s.recommend(&h).unwrap();
        assert!(g(&rec) <= 0.0, "recommended an infeasible {rec:?}");
        let best_feasible = f(&[5, 5, 3]);
        assert!(
            f(&rec) <= best_feasible * 1.01,
            "recommended {rec:?} ({}) after {} points, feasible minimum {best_feasible}",
            f(&rec),
            h.len()
        );
        // It did not waste the budget deep in the infeasible region.
        let infeasible = h.iter().filter(|o| !o.feasible()).count();
        assert!(
            infeasible < h.len() / 2,
            "{infeasible} of {} infeasible",
            h.len()
        );
    }

    #[test]
    fn a_pareto_study_spreads_over_both_objectives() {
        // Energy falls and latency rises along axis 0: every point is on the front.
        let init = StrategyInit::new(vec![15, 12, 5], 2, 30).with_options(
            crate::strategy::StrategyOptions {
                pareto: true,
                ..Default::default()
            },
        );
        let mut s = Bayes::new(&init);
        let mut h = History::default();
        while h.len() < 30 {
            let Some(p) = s.ask(&h) else { break };
            let x = p[0] as f64 + 1.0;
            h.push(Observation {
                value: 100.0 / x + 0.5 * p[1] as f64 + p[2] as f64,
                latency_ms: 10.0 * x + 0.3 * p[1] as f64 + p[2] as f64,
                point: p,
                cv: 0.0,
                runs: 3,
                ..Default::default()
            });
        }
        assert_eq!(h.len(), 30, "a Pareto study spends its budget");
        let lo = h.iter().filter(|o| o.point[0] <= 4).count();
        let hi = h.iter().filter(|o| o.point[0] >= 10).count();
        assert!(
            lo >= 3 && hi >= 3,
            "both ends of the front: {lo} low, {hi} high"
        );
    }

    /// Runs `s` on `f` until it stops or 40 points; returns the points measured in order.
    fn run_on(s: &mut Bayes, f: &dyn Fn(&[usize]) -> f64) -> History {
        let mut h = History::default();
        while h.len() < 40 {
            let Some(p) = s.ask(&h) else { break };
            assert!(!h.contains(&p), "{p:?} asked twice");
            h.push(Observation {
                value: f(&p),
                point: p,
                cv: 0.0,
                runs: 3,
                ..Default::default()
            });
        }
        h
    }

    /// A prior over the bowl's grid, centred at `c` (the bowl's own centre is right).
    fn bowl_prior(c: [f64; 3]) -> crate::strategy::GridPrior {
        let dims = [15, 12, 5];
        let value = (0..15 * 12 * 5)
            .map(|i| {
                let p = crate::space::point_at(&dims, i);
                100.0
                    * (1.0
                        + 0.01 * (p[0] as f64 - c[0]).powi(2)
                        + 0.02 * (p[1] as f64 - c[1]).powi(2)
                        + 0.03 * (p[2] as f64 - c[2]).powi(2))
            })
            .collect();
        crate::strategy::GridPrior {
            value,
            time_s: Vec::new(),
        }
    }

    #[test]
    fn a_right_prior_saves_measurements_and_a_wrong_one_costs_little() {
        let plain = run_on(
            &mut Bayes::new(&StrategyInit::new(vec![15, 12, 5], 4, 40)),
            &bowl,
        );
        let with = |c| {
            let init = StrategyInit::new(vec![15, 12, 5], 4, 40).with_prior(bowl_prior(c));
            let mut s = Bayes::new(&init);
            let h = run_on(&mut s, &bowl);
            let rec = s.recommend(&h).unwrap();
            (h.len(), bowl(&rec))
        };
        let (right_n, right_e) = with([9.0, 5.0, 3.0]);
        // Wrong by a third of each axis and more: the optimum is elsewhere.
        let (wrong_n, wrong_e) = with([3.0, 10.0, 0.0]);
        eprintln!("points: none {}, right prior {right_n}, wrong prior {wrong_n}; energy {right_e:.2} / {wrong_e:.2}", plain.len());
        assert!(right_e <= 100.5 && wrong_e <= 101.0, "{right_e} {wrong_e}");
        assert!(
            right_n < plain.len(),
            "right prior {right_n}, none {}",
            plain.len()
        );
        assert!(
            wrong_n <= plain.len() + 8,
            "wrong prior {wrong_n}, none {}",
            plain.len()
        );
    }

    #[test]
    fn a_time_model_makes_the_initial_design_cheaper() {
        // Higher indices are faster, as higher clocks are.
        let dims = [15usize, 12, 5];
        let time_s: Vec<f64> = (0..15 * 12 * 5)
            .map(|i| {
                let p = crate::space::point_at(&dims, i);
                100.0 / ((p[0] + 1) * (p[1] + 1)) as f64
            })
            .collect();
        let cost = |with_time: bool, seed| {
            let prior = crate::strategy::GridPrior {
                value: Vec::new(),
                time_s: if with_time {
                    time_s.clone()
                } else {
                    Vec::new()
                },
            };
            let s = Bayes::new(&StrategyInit::new(dims.to_vec(), seed, 40).with_prior(prior));
            s.init.iter().map(|p| time_s[flat(&dims, p)]).sum::<f64>()
        };
        let (cheap, plain): (f64, f64) = (1..=10).fold((0.0, 0.0), |(a, b), seed| {
            (a + cost(true, seed), b + cost(false, seed))
        });
        assert!(
            cheap < 0.7 * plain,
            "designs cost {cheap} with a time model, {plain} without"
        );
    }
}
