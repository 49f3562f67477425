//! What a study minimises and under which limits: the objective (energy, energy-delay product or
//! time) and constraints on latency, throughput, slowdown against the DVFS baseline and power.
//!
//! Constraints are known only after measuring, so each is expressed as `g = ln(quantity / limit)`
//! (`g <= 0` is feasible; for a lower limit the ratio is inverted), which is what the Bayesian
//! strategy models with one Gaussian process per constraint. A measured `g` is made conservative
//! by [`MARGIN_SE`] standard errors of the mean, so that a recommendation judged feasible on noisy
//! runs is feasible in truth.

use crate::measure::{stats, Measurement};
use serde::{Deserialize, Serialize};

/// A kind of limit, as the library names it (the command line names it by its flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Time of one batch.
    MaxLatencyMs,
    /// Inferences per second.
    MinThroughput,
    /// Time against the DVFS baseline's.
    MaxSlowdown,
    /// Average board power.
    MaxPowerW,
    /// Inferences arriving at a fixed rate: each must be done, on average, before the next is
    /// due (a batch of `B` within `B / rate`), or the queue grows without end.
    Rate,
}

impl Limit {
    /// Its field name in [`Limits`] and report.json.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxLatencyMs => "max_latency_ms",
            Limit::MinThroughput => "min_throughput",
            Limit::MaxSlowdown => "max_slowdown",
            Limit::MaxPowerW => "max_power_w",
            Limit::Rate => "rate",
        }
    }

    /// Its unit in reports.
    pub fn unit(self) -> &'static str {
        match self {
            Limit::MaxLatencyMs => "ms per batch",
            Limit::MinThroughput => "inferences/s",
            Limit::MaxSlowdown => "x the DVFS baseline's time",
            Limit::MaxPowerW => "W",
            Limit::Rate => "inferences/s arriving (each done before the next is due)",
        }
    }
}

/// A limit that is not a positive number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render(&Limit::name))]
pub struct LimitError {
    /// Which limit.
    pub limit: Limit,
    /// The value given.
    pub value: f64,
}

impl LimitError {
    /// The message, the limit named by `name` (the command line passes its flags).
    pub fn render(&self, name: &dyn Fn(Limit) -> &'static str) -> String {
        format!(
            "{} must be a positive number, got {}",
            name(self.limit),
            self.value
        )
    }
}

/// Two-sided confidence of the margin added to a measured constraint before it counts as met:
/// the upper end of a 98 % Student-t interval of the mean over the runs (99 % one-sided).
pub const MARGIN_CONFIDENCE: f64 = 0.98;

/// The Student-t quantile of the margin for a mean of `runs` runs (99 % one-sided: a normal's
/// 2.33 for many runs; 7.0 for three, whose sample spread is itself uncertain). 97.5 % let one
/// study in 240 of `bench --max-slowdown 1.2` recommend a configuration just over the limit.
pub fn margin_quantile(runs: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if runs < 2 {
        return 0.0;
    }
    StudentsT::new(0.0, 1.0, (runs - 1) as f64)
        .map(|t| t.inverse_cdf(0.5 + MARGIN_CONFIDENCE / 2.0))
        .unwrap_or(1.96)
}

/// The quantity minimised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Energy for the workload.
    #[default]
    Energy,
    /// Energy per inference x time per inference.
    Edp,
    /// Time for the workload.
    Time,
}

impl Objective {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Energy => "energy",
            Objective::Edp => "edp",
            Objective::Time => "time",
        }
    }
}

/// Limits a recommendation must meet; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// Time of one batch, ms, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    /// Inferences per second, at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_throughput: Option<f64>,
    /// Time for the workload over that of the DVFS baseline (at the baseline batch size), at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_slowdown: Option<f64>,
    /// Average board power, W, at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_power_w: Option<f64>,
}

impl Limits {
    /// Every limit with its value, in a fixed order.
    pub fn each(&self) -> [(Limit, Option<f64>); 4] {
        [
            (Limit::MaxLatencyMs, self.max_latency_ms),
            (Limit::MinThroughput, self.min_throughput),
            (Limit::MaxSlowdown, self.max_slowdown),
            (Limit::MaxPowerW, self.max_power_w),
        ]
    }
}

/// What a measurement's objective and constraints are computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantities {
    /// Energy for `inferences`.
    pub energy_j: f64,
    /// Time for `inferences`.
    pub time_s: f64,
    /// Inferences.
    pub inferences: u32,
    /// Batch size.
    pub batch_size: u32,
    /// Power while idle at the same setting, where it was measured (a study at a rate).
    pub idle_power_w: Option<f64>,
}

impl Quantities {
    /// Of a measurement.
    pub fn of(m: &Measurement) -> Quantities {
        Quantities {
            energy_j: m.energy_j,
            time_s: m.time_s,
            inferences: m.inferences,
            batch_size: m.batch_size,
            idle_power_w: m.idle_power_w,
        }
    }
    /// Energy for the inferences when they arrive at `rate_hz`: the busy energy plus the idle
    /// power over the rest of the time they take to arrive (none when the busy time is longer:
    /// then the rate is not kept, which the rate's limit says).
    pub fn energy_at_rate_j(&self, rate_hz: f64) -> f64 {
        let idle_s = (self.inferences as f64 / rate_hz - self.time_s).max(0.0);
        self.energy_j + self.idle_power_w.unwrap_or(0.0) * idle_s
    }
    /// Time of one batch, ms.
    pub fn latency_ms(&self) -> f64 {
        self.time_s / self.inferences.div_ceil(self.batch_size.max(1)) as f64 * 1e3
    }
    /// Energy per inference, mJ.
    pub fn energy_per_inference_mj(&self) -> f64 {
        self.energy_j / self.inferences as f64 * 1e3
    }
    /// Inferences per second.
    pub fn throughput(&self) -> f64 {
        self.inferences as f64 / self.time_s
    }
    /// Average power, W.
    pub fn power_w(&self) -> f64 {
        self.energy_j / self.time_s
    }
}

/// The objective and the limits of a study.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Goal {
    /// Minimised quantity.
    #[serde(default)]
    pub objective: Objective,
    /// Constraints.
    #[serde(default)]
    pub limits: Limits,
    /// Map the energy-time Pareto front instead of one minimum.
    #[serde(default)]
    pub pareto: bool,
    /// Inferences arrive at this rate (per second) and the board idles between them: energy
    /// counts that idle at the configuration's clocks, and keeping the rate is a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_hz: Option<f64>,
}

/// One active constraint: name, limit and unit, for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitInfo {
    /// Option name without dashes (`max_slowdown`).
    pub name: String,
    /// The limit.
    pub limit: f64,
    /// Unit.
    pub unit: String,
}

impl Goal {
    /// Whether the study is the plain energy minimisation.
    pub fn is_plain(&self) -> bool {
        *self == Goal::default()
    }

    /// Whether it needs each measurement's time: anything but plain energy does.
    pub fn needs_time(&self) -> bool {
        !self.is_plain()
    }

    /// Whether it needs the latency of one batch (and so the batch size).
    pub fn needs_batch_latency(&self) -> bool {
        self.limits.max_latency_ms.is_some() || self.pareto
    }

    /// Whether each measurement needs the idle power at its setting (a study at a rate).
    pub fn needs_idle_power(&self) -> bool {
        self.rate_hz.is_some()
    }

    /// Every limit with its value, the rate's keep-up limit last.
    fn each_limit(&self) -> [(Limit, Option<f64>); 5] {
        let [a, b, c, d] = self.limits.each();
        [a, b, c, d, (Limit::Rate, self.rate_hz)]
    }

    /// Checks the limits are positive numbers.
    pub fn validate(&self) -> Result<(), LimitError> {
        for (limit, v) in self.each_limit() {
            if let Some(value) = v {
                if !(value.is_finite() && value > 0.0) {
                    return Err(LimitError { limit, value });
                }
            }
        }
        Ok(())
    }

    /// The active constraints, in a fixed order.
    pub fn limits_info(&self) -> Vec<LimitInfo> {
        self.each_limit()
            .into_iter()
            .filter_map(|(l, v)| {
                v.map(|limit| LimitInfo {
                    name: l.name().into(),
                    limit,
                    unit: l.unit().into(),
                })
            })
            .collect()
    }

    /// The energy the study counts: at its rate (idle included) where it has one.
    pub fn energy_j(&self, q: &Quantities) -> f64 {
        match self.rate_hz {
            Some(r) => q.energy_at_rate_j(r),
            None => q.energy_j,
        }
    }

    /// The objective's value (lower is better).
    pub fn value(&self, q: &Quantities) -> f64 {
        match self.objective {
            Objective::Energy => self.energy_j(q),
            Objective::Time => q.time_s,
            Objective::Edp => {
                let n = q.inferences as f64;
                (q.energy_j / n) * (q.time_s / n)
            }
        }
    }

    /// `ln(quantity / limit)` of each active constraint (`<= 0` is met), given the DVFS
    /// baseline's time for the same workload.
    pub fn constraints(&self, q: &Quantities, baseline_time_s: f64) -> Vec<f64> {
        let l = &self.limits;
        let mut g = Vec::new();
        if let Some(x) = l.max_latency_ms {
            g.push((q.latency_ms() / x).ln());
        }
        if let Some(x) = l.min_throughput {
            g.push((x / q.throughput()).ln());
        }
        if let Some(x) = l.max_slowdown {
            g.push((q.time_s / baseline_time_s / x).ln());
        }
        if let Some(x) = l.max_power_w {
            g.push((q.power_w() / x).ln());
        }
        if let Some(r) = self.rate_hz {
            g.push((q.time_s * r / q.inferences as f64).ln());
        }
        g
    }

    /// The measured constraints made conservative by a Student-t margin on the mean of the runs
    /// (relative errors, which is what a log ratio's error is).
    pub fn measured_constraints(&self, m: &Measurement, baseline: &Measurement) -> Vec<f64> {
        let g = self.constraints(&Quantities::of(m), baseline.time_s);
        // Standard error of the mean times the t quantile for that many runs.
        let se =
            |v: &[f64]| stats::cv(v) / (v.len().max(1) as f64).sqrt() * margin_quantile(v.len());
        let times = |m: &Measurement| m.runs.iter().map(|r| r.time_s).collect::<Vec<_>>();
        let powers: Vec<f64> = m
            .runs
            .iter()
            .map(|r| r.energy_j / r.time_s.max(f64::MIN_POSITIVE))
            .collect();
        let se_t = se(&times(m));
        let l = &self.limits;
        let mut ses = Vec::new();
        if l.max_latency_ms.is_some() {
            ses.push(se_t);
        }
        if l.min_throughput.is_some() {
            ses.push(se_t);
        }
        if l.max_slowdown.is_some() {
            ses.push(se_t.hypot(se(&times(baseline))));
        }
        if l.max_power_w.is_some() {
            ses.push(se(&powers));
        }
        if self.rate_hz.is_some() {
            ses.push(se_t);
        }
        g.iter()
            .zip(ses)
            .map(|(g, s)| g + if s.is_finite() { s } else { 0.0 })
            .collect()
    }
}

/// How far outside its limits a point is: the largest `g`, or 0 when every constraint is met.
pub fn violation(g: &[f64]) -> f64 {
    g.iter().copied().fold(0.0, f64::max)
}

/// Indices of the non-dominated points of `(x, y)` pairs, both minimised, sorted by `x`.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|a, b| {
        points[*a]
            .0
            .total_cmp(&points[*b].0)
            .then(points[*a].1.total_cmp(&points[*b].1))
    });
    let mut front = Vec::new();
    let mut best_y = f64::INFINITY;
    for i in idx {
        if points[i].1 < best_y {
            best_y = points[i].1;
            front.push(i);
        }
    }
    front
}

/// Area dominated by `points` (both minimised) and bounded by `reference`.
pub fn hypervolume(points: &[(f64, f64)], reference: (f64, f64)) -> f64 {
    let inside: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0 < reference.0 && p.1 < reference.1)
        .collect();
    let front = pareto_front(&inside);
    let mut area = 0.0;
    let mut prev_y = reference.1;
    for i in front {
        let (x, y) = inside[i];
        area += (reference.0 - x) * (prev_y - y);
        prev_y = y;
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(energy_j: f64, time_s: f64) -> Quantities {
        Quantities {
            energy_j,
            time_s,
            inferences: 3200,
            batch_size: 8,
            idle_power_w: None,
        }
    }

    #[test]
    fn objectives_and_constraints_are_what_their_names_say() {
        let g = Goal {
            objective: Objective::Edp,
            limits: Limits {
                max_latency_ms: Some(20.0),
                min_throughput: Some(100.0),
                max_slowdown: Some(1.2),
                max_power_w: Some(5.0),
            },
            pareto: false,
            rate_hz: None,
        };
        let x = q(320.0, 64.0);
        assert!((g.value(&x) - 0.1 * 0.02).abs() < 1e-12);
        // 400 batches in 64 s: 160 ms a batch; 50 inferences/s; 5 W.
        let c = g.constraints(&x, 64.0);
        assert!((c[0] - (160.0f64 / 20.0).ln()).abs() < 1e-12);
        assert!((c[1] - 2f64.ln()).abs() < 1e-12);
        assert!((c[2] - (1.0f64 / 1.2).ln()).abs() < 1e-12 && c[2] < 0.0);
        assert!(c[3].abs() < 1e-12);
        assert_eq!(violation(&c), c[0]);
        assert_eq!(violation(&[-1.0, -0.5]), 0.0);
        assert!(Goal::default().is_plain() && !g.is_plain());
        assert_eq!(g.limits_info().len(), 4);
        let bad = Goal {
            limits: Limits {
                max_slowdown: Some(-1.0),
                ..Limits::default()
            },
            ..Goal::default()
        };
        let e = bad.validate().unwrap_err();
        assert_eq!(e.limit, Limit::MaxSlowdown);
        assert!(e.to_string().contains("max_slowdown"));
    }

    #[test]
    fn at_a_rate_energy_counts_the_idle_and_keeping_up_is_a_limit() {
        let g = Goal {
            rate_hz: Some(40.0),
            ..Goal::default()
        };
        // 3200 inferences arrive over 80 s; busy for 64 s, idle for 16 s at 2 W.
        let x = Quantities {
            idle_power_w: Some(2.0),
            ..q(320.0, 64.0)
        };
        assert!((g.value(&x) - (320.0 + 2.0 * 16.0)).abs() < 1e-9);
        let c = g.constraints(&x, 64.0);
        assert_eq!(c.len(), 1);
        assert!((c[0] - 0.8f64.ln()).abs() < 1e-12);
        // 50 per second is more than this configuration does (3200 in 64 s): not kept, no idle.
        let fast = Goal {
            rate_hz: Some(100.0),
            ..g
        };
        assert!(fast.constraints(&x, 64.0)[0] > 0.0);
        assert_eq!(fast.value(&x), 320.0);
        assert!(!g.is_plain() && g.needs_time() && g.needs_idle_power());
        assert_eq!(g.limits_info()[0].name, "rate");
        let e = Goal {
            rate_hz: Some(0.0),
            ..g
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.limit, Limit::Rate);
    }

    #[test]
    fn the_margin_widens_for_few_runs() {
        // 99 % one-sided: t(0.99, 2 dof) = 6.965; a normal's 2.326 for many runs.
        assert!((margin_quantile(3) - 6.965).abs() < 1e-2);
        assert!((margin_quantile(1000) - 2.33).abs() < 1e-2);
        assert_eq!(margin_quantile(1), 0.0);
    }

    #[test]
    fn the_front_and_its_hypervolume() {
        let p = [(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (4.0, 1.0), (2.0, 6.0)];
        assert_eq!(pareto_front(&p), vec![0, 1, 3]);
        // Reference (5, 7): 4x2 + 3x2 + 1x2.
        assert!((hypervolume(&p, (5.0, 7.0)) - 16.0).abs() < 1e-12);
        assert_eq!(hypervolume(&[(6.0, 1.0)], (5.0, 7.0)), 0.0);
    }
}
