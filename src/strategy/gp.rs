//! The Gaussian process behind `bayes`'s objective, built for rough landscapes.
//!
//! A real board's energy is a smooth trend plus a persistent structure per configuration (dips
//! and bumps that stay when it is measured again), read through run-to-run noise. So the model
//! of one observation (ln energy, less the prior's prediction) is
//!
//! ```text
//! y_i = h_i' beta + f(x_i) + g(x_i) + e_i
//! f ~ GP(0, sf2 * Matern52(x, x'; ell))   the trend, one length-scale per axis
//! g ~ iid N(0, tau2) per configuration    the structure: a measured configuration keeps it
//! e_i ~ N(0, n_i)                        the noise of its runs (its own, per observation)
//! ```
//!
//! with `h_i` a constant and, where both kinds are present, an indicator of a screening run (a
//! short run reads a little high: the settling after a clock change weighs more in it). The
//! hyper-parameters (`ell`, `sf2`, `tau2`) maximise the marginal likelihood (Nelder-Mead from
//! argmin, a few starts, `beta` profiled out by generalised least squares), with weak priors
//! that keep them in a sane range on a dozen points.
//!
//! What it gives that a single-nugget GP cannot: at a measured configuration the latent value
//! `f + g` follows its own readings as closely as their noise allows (a sharp dip is not smoothed
//! away), at an unmeasured one the uncertainty keeps `tau2` (its structure is unknown until it is
//! measured), and on a smooth landscape `tau2` fits to nearly nothing, which is the plain GP.
//! egobox-gp has one nugget for every point and no such term, hence this module.

use argmin::core::{CostFunction, Error, Executor};
use argmin::solver::neldermead::NelderMead;
use linfa_linalg::cholesky::Cholesky;
use linfa_linalg::triangular::{SolveTriangular, UPLO};
use ndarray::{Array1, Array2, Axis};

/// Hyper-parameters, in logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    /// ln length-scale per input axis (inputs lie in [0, 1]).
    pub ln_ell: Vec<f64>,
    /// ln variance of the trend.
    pub ln_sf2: f64,
    /// ln variance of the per-configuration structure.
    pub ln_tau2: f64,
}

impl Hyper {
    fn to_vec(&self) -> Vec<f64> {
        let mut v = self.ln_ell.clone();
        v.push(self.ln_sf2);
        v.push(self.ln_tau2);
        v
    }
    fn from_slice(v: &[f64]) -> Hyper {
        let d = v.len() - 2;
        Hyper {
            ln_ell: v[..d].to_vec(),
            ln_sf2: v[d],
            ln_tau2: v[d + 1],
        }
    }
    /// The structure's standard deviation (ln units: relative).
    pub fn tau(&self) -> f64 {
        (0.5 * self.ln_tau2).exp()
    }
}

/// What the GP is fitted to.
#[derive(Debug, Clone)]
pub struct Data {
    /// Inputs, one row per observation (coordinates in [0, 1]).
    pub x: Array2<f64>,
    /// Targets.
    pub y: Vec<f64>,
    /// Each target's noise variance (its runs' squared relative standard error).
    pub noise: Vec<f64>,
    /// Whether each target came from screening runs.
    pub screened: Vec<bool>,
}

/// Bounds of the ln hyper-parameters, and the centres and widths of their weak priors.
const LN_ELL: (f64, f64) = (-3.5, 3.0);
const LN_ELL_PRIOR: (f64, f64) = (-0.7, 1.5);
const LN_SF2: (f64, f64) = (-16.0, 2.0);
const LN_TAU2: (f64, f64) = (-18.0, -2.0);
/// The structure's prior: a few percent, widely spread.
const LN_TAU2_PRIOR: (f64, f64) = (-9.0, 3.0);

/// Above this many points, a fit with a warm start starts from it alone.
const WARM_ONLY: usize = 30;

/// Matern 5/2 correlation at scaled distance `r`.
fn matern52(r: f64) -> f64 {
    let s = 5f64.sqrt() * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

/// Correlations between the rows of `a` and of `b` under length-scales `ell`.
fn correlation(a: &Array2<f64>, b: &Array2<f64>, ell: &[f64]) -> Array2<f64> {
    let mut r = Array2::zeros((a.nrows(), b.nrows()));
    for (i, xa) in a.outer_iter().enumerate() {
        for (j, xb) in b.outer_iter().enumerate() {
            let d2: f64 = xa
                .iter()
                .zip(xb.iter())
                .zip(ell)
                .map(|((p, q), l)| ((p - q) / l).powi(2))
                .sum();
            r[[i, j]] = matern52(d2.sqrt());
        }
    }
    r
}

/// A GP fitted to [`Data`].
#[derive(Debug, Clone)]
pub struct Gp {
    x: Array2<f64>,
    hyper: Hyper,
    /// Lower Cholesky factor of the observations' covariance.
    l: Array2<f64>,
    /// `K^-1 (y - H beta)`.
    alpha: Array1<f64>,
    /// Mean coefficients: constant, and the screening offset where fitted.
    beta: Vec<f64>,
    /// Each observation's noise variance.
    noise: Vec<f64>,
    /// The targets less their mean.
    resid: Array1<f64>,
    /// ln marginal likelihood plus the hyper-priors.
    score: f64,
}

/// Everything one evaluation of the likelihood computes.
struct Eval {
    l: Array2<f64>,
    alpha: Array1<f64>,
    beta: Vec<f64>,
    resid: Array1<f64>,
    score: f64,
}

/// Solves `L L' z = b` for a lower-triangular `L`.
pub(crate) fn chol_solve(l: &Array2<f64>, b: &Array2<f64>) -> Option<Array2<f64>> {
    let z = l.solve_triangular(b, UPLO::Lower).ok()?;
    l.t().to_owned().solve_triangular(&z, UPLO::Upper).ok()
}

/// The design matrix: a constant, and the screening indicator when both kinds are present.
fn design(d: &Data) -> Array2<f64> {
    let both = d.screened.iter().any(|s| *s) && d.screened.iter().any(|s| !*s);
    let p = if both { 2 } else { 1 };
    let mut h = Array2::ones((d.y.len(), p));
    if both {
        for (i, s) in d.screened.iter().enumerate() {
            h[[i, 1]] = f64::from(u8::from(*s));
        }
    }
    h
}

/// Log marginal likelihood (beta by generalised least squares) plus the hyper-priors.
fn evaluate(d: &Data, h: &Hyper) -> Option<Eval> {
    let n = d.y.len();
    let ell: Vec<f64> = h.ln_ell.iter().map(|l| l.exp()).collect();
    let (sf2, tau2) = (h.ln_sf2.exp(), h.ln_tau2.exp());
    let mut k = correlation(&d.x, &d.x, &ell) * sf2;
    for i in 0..n {
        k[[i, i]] += tau2 + d.noise[i] + 1e-10;
    }
    let l = k.cholesky().ok()?;
    let hm = design(d);
    let y = Array1::from(d.y.clone());
    let kinv_h = chol_solve(&l, &hm)?;
    let kinv_y = chol_solve(&l, &y.clone().insert_axis(Axis(1)))?
        .column(0)
        .to_owned();
    // beta = (H' K^-1 H)^-1 H' K^-1 y, for one or two columns.
    let a = hm.t().dot(&kinv_h);
    let b = hm.t().dot(&kinv_y);
    let beta = match a.nrows() {
        1 => vec![b[0] / a[[0, 0]]],
        _ => {
            let det = a[[0, 0]] * a[[1, 1]] - a[[0, 1]] * a[[1, 0]];
            if det.abs() < 1e-300 {
                return None;
            }
            vec![
                (a[[1, 1]] * b[0] - a[[0, 1]] * b[1]) / det,
                (a[[0, 0]] * b[1] - a[[1, 0]] * b[0]) / det,
            ]
        }
    };
    let resid = &y - &hm.dot(&Array1::from(beta.clone()));
    let alpha = chol_solve(&l, &resid.clone().insert_axis(Axis(1)))?
        .column(0)
        .to_owned();
    let log_det: f64 = (0..n).map(|i| l[[i, i]].ln()).sum::<f64>();
    let lml =
        -0.5 * resid.dot(&alpha) - log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    let prior = |v: f64, (c, w): (f64, f64)| -0.5 * ((v - c) / w).powi(2);
    let log_prior = h
        .ln_ell
        .iter()
        .map(|v| prior(*v, LN_ELL_PRIOR))
        .sum::<f64>()
        + prior(h.ln_tau2, LN_TAU2_PRIOR);
    let score = lml + log_prior;
    score.is_finite().then_some(Eval {
        l,
        alpha,
        beta,
        resid,
        score,
    })
}

/// Negative score for Nelder-Mead, with the bounds as a steep wall.
struct Objective<'a> {
    data: &'a Data,
}

fn clamp_to_bounds(v: &[f64]) -> (Vec<f64>, f64) {
    let d = v.len() - 2;
    let mut excess = 0.0;
    let out = v
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let (lo, hi) = match i {
                i if i < d => LN_ELL,
                i if i == d => LN_SF2,
                _ => LN_TAU2,
            };
            let c = x.clamp(lo, hi);
            excess += (x - c).abs();
            c
        })
        .collect();
    (out, excess)
}

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> Result<f64, Error> {
        let (v, excess) = clamp_to_bounds(p);
        Ok(match evaluate(self.data, &Hyper::from_slice(&v)) {
            Some(e) => -e.score + 1e3 * excess,
            None => 1e12,
        })
    }
}

/// Nelder-Mead from `start`: the best point it found.
fn optimise(data: &Data, start: &Hyper, iters: u64) -> Option<(Hyper, f64)> {
    let x0 = start.to_vec();
    let mut simplex = vec![x0.clone()];
    for i in 0..x0.len() {
        let mut v = x0.clone();
        v[i] += if i < x0.len() - 2 { 0.7 } else { 1.5 };
        simplex.push(v);
    }
    let solver = NelderMead::new(simplex).with_sd_tolerance(1e-4).ok()?;
    let res = Executor::new(Objective { data }, solver)
        .configure(|s| s.max_iters(iters))
        .run()
        .ok()?;
    let best = res.state().best_param.clone()?;
    let (v, _) = clamp_to_bounds(&best);
    Some((Hyper::from_slice(&v), res.state().best_cost))
}

impl Gp {
    /// Fits the hyper-parameters from a few starts (`warm`, the last fit's, among them) and
    /// returns the best; with `refit` false, `warm` is kept as it is. `None` when no start
    /// gives a usable fit.
    pub fn fit(data: &Data, warm: Option<&Hyper>, refit: bool) -> Option<Gp> {
        let n = data.y.len();
        let dims = data.x.ncols();
        if n == 0 || data.noise.len() != n || data.screened.len() != n {
            return None;
        }
        let mean = data.y.iter().sum::<f64>() / n as f64;
        let var = (data.y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).max(1e-6);
        let start = |sf: f64, tau: f64, ell: f64| Hyper {
            ln_ell: vec![ell.ln(); dims],
            ln_sf2: (var * sf).ln(),
            ln_tau2: (var * tau).max(1e-7).ln(),
        };
        let hyper = match (warm.filter(|w| w.ln_ell.len() == dims), refit) {
            (Some(w), false) => w.clone(),
            (w, true) if n >= 3 => {
                // A warm start on many points needs no fresh ones: the data changed by a few
                // points, and each start costs hundreds of factorisations.
                let mut starts = match w {
                    Some(w) if n > WARM_ONLY => vec![w.clone()],
                    _ => vec![start(0.9, 0.05, 0.5), start(0.3, 0.6, 0.3)],
                };
                if n <= WARM_ONLY {
                    starts.extend(w.cloned());
                }
                let iters = if w.is_some() { 120 } else { 200 };
                starts
                    .iter()
                    .filter_map(|s| optimise(data, s, iters))
                    .min_by(|a, b| a.1.total_cmp(&b.1))?
                    .0
            }
            (w, _) => w.cloned().unwrap_or_else(|| start(0.9, 0.05, 0.5)),
        };
        let e = evaluate(data, &hyper)?;
        Some(Gp {
            x: data.x.clone(),
            hyper,
            l: e.l,
            alpha: e.alpha,
            beta: e.beta,
            noise: data.noise.clone(),
            resid: e.resid,
            score: e.score,
        })
    }

    /// The same fit with the structure's variance set to `tau2` (the other hyper-parameters
    /// kept).
    pub fn with_tau2(&self, data: &Data, tau2: f64) -> Option<Gp> {
        let h = Hyper {
            ln_tau2: tau2.max(1e-300).ln(),
            ..self.hyper.clone()
        };
        Gp::fit(data, Some(&h), false)
    }

    /// The score the same fit would have with the structure's variance set to `tau2` (the
    /// other hyper-parameters kept): how much worse the data fit that structure.
    pub fn score_with_tau2(&self, data: &Data, tau2: f64) -> Option<f64> {
        let h = Hyper {
            ln_tau2: tau2.max(1e-300).ln(),
            ..self.hyper.clone()
        };
        evaluate(data, &h).map(|e| e.score)
    }

    /// The fitted hyper-parameters.
    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// The score (ln marginal likelihood plus priors) of the fit.
    pub fn score(&self) -> f64 {
        self.score
    }

    /// How much higher screening runs read than full-length ones (ln units; 0 when not fitted).
    pub fn screening_offset(&self) -> f64 {
        self.beta.get(1).copied().unwrap_or(0.0)
    }

    fn ell(&self) -> Vec<f64> {
        self.hyper.ln_ell.iter().map(|l| l.exp()).collect()
    }

    /// Mean and variance of the latent value (trend plus structure, what a full-length,
    /// noiseless measurement reads) at unmeasured configurations `xs`.
    pub fn predict(&self, xs: &Array2<f64>) -> (Vec<f64>, Vec<f64>) {
        let (sf2, tau2) = (self.hyper.ln_sf2.exp(), self.hyper.ln_tau2.exp());
        let ks = correlation(xs, &self.x, &self.ell()) * sf2;
        self.posterior(ks, sf2 + tau2)
    }

    /// Mean and variance of the latent value at each measured configuration, in order.
    pub fn predict_measured(&self) -> (Vec<f64>, Vec<f64>) {
        let (sf2, tau2) = (self.hyper.ln_sf2.exp(), self.hyper.ln_tau2.exp());
        let mut ks = correlation(&self.x, &self.x, &self.ell()) * sf2;
        for i in 0..ks.nrows() {
            ks[[i, i]] += tau2;
        }
        self.posterior(ks, sf2 + tau2)
    }

    /// Posterior mean and variance at points whose covariances with the observations are the
    /// rows of `ks`, each with prior variance `prior_var`.
    fn posterior(&self, ks: Array2<f64>, prior_var: f64) -> (Vec<f64>, Vec<f64>) {
        let mean: Vec<f64> = ks
            .dot(&self.alpha)
            .iter()
            .map(|m| m + self.beta[0])
            .collect();
        let v = match self.l.solve_triangular(&ks.t().to_owned(), UPLO::Lower) {
            Ok(v) => v,
            Err(_) => return (mean, vec![prior_var; ks.nrows()]),
        };
        let var = v
            .axis_iter(Axis(1))
            .map(|c| (prior_var - c.dot(&c)).max(0.0))
            .collect();
        (mean, var)
    }

    /// Leave-one-out check of the model: each observation's standardised error against the
    /// prediction from all the others (mean 0 and spread 1 when the model's noise and structure
    /// are right).
    pub fn loo_z(&self) -> Vec<f64> {
        let n = self.alpha.len();
        let Some(kinv) = chol_solve(&self.l, &Array2::eye(n)) else {
            return Vec::new();
        };
        (0..n)
            .map(|i| self.alpha[i] / kinv[[i, i]].max(1e-300).sqrt())
            .collect()
    }

    /// The observations' residuals from the fitted mean (for checks).
    pub fn residuals(&self) -> &Array1<f64> {
        &self.resid
    }

    /// Each observation's noise variance, as fitted.
    pub fn noise(&self) -> &[f64] {
        &self.noise
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn data(points: &[(f64, f64)], noise: f64) -> Data {
        Data {
            x: Array2::from_shape_vec((points.len(), 1), points.iter().map(|p| p.0).collect())
                .unwrap(),
            y: points.iter().map(|p| p.1).collect(),
            noise: vec![noise; points.len()],
            screened: vec![false; points.len()],
        }
    }

    #[test]
    fn a_smooth_function_is_fitted_with_little_structure() {
        let pts: Vec<(f64, f64)> = (0..15)
            .map(|i| {
                let x = i as f64 / 14.0;
                (x, (3.0 * x).sin() * 0.2)
            })
            .collect();
        let gp = Gp::fit(&data(&pts, 1e-6), None, true).unwrap();
        assert!(gp.hyper().tau() < 0.01, "{:?}", gp.hyper());
        let (m, v) = gp.predict(&Array2::from_shape_vec((1, 1), vec![0.5]).unwrap());
        assert!((m[0] - (1.5f64).sin() * 0.2).abs() < 0.01, "{m:?}");
        assert!(v[0] < 1e-3, "{v:?}");
    }

    #[test]
    fn a_rough_function_keeps_its_dips_at_measured_points() {
        // A gentle trend plus a 5 % structure per point, measured with 1 % noise.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let pts: Vec<(f64, f64)> = (0..30)
            .map(|i| {
                let x = i as f64 / 29.0;
                (
                    x,
                    0.1 * (x - 0.5).powi(2) + 0.05 * (rng.random::<f64>() - 0.5) * 3.4,
                )
            })
            .collect();
        let gp = Gp::fit(&data(&pts, 1e-4), None, true).unwrap();
        let tau = gp.hyper().tau();
        assert!((0.02..0.12).contains(&tau), "tau {tau}");
        // The lowest reading stays the lowest latent value, close to its reading.
        let (m, _) = gp.predict_measured();
        let lowest = (0..30)
            .min_by(|a, b| pts[*a].1.total_cmp(&pts[*b].1))
            .unwrap();
        let best = (0..30).min_by(|a, b| m[*a].total_cmp(&m[*b])).unwrap();
        assert_eq!(lowest, best);
        assert!(
            (m[best] - pts[best].1).abs() < 0.01,
            "{} vs {}",
            m[best],
            pts[best].1
        );
        // An unmeasured point keeps the structure's uncertainty.
        let (_, v) = gp.predict(&Array2::from_shape_vec((1, 1), vec![0.51]).unwrap());
        assert!(v[0] >= 0.9 * tau * tau, "{v:?} {tau}");
        // Leave-one-out errors have about unit spread when the model is right.
        let z = gp.loo_z();
        let rms = (z.iter().map(|z| z * z).sum::<f64>() / z.len() as f64).sqrt();
        assert!((0.6..1.5).contains(&rms), "rms {rms}");
    }

    #[test]
    fn screening_runs_get_their_own_offset() {
        let mut d = data(
            &(0..12).map(|i| (i as f64 / 11.0, 0.0)).collect::<Vec<_>>(),
            1e-6,
        );
        for i in 0..12 {
            d.screened[i] = i % 2 == 0;
            d.y[i] = 0.1 * d.x[[i, 0]] + if d.screened[i] { 0.02 } else { 0.0 };
        }
        let gp = Gp::fit(&d, None, true).unwrap();
        assert!(
            (gp.screening_offset() - 0.02).abs() < 0.005,
            "{}",
            gp.screening_offset()
        );
    }
}
