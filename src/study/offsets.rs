//! Each board's offset in a fleet, ln(its values / the fleet's): fitted from every value the
//! board recorded, not from one baseline. Energy per inference is modelled in log space as a
//! quadratic response surface over the grid's axes shared by every board, plus one offset per
//! board; each board's DVFS baseline is one more observation of its offset (weighed by its own
//! runs' spread). The weighted least-squares fit is solved twice, the second time with the
//! residual variance of the first, and its offsets are then shrunk toward the fleet's mean by how
//! much of their spread their own uncertainty explains (empirical Bayes), so that boards that are
//! alike get offsets near 0, and one bad baseline window cannot skew a board for a whole study.

use super::pool::board_baselines;
use super::storage::StoredRecord;
use super::JournalRecord;
use crate::measure::{stats, Measurement, ProtocolSettings};
use crate::space::Space;
use crate::strategy::gp::chol_solve;
use linfa_linalg::cholesky::Cholesky;
use ndarray::{Array1, Array2};
use std::collections::{BTreeMap, HashMap};

/// The error of one reading as a reading of its board's level, in ln units: a window's bias
/// (settling, sensor steps, the board's state) that its runs' agreement cannot show. The noise
/// assumed before the first fit, and the least a baseline is trusted with.
const FIRST_SIGMA: f64 = 0.03;

/// Each board's offset, fitted from its baseline and every configuration it measured; the
/// baselines' offsets alone ([`offsets_of`]) while there are too few measurements for the fit.
pub fn fitted(
    records: &[StoredRecord],
    batch: u32,
    space: &Space,
    p: &ProtocolSettings,
) -> HashMap<String, f64> {
    let bases = board_baselines(records, batch, p);
    let fallback = offsets_of(&bases);
    let mut boards: BTreeMap<&str, usize> = BTreeMap::new();
    for b in bases.keys() {
        boards.insert(b.as_str(), 0);
    }
    let mut obs: Vec<(&str, Vec<f64>, f64)> = Vec::new();
    for r in records {
        let (JournalRecord::Measurement {
            config,
            measurement,
        }
        | JournalRecord::Confirmed {
            config,
            measurement,
        }
        | JournalRecord::Share {
            config,
            measurement,
        }) = &r.record
        else {
            continue;
        };
        let (Some(p), true) = (
            space.point_of(config),
            measurement.energy_j > 0.0 && measurement.inferences > 0,
        ) else {
            continue;
        };
        boards.insert(r.origin.board.as_str(), 0);
        let y = (measurement.energy_j / f64::from(measurement.inferences)).ln();
        obs.push((r.origin.board.as_str(), features(&p, &space.dims()), y));
    }
    for (i, v) in boards.values_mut().enumerate() {
        *v = i;
    }
    let cols = obs.first().map_or(0, |o| o.1.len());
    if boards.len() < 2 || obs.len() < cols + boards.len() + 3 {
        return fallback;
    }
    // Each board's baseline, as an observation of its offset: (offset, its variance).
    let logs: Vec<f64> = bases.values().map(|m| m.energy_j.ln()).collect();
    let mean = stats::mean(&logs);
    let prior: Vec<(usize, f64, f64)> = bases
        .iter()
        .map(|(b, m)| {
            // One reading of the board's level, no surer than any other reading: its runs'
            // agreement says nothing of a window that was off for all of them.
            let v = ln_mean_var(m).max(FIRST_SIGMA.powi(2));
            (boards[b.as_str()], m.energy_j.ln() - mean, v)
        })
        .collect();
    let rows: Vec<(usize, &[f64], f64)> = obs
        .iter()
        .map(|(b, x, y)| (boards[b], x.as_slice(), *y))
        .collect();
    let Some(first) = solve(&rows, &prior, boards.len(), FIRST_SIGMA.powi(2)) else {
        return fallback;
    };
    let dof = rows.len().saturating_sub(cols + boards.len() - 1).max(1);
    let sigma2 = (first.rss / dof as f64).max(1e-6);
    let Some(fit) = solve(&rows, &prior, boards.len(), sigma2) else {
        return fallback;
    };
    let between = (stats::std_dev(&fit.offsets).powi(2) - stats::mean(&fit.var)).max(0.0);
    boards
        .iter()
        .map(|(b, i)| {
            let v = fit.var[*i];
            let keep = if between + v > 0.0 {
                between / (between + v)
            } else {
                1.0
            };
            (b.to_string(), keep * fit.offsets[*i])
        })
        .collect()
}

/// The quadratic surface's terms at a grid point: 1, each axis, its square, and each pair's
/// product, the axes scaled to [-1, 1] (an axis of one value has none).
fn features(p: &[usize], dims: &[usize]) -> Vec<f64> {
    let x: Vec<f64> = p
        .iter()
        .zip(dims)
        .filter(|(_, n)| **n > 1)
        .map(|(i, n)| 2.0 * *i as f64 / (*n - 1) as f64 - 1.0)
        .collect();
    let mut f = vec![1.0];
    f.extend(x.iter().copied());
    f.extend(x.iter().map(|v| v * v));
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            f.push(x[i] * x[j]);
        }
    }
    f
}

/// A fit's offsets (centred), their variances and its residual sum of squares.
struct Fit {
    offsets: Vec<f64>,
    var: Vec<f64>,
    rss: f64,
}

/// The weighted least-squares fit of `rows` (board, surface terms, ln energy per inference),
/// each of variance `sigma2`, with each board's baseline offset in `prior` (board, offset,
/// variance), under the offsets summing to 0.
fn solve(
    rows: &[(usize, &[f64], f64)],
    prior: &[(usize, f64, f64)],
    boards: usize,
    sigma2: f64,
) -> Option<Fit> {
    let cols = rows[0].1.len();
    let n = cols + boards;
    let mut a = Array2::<f64>::zeros((n, n));
    let mut rhs = Array2::<f64>::zeros((n, 1));
    let mut add = |row: &[(usize, f64)], y: f64, w: f64| {
        for &(i, xi) in row {
            rhs[[i, 0]] += w * xi * y;
            for &(j, xj) in row {
                a[[i, j]] += w * xi * xj;
            }
        }
    };
    for (b, x, y) in rows {
        let mut row: Vec<(usize, f64)> = x.iter().copied().enumerate().collect();
        row.push((cols + b, 1.0));
        add(&row, *y, 1.0 / sigma2);
    }
    for &(b, z, v) in prior {
        add(&[(cols + b, 1.0)], z, 1.0 / v);
    }
    // The offsets sum to 0: the surface's constant carries the fleet's level.
    let all: Vec<(usize, f64)> = (0..boards).map(|b| (cols + b, 1.0)).collect();
    add(&all, 0.0, 1e6 / sigma2);
    for i in 0..n {
        a[[i, i]] += 1e-9;
    }
    let l = a.cholesky().ok()?;
    let theta = chol_solve(&l, &rhs)?;
    let inv = chol_solve(&l, &Array2::eye(n))?;
    let theta: Array1<f64> = theta.column(0).to_owned();
    let rss = rows
        .iter()
        .map(|(b, x, y)| {
            let fit: f64 =
                x.iter().zip(theta.iter()).map(|(a, t)| a * t).sum::<f64>() + theta[cols + b];
            (y - fit).powi(2)
        })
        .sum();
    Some(Fit {
        offsets: (0..boards).map(|b| theta[cols + b]).collect(),
        var: (0..boards).map(|b| inv[[cols + b, cols + b]]).collect(),
        rss,
    })
}

/// Each board's offset from its baseline alone, ln(its baseline / the geometric mean of every
/// board's baseline), shrunk by the baselines' noise: what [`fitted`] falls back on while
/// there are too few measurements to fit.
pub(super) fn offsets_of(baselines: &HashMap<String, Measurement>) -> HashMap<String, f64> {
    // In the boards' order, so that every worker computes the same offsets bit for bit.
    let by_board: BTreeMap<&String, &Measurement> = baselines.iter().collect();
    let logs: Vec<f64> = by_board.values().map(|m| m.energy_j.ln()).collect();
    let vars: Vec<f64> = by_board.values().map(|m| ln_mean_var(m)).collect();
    let mean = stats::mean(&logs);
    // Empirical Bayes: a baseline is one noisy reading of its board's offset, so each raw offset
    // shrinks toward the fleet's mean by how much of the spread its own noise explains. Boards
    // that are alike get offsets near 0 instead of their baselines' noise, which would otherwise
    // reach every value those boards measure; boards that differ keep most of theirs.
    let between = (stats::std_dev(&logs).powi(2) - stats::mean(&vars)).max(0.0);
    by_board
        .keys()
        .zip(logs.iter().zip(&vars))
        .map(|(b, (l, v))| {
            let keep = if between + v > 0.0 {
                between / (between + v)
            } else {
                1.0
            };
            ((*b).clone(), keep * (l - mean))
        })
        .collect()
}

/// The variance of ln(a measurement's mean energy) from the spread of its runs (0 for fewer
/// than two runs).
fn ln_mean_var(m: &Measurement) -> f64 {
    let logs: Vec<f64> = m
        .runs
        .iter()
        .filter(|r| r.energy_j > 0.0)
        .map(|r| r.energy_j.ln())
        .collect();
    stats::std_dev(&logs).powi(2) / logs.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A baseline of three runs with the given energies.
    fn baseline(runs_j: [f64; 3]) -> Measurement {
        crate::study::pool::dvfs_runs(&runs_j)
    }

    fn offsets(boards: &[[f64; 3]]) -> Vec<f64> {
        let bases: HashMap<String, Measurement> = boards
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("b{i}"), baseline(*r)))
            .collect();
        let o = offsets_of(&bases);
        (0..boards.len()).map(|i| o[&format!("b{i}")]).collect()
    }

    #[test]
    fn boards_whose_baselines_differ_by_their_noise_alone_get_no_offset() {
        // Means 100 and 101: 1 % apart, each from runs 5 % apart.
        let o = offsets(&[[95.0, 100.0, 105.0], [97.0, 101.0, 105.0]]);
        assert!(o.iter().all(|x| x.abs() < 1e-12), "{o:?}");
    }

    #[test]
    fn boards_far_apart_keep_nearly_all_of_their_offsets() {
        // 20 % apart, each from runs within 0.4 %: the offsets stay near +-9 %.
        let o = offsets(&[[100.0, 100.2, 100.4], [120.0, 120.24, 120.48]]);
        let raw = 1.2f64.ln() / 2.0;
        assert!((o[1] - raw).abs() < 0.01 * raw, "{o:?} against {raw}");
        assert!((o[0] + o[1]).abs() < 1e-9, "{o:?}");
    }

    /// A record of `board`.
    fn rec(board: &str, record: JournalRecord) -> StoredRecord {
        StoredRecord {
            record,
            origin: crate::study::storage::Origin {
                board: board.into(),
                ..Default::default()
            },
        }
    }

    /// Two boards alike, measuring alternate configurations of the twin's Nano grid (each value
    /// the twin's noiseless energy with 2 % noise); board b's baseline reads `bad` high in every
    /// run.
    fn alike_but_one_baseline(bad: f64, measured: usize) -> (Vec<StoredRecord>, Space) {
        let cat = crate::catalog::Catalog::load(None).unwrap();
        let (nano, model) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let space = Space::new(nano, model, None, &[]).unwrap();
        let truth = crate::twin::true_grid(nano, model, &space, 3200);
        let mut next = {
            let mut x = 0x9e3779b97f4a7c15u64;
            move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as f64 / 1000.0 - 1.0
            }
        };
        let mut records = vec![
            rec(
                "a",
                JournalRecord::Baseline {
                    measurement: baseline([1000.0, 1001.0, 999.0]),
                },
            ),
            rec(
                "b",
                JournalRecord::Baseline {
                    measurement: baseline([1000.0 * bad, 1001.0 * bad, 999.0 * bad]),
                },
            ),
        ];
        for k in 0..measured {
            let i = (k * 7919) % space.size();
            let config = space.config(&space.point(i));
            let energy_j = truth[i].energy_j * (1.0 + 0.02 * next());
            let mut m = baseline([energy_j; 3]);
            m.batch_size = config.batch_size;
            let board = if k % 2 == 0 { "a" } else { "b" };
            records.push(rec(
                board,
                JournalRecord::Measurement {
                    config,
                    measurement: m,
                },
            ));
        }
        (records, space)
    }

    #[test]
    fn a_baseline_10_percent_high_skews_its_board_little_once_its_measurements_are_fitted() {
        let (records, space) = alike_but_one_baseline(1.10, 40);
        let from_baselines =
            offsets_of(&board_baselines(&records, 4, &ProtocolSettings::default()));
        // The baselines alone: runs 0.1 % apart, so nearly all of the 10 % is kept.
        assert!(
            from_baselines["b"] - from_baselines["a"] > 0.08,
            "{from_baselines:?}"
        );
        let fitted = fitted(&records, 4, &space, &ProtocolSettings::default());
        eprintln!("baselines alone {from_baselines:?}, fitted {fitted:?}");
        assert!((fitted["b"] - fitted["a"]).abs() < 0.02, "{fitted:?}");
        // With too few measurements for the surface, the baselines' offsets stand.
        let (few, space) = alike_but_one_baseline(1.10, 6);
        assert_eq!(
            fitted_of(&few, &space),
            offsets_of(&board_baselines(&few, 4, &ProtocolSettings::default()))
        );
    }

    #[test]
    fn boards_that_truly_differ_keep_their_offset_when_fitted() {
        let (mut records, space) = alike_but_one_baseline(1.10, 40);
        // Board b reads 10 % high everywhere, its baseline included: a real difference.
        for r in records.iter_mut().filter(|r| r.origin.board == "b") {
            if let JournalRecord::Measurement { measurement, .. } = &mut r.record {
                measurement.energy_j *= 1.10;
            }
        }
        let fitted = fitted(&records, 4, &space, &ProtocolSettings::default());
        let gap = fitted["b"] - fitted["a"];
        assert!((gap - 1.1f64.ln()).abs() < 0.02, "{fitted:?}");
    }

    fn fitted_of(records: &[StoredRecord], space: &Space) -> HashMap<String, f64> {
        fitted(records, 4, space, &ProtocolSettings::default())
    }

    #[test]
    fn one_board_has_no_offset() {
        assert_eq!(offsets(&[[100.0, 101.0, 102.0]]), vec![0.0]);
    }
}
