//! A study at a rate (`--rate`): the energy of inferences arriving at that rate, the idle between
//! them counted at each setting's measured idle power. Savings at a rate compare these energies.

use crate::measure::Measurement;
use crate::objective::{Goal, Quantities};
use serde::{Deserialize, Serialize};

/// What a study at a rate adds to its report (energies for the report's inferences).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtRate {
    /// Inferences arriving per second.
    pub rate_hz: f64,
    /// Time the report's inferences take to arrive.
    pub arrival_s: f64,
    /// The recommendation's energy at the rate: busy, then idle until the last one arrives.
    pub best_energy_j: Option<f64>,
    /// The recommendation's idle power between inferences.
    pub best_idle_power_w: Option<f64>,
    /// The baseline's energy at the rate.
    pub baseline_energy_j: f64,
    /// The baseline's idle power (the governors' idle).
    pub baseline_idle_power_w: Option<f64>,
    /// The same-batch baseline's energy at the rate.
    pub baseline_same_batch_energy_j: Option<f64>,
}

/// The energy a goal compares: at its rate where it has one, else the measured energy.
pub fn compared_energy_j(goal: &Goal, m: &Measurement) -> f64 {
    goal.energy_j(&Quantities::of(m))
}

/// The report's block for a study at a rate (none without one); `best` is at the report's length.
pub fn at_rate(
    goal: &Goal,
    inferences: u32,
    best: Option<&Measurement>,
    baseline: &Measurement,
    same_batch: Option<&Measurement>,
) -> Option<AtRate> {
    let rate_hz = goal.rate_hz?;
    Some(AtRate {
        rate_hz,
        arrival_s: inferences as f64 / rate_hz,
        best_energy_j: best.map(|m| compared_energy_j(goal, m)),
        best_idle_power_w: best.and_then(|m| m.idle_power_w),
        baseline_energy_j: compared_energy_j(goal, baseline),
        baseline_idle_power_w: baseline.idle_power_w,
        baseline_same_batch_energy_j: same_batch.map(|m| compared_energy_j(goal, m)),
    })
}
