//! The numbers behind bayes's search that need no state of it: the initial design, the
//! robust regression, pooled noise and expected improvement.

use crate::space::Point;
use crate::strategy::base::{History, Observation};
use crate::strategy::gp;
use egobox_gp::correlation_models::Matern52Corr;
use egobox_gp::mean_models::ConstantMean;
use egobox_gp::GaussianProcess;
use linfa::prelude::{Dataset, Fit};
use ndarray::{Array1, Array2};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{Continuous, ContinuousCDF, Normal};

type Gp = GaussianProcess<f64, ConstantMean, Matern52Corr>;

/// Leave-one-out z above which a reading counts as an outlier (a bump), not as the board's
/// structure.
const OUTLIER_Z: f64 = 3.0;

/// Latin hypercubes drawn when choosing the cheapest initial design.
const DESIGN_DRAWS: usize = 16;

/// Points of a Latin hypercube on the grid: each axis's range split into `n` strata, one point
/// per stratum, strata paired at random.
pub(super) fn latin_hypercube(dims: &[usize], n: usize, rng: &mut ChaCha8Rng) -> Vec<Point> {
    let per_axis: Vec<Vec<usize>> = dims
        .iter()
        .map(|d| {
            let mut strata: Vec<usize> = (0..n).collect();
            strata.shuffle(rng);
            strata
                .into_iter()
                .map(|s| {
                    let u: f64 = rng.random();
                    (((s as f64 + u) / n as f64) * *d as f64).floor() as usize % d
                })
                .collect()
        })
        .collect();
    (0..n)
        .map(|i| per_axis.iter().map(|a| a[i]).collect())
        .collect()
}

/// The initial design: a Latin hypercube; with a time model, the cheapest to measure of
/// [`DESIGN_DRAWS`] (CArBO's cost-effective initial design, Lee et al. 2020).
pub(super) fn cheapest_design(
    dims: &[usize],
    n: usize,
    time_ln: &[f64],
    rng: &mut ChaCha8Rng,
) -> Vec<Point> {
    if time_ln.is_empty() {
        return latin_hypercube(dims, n, rng);
    }
    let cost = |d: &[Point]| -> f64 { d.iter().map(|p| time_ln[flat(dims, p)].exp()).sum::<f64>() };
    (0..DESIGN_DRAWS)
        .map(|_| latin_hypercube(dims, n, rng))
        .min_by(|a, b| cost(a).total_cmp(&cost(b)))
        .unwrap_or_default()
}

/// Flat index of a point (the space's order).
pub(super) fn flat(dims: &[usize], p: &[usize]) -> usize {
    p.iter().zip(dims).fold(0, |acc, (i, n)| acc * n + i)
}

/// A GP (Matern 5/2, fitted length-scales, a small nugget) of `y` at inputs `x`, predicted at
/// `at`: carries an earlier study's measurements over to another space as a prior.
pub fn regress(x: &[Vec<f64>], y: &[f64], at: &[Vec<f64>]) -> Option<Vec<f64>> {
    let d = x.first()?.len();
    if x.len() < 3 || d == 0 || x.len() != y.len() {
        return None;
    }
    let to = |v: &[Vec<f64>]| {
        Array2::from_shape_vec((v.len(), d), v.iter().flatten().copied().collect()).ok()
    };
    let (xs, q) = (to(x)?, to(at)?);
    let gp = Gp::params(ConstantMean::default(), Matern52Corr::default())
        .nugget(1e-3)
        .n_start(4)
        .fit(&Dataset::new(xs, Array1::from(y.to_vec())))
        .ok()?;
    Some(gp.predict(&q).ok()?.to_vec())
}

/// A GP fitted to `data` that a bump cannot distort: a reading far above what the others predict
/// (a batch that spills, a throttled run) would inflate the structure term and send the search
/// everywhere, so it counts as a noisy reading and the GP is fitted again. Readings far below
/// are what the search looks for: kept. Returns the fit and the data it was fitted to.
pub(super) fn robust_fit(
    mut data: gp::Data,
    warm: Option<&gp::Hyper>,
    refit: bool,
) -> Option<(gp::Gp, gp::Data)> {
    let fitted = gp::Gp::fit(&data, warm, refit)?;
    let z = fitted.loo_z();
    if !z.iter().any(|z| *z > OUTLIER_Z) {
        return Some((fitted, data));
    }
    for (n, z) in data.noise.iter_mut().zip(&z) {
        if *z > OUTLIER_Z {
            *n *= (z / 2.0).powi(2);
        }
    }
    let again = gp::Gp::fit(&data, Some(fitted.hyper()), refit)?;
    Some((again, data))
}

/// The noise of one run of a kind of observation (screened, or full-length): its CV and the
/// degrees of freedom behind it. From the replicated runs of that kind: each one's first run over
/// its later ones, whose spread across configurations is twice the run's variance (the first
/// run's settling is the same offset for all, so it drops out), pooled with a single run's guessed
/// CV (the baseline's) counted as two degrees of freedom. `None` with nothing to go by.
pub(super) fn pooled_noise(h: &History, screened: bool) -> Option<(f64, f64)> {
    let mine = || h.iter().filter(|o| o.screened == screened && !o.pending);
    let guess = mine().find(|o| o.runs <= 1).map(|o| o.cv.powi(2));
    // Each replicate's excess, with the factor its variance carries over one run's.
    let d: Vec<(f64, f64)> = mine()
        .filter_map(|o| {
            let k = 1.0 + 1.0 / (o.runs.max(2) - 1) as f64;
            o.first_run_excess.map(|e| (e, k))
        })
        .collect();
    let (mut df, mut ss) = (0.0, 0.0);
    if d.len() >= 2 {
        let mean = d.iter().map(|(e, _)| e).sum::<f64>() / d.len() as f64;
        ss = d.iter().map(|(e, k)| (e - mean).powi(2) / k).sum::<f64>();
        df = (d.len() - 1) as f64;
    }
    if let Some(g) = guess.or_else(|| {
        (df == 0.0)
            .then(|| mine().next().map(|o| o.cv.powi(2)))
            .flatten()
    }) {
        ss += 2.0 * g;
        df += 2.0;
    }
    (df > 0.0).then(|| ((ss / df).sqrt(), df))
}

/// The per-run CV of [`pooled_noise`].
pub(super) fn pooled_run_cv(h: &History, screened: bool) -> Option<f64> {
    pooled_noise(h, screened).map(|(cv, _)| cv)
}

/// An observation's noise variance in ln units: the pooled per-run CV of its kind over its runs
/// (its own CV without a pool), with a floor (no measurement is exact to better than half a
/// percent).
pub(super) fn noise_var(o: &Observation, pooled_cv: Option<f64>) -> f64 {
    let cv = pooled_cv.unwrap_or(o.cv);
    (cv / (o.runs.max(1) as f64).sqrt()).max(0.005).powi(2)
}

/// Expected improvement of a Gaussian with mean improvement `imp` and variance `var`.
pub(super) fn expected_improvement(imp: f64, var: f64, normal: &Normal) -> f64 {
    let s = var.max(0.0).sqrt();
    if s < 1e-12 {
        imp.max(0.0)
    } else {
        let z = imp / s;
        imp * normal.cdf(z) + s * normal.pdf(z)
    }
}

pub(super) fn all_points(dims: &[usize]) -> impl Iterator<Item = Point> + '_ {
    let size: usize = dims.iter().product();
    (0..size).map(move |i| crate::space::point_at(dims, i))
}
