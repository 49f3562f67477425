//! Full-protocol figures a fleet spreads over its boards. A confirmation and a DVFS baseline
//! are made of single full-length runs that any board may measure (its shares); the runs of
//! every board are pooled after each board's fitted offset ([`super::offsets`]) is divided out,
//! and the pool is the figure once it meets the protocol (at least `min_runs`, CV under the
//! target, or `max_runs`), as one board's runs would be. Four boards so measure a baseline in
//! the time of one run, not three. A leaf: the fleet reads it.

use super::storage::StoredRecord;
use super::JournalRecord;
use crate::measure::stats;
use crate::measure::{Measurement, ProtocolSettings, Run};
use std::collections::{BTreeMap, HashMap};

/// The runs of `parts` as one measurement, each part's energies multiplied by its factor (a
/// board's `e^-offset`: 1 keeps its own units): means, CV, and whether they meet `p`. The
/// first part gives the setting, batch and length; rails are kept where every part has them.
/// `None` without parts.
pub(super) fn pooled(parts: &[(&Measurement, f64)], p: &ProtocolSettings) -> Option<Measurement> {
    let (first, _) = parts.first()?;
    let mut runs: Vec<Run> = Vec::new();
    let mut rails: BTreeMap<String, f64> = BTreeMap::new();
    let mut idle: Vec<f64> = Vec::new();
    for (m, k) in parts {
        runs.extend(m.runs.iter().map(|r| Run {
            energy_j: r.energy_j * k,
            time_s: r.time_s,
        }));
        idle.extend(m.idle_power_w.map(|w| w * k));
    }
    let weight = |m: &Measurement| m.runs.len() as f64 / runs.len().max(1) as f64;
    for name in first.rail_energy_j.keys() {
        let all: Option<f64> = parts
            .iter()
            .map(|(m, k)| m.rail_energy_j.get(name).map(|e| e * k * weight(m)))
            .sum();
        if let Some(e) = all {
            rails.insert(name.clone(), e);
        }
    }
    let energies: Vec<f64> = runs.iter().map(|r| r.energy_j).collect();
    let energy_j = stats::mean(&energies);
    let time_s = stats::mean(&runs.iter().map(|r| r.time_s).collect::<Vec<_>>());
    let cv = stats::cv(&energies);
    Some(Measurement {
        energy_j,
        time_s,
        avg_power_w: if time_s > 0.0 { energy_j / time_s } else { 0.0 },
        energy_per_inference_mj: energy_j / f64::from(first.inferences.max(1)) * 1e3,
        cv,
        converged: runs.len() as u32 >= p.min_runs && cv < p.cv_target,
        runs,
        wall_s: parts.iter().map(|(m, _)| m.wall_s).sum(),
        rail_energy_j: rails,
        idle_power_w: (!idle.is_empty()).then(|| stats::mean(&idle)),
        ..(*first).clone()
    })
}

/// `m` with its energies divided by `e^offset`.
pub(super) fn normalised(m: &Measurement, offset: f64) -> Measurement {
    let k = (-offset).exp();
    let mut m = m.clone();
    m.energy_j *= k;
    m.avg_power_w *= k;
    m.energy_per_inference_mj *= k;
    for r in &mut m.runs {
        r.energy_j *= k;
    }
    m
}

/// Full-length runs still wanted before a pool meets the protocol: up to `min_runs`, then one
/// at a time while the CV is over the target and `max_runs` is not reached.
pub(super) fn runs_wanted(pool: Option<&Measurement>, p: &ProtocolSettings) -> u32 {
    let n = pool.map_or(0, |m| m.runs.len() as u32);
    match pool {
        _ if n < p.min_runs => p.min_runs - n,
        Some(m) if !m.converged && n < p.max_runs => 1,
        _ => 0,
    }
}

/// Each board's DVFS baseline records at `batch`, its runs pooled in its own units.
pub(super) fn board_baselines(
    records: &[StoredRecord],
    batch: u32,
    p: &ProtocolSettings,
) -> HashMap<String, Measurement> {
    let mut parts: HashMap<&str, Vec<(&Measurement, f64)>> = HashMap::new();
    for (board, m) in baseline_records(records, batch) {
        parts.entry(board).or_default().push((m, 1.0));
    }
    parts
        .into_iter()
        .filter_map(|(b, ps)| Some((b.to_string(), pooled(&ps, p)?)))
        .collect()
}

/// The DVFS baseline at `batch` pooled over every board, in the fleet's common units (each
/// board's runs divided by `e^offset`); `None` before any board measured one.
pub(super) fn baseline(
    records: &[StoredRecord],
    batch: u32,
    offsets: &HashMap<String, f64>,
    p: &ProtocolSettings,
) -> Option<Measurement> {
    let parts: Vec<(&Measurement, f64)> = baseline_records(records, batch)
        .map(|(b, m)| (m, factor(offsets, b)))
        .collect();
    pooled(&parts, p)
}

/// `e^-offset` of `board` (1 for a board without one).
pub(super) fn factor(offsets: &HashMap<String, f64>, board: &str) -> f64 {
    (-offsets.get(board).copied().unwrap_or(0.0)).exp()
}

fn baseline_records(
    records: &[StoredRecord],
    batch: u32,
) -> impl Iterator<Item = (&str, &Measurement)> {
    records.iter().filter_map(move |r| match &r.record {
        JournalRecord::Baseline { measurement } if measurement.batch_size == batch => {
            Some((r.origin.board.as_str(), measurement))
        }
        _ => None,
    })
}

/// A DVFS measurement at batch 4 of full-length runs (3200 inferences, 10 s each) with the
/// given energies: what the tests of pools and of offsets start from.
#[cfg(test)]
pub(super) fn dvfs_runs(runs_j: &[f64]) -> Measurement {
    let raw = Measurement {
        setting: crate::device::FreqSetting::Dvfs,
        batch_size: 4,
        inferences: 3200,
        energy_j: 0.0,
        time_s: 0.0,
        avg_power_w: 0.0,
        energy_per_inference_mj: 0.0,
        cv: 0.0,
        converged: false,
        runs: runs_j
            .iter()
            .map(|&energy_j| Run {
                energy_j,
                time_s: 10.0,
            })
            .collect(),
        wall_s: 10.0 * runs_j.len() as f64,
        rail_energy_j: BTreeMap::new(),
        window_repeats: 1,
        idle_power_w: None,
    };
    pooled(&[(&raw, 1.0)], &ProtocolSettings::default()).expect("one part")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_run(energy_j: f64) -> Measurement {
        Measurement {
            wall_s: 11.0,
            rail_energy_j: BTreeMap::from([("VDD_IN".to_string(), energy_j)]),
            ..dvfs_runs(&[energy_j])
        }
    }

    #[test]
    fn runs_of_boards_pool_after_their_offsets() {
        let p = ProtocolSettings::default();
        // Board b reads 10 % high; divided by its offset, its run agrees with a's two.
        let (a1, a2, b) = (one_run(100.0), one_run(102.0), one_run(111.1));
        let k_b = 1.0 / 1.1;
        let m = pooled(&[(&a1, 1.0), (&a2, 1.0), (&b, k_b)], &p).unwrap();
        assert_eq!(m.runs.len(), 3);
        assert!((m.energy_j - 101.0).abs() < 0.1, "{}", m.energy_j);
        assert!(m.converged, "cv {}", m.cv);
        assert!((m.wall_s - 33.0).abs() < 1e-9);
        assert!((m.rail_energy_j["VDD_IN"] - m.energy_j).abs() < 1e-9);
        // Without the offset the pool's spread is over the target.
        let raw = pooled(&[(&a1, 1.0), (&a2, 1.0), (&b, 1.0)], &p).unwrap();
        assert!(!raw.converged && raw.cv > p.cv_target);
        assert_eq!(runs_wanted(Some(&raw), &p), 1);
        assert_eq!(runs_wanted(Some(&m), &p), 0);
        assert_eq!(runs_wanted(None, &p), 3);
        assert_eq!(runs_wanted(pooled(&[(&a1, 1.0)], &p).as_ref(), &p), 2);
        assert!(pooled(&[], &p).is_none());
    }

    #[test]
    fn a_pool_that_never_settles_stops_at_max_runs() {
        let p = ProtocolSettings {
            max_runs: 4,
            ..ProtocolSettings::default()
        };
        let ms: Vec<Measurement> = [100.0, 130.0, 90.0, 140.0].map(one_run).to_vec();
        let parts: Vec<(&Measurement, f64)> = ms.iter().map(|m| (m, 1.0)).collect();
        assert_eq!(runs_wanted(pooled(&parts[..3], &p).as_ref(), &p), 1);
        assert_eq!(runs_wanted(pooled(&parts, &p).as_ref(), &p), 0);
    }
}
