//! What an energy landscape looks like, and the roughness a real board adds to the twin's.
//!
//! Real recorded tables (`../shared/reference/real-landscapes.md`) are far rougher than the
//! twin's noiseless grids: 1-11 % of their configurations are strict local minima and the best
//! often sits well below its neighbours. [`Roughness`] gives a twin board that structure: each
//! configuration's energy is the twin's times a persistent, seeded factor that stays when the
//! configuration is measured again (unlike run-to-run noise). [`Stats`] are the statistics that
//! page uses, so a rough grid can be checked against the real tables' ranges.

use crate::catalog::TwinRough;
use crate::space::{Config, Knob};
use serde::{Deserialize, Serialize};
use statrs::statistics::{Data, Median, OrderStatistics};

/// The median and 90th percentile of `x` (NaN when empty).
fn median_p90(x: &[f64]) -> (f64, f64) {
    if x.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut d = Data::new(x.to_vec());
    (d.median(), d.percentile(90))
}

/// A rough board's persistent structure: the catalogue's parameters and a seed (one seed, one
/// board).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roughness {
    /// How rough.
    pub params: TwinRough,
    /// Which board: another seed, another structure.
    pub seed: u64,
}

/// SplitMix64: a well-mixed hash of a word, so that a configuration's factor depends on its
/// values alone (the same on every run, in any order).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in (0, 1) from the hash of `words`.
fn uniform(words: &[u64]) -> f64 {
    let h = words.iter().fold(0x5eed_u64, |h, w| mix(h ^ mix(*w)));
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A standard normal number from the hash of `words` (Box-Muller).
fn normal(words: &[u64]) -> f64 {
    let (mut a, mut b) = (words.to_vec(), words.to_vec());
    a.push(1);
    b.push(2);
    let (u1, u2) = (uniform(&a), uniform(&b));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Roughness {
    /// The rough board of study `seed` of a model on a board: every study of a bench gets a board
    /// of its own, the same whichever other cells run beside it.
    pub fn of_study(params: TwinRough, seed: u64, board_id: &str, model_id: &str) -> Roughness {
        let text = |t: &str| t.bytes().fold(0u64, |h, b| mix(h ^ u64::from(b)));
        Roughness {
            params,
            seed: mix(seed ^ mix(text(board_id)) ^ mix(text(model_id).rotate_left(17))),
        }
    }

    /// The factor a configuration's energy is multiplied by on this board (1 with no structure).
    pub fn factor(&self, c: &Config) -> f64 {
        let p = &self.params;
        let s = self.seed;
        let values: Vec<(Knob, u64)> = Knob::EVERY
            .into_iter()
            .filter_map(|k| c.get(k).filter(|v| *v != 0).map(|v| (k, v)))
            .collect();
        let key: Vec<u64> = std::iter::once(s)
            .chain(values.iter().map(|(_, v)| *v))
            .collect();
        let with = |tag: u64| {
            let mut k = key.clone();
            k.push(tag);
            k
        };
        let mut ln = p.config_sd * normal(&with(10));
        for (k, v) in &values {
            ln += p.value_sd * normal(&[s, 20 + k.priority() as u64, *v]);
        }
        let between = |[lo, hi]: [f64; 2], tag: u64| lo + (hi - lo) * uniform(&with(tag));
        if uniform(&with(30)) < p.dip_share {
            ln += (1.0 - between(p.dip_depth, 31)).max(1e-3).ln();
        }
        if uniform(&with(40)) < p.bump_share {
            ln += (1.0 + between(p.bump_height, 41)).ln();
        }
        ln.exp()
    }
}

/// The statistics of `real-landscapes.md` for one grid. Neighbours are configurations one step
/// apart on one knob; infinite values (holes) are left out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Share of configurations lower than every neighbour, percent.
    pub local_minima_pct: f64,
    /// Median relative difference between neighbours (higher over lower, minus one), percent.
    pub neighbour_diff_median_pct: f64,
    /// Its 90th percentile, percent.
    pub neighbour_diff_p90_pct: f64,
    /// How far the median of the best configuration's neighbours reads above it, percent.
    pub best_vs_neighbours_pct: f64,
    /// Configurations within 2 % of the best, the best included.
    pub within_2pct: usize,
    /// The second lowest value above the lowest, percent.
    pub second_best_pct: f64,
}

/// Axis neighbours of flat index `i` in a grid of `dims` (row-major, last axis fastest).
fn neighbours(dims: &[usize], i: usize) -> Vec<usize> {
    let p = crate::space::point_at(dims, i);
    let mut stride = 1;
    let mut out = Vec::new();
    for a in (0..dims.len()).rev() {
        if p[a] > 0 {
            out.push(i - stride);
        }
        if p[a] + 1 < dims[a] {
            out.push(i + stride);
        }
        stride *= dims[a];
    }
    out
}

impl Stats {
    /// The statistics of `values`, a grid of `dims` in flat-index order.
    pub fn of(dims: &[usize], values: &[f64]) -> Stats {
        let ok = |i: usize| values[i].is_finite() && values[i] > 0.0;
        let (mut minima, mut counted, mut diffs) = (0usize, 0usize, Vec::new());
        for i in (0..values.len()).filter(|i| ok(*i)) {
            let n: Vec<usize> = neighbours(dims, i).into_iter().filter(|j| ok(*j)).collect();
            counted += 1;
            if !n.is_empty() && n.iter().all(|j| values[*j] > values[i]) {
                minima += 1;
            }
            // Each pair once.
            for j in n.into_iter().filter(|j| *j > i) {
                let (lo, hi) = (values[i].min(values[j]), values[i].max(values[j]));
                diffs.push((hi / lo - 1.0) * 100.0);
            }
        }
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let best_i = (0..values.len())
            .min_by(|a, b| values[*a].total_cmp(&values[*b]))
            .unwrap_or(0);
        let best = values[best_i];
        let around: Vec<f64> = neighbours(dims, best_i)
            .into_iter()
            .filter(|j| ok(*j))
            .map(|j| (values[j] / best - 1.0) * 100.0)
            .collect();
        let (diff_median, diff_p90) = median_p90(&diffs);
        Stats {
            local_minima_pct: 100.0 * minima as f64 / counted.max(1) as f64,
            neighbour_diff_median_pct: diff_median,
            neighbour_diff_p90_pct: diff_p90,
            best_vs_neighbours_pct: median_p90(&around).0,
            within_2pct: sorted.iter().filter(|v| **v <= best * 1.02).count(),
            second_best_pct: sorted.get(1).map_or(0.0, |s| (s / best - 1.0) * 100.0),
        }
    }

    /// Each statistic with its name, in the order of `real-landscapes.md`'s table.
    pub fn fields(&self) -> [(&'static str, f64); 6] {
        [
            ("local_minima_pct", self.local_minima_pct),
            ("neighbour_diff_median_pct", self.neighbour_diff_median_pct),
            ("neighbour_diff_p90_pct", self.neighbour_diff_p90_pct),
            ("best_vs_neighbours_pct", self.best_vs_neighbours_pct),
            ("within_2pct", self.within_2pct as f64),
            ("second_best_pct", self.second_best_pct),
        ]
    }
}

/// The ranges the eleven real tables of `real-landscapes.md` span, each statistic's lowest and
/// highest (`calibration/real-landscapes.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealRanges {
    /// Share of strict local minima, percent.
    pub local_minima_pct: [f64; 2],
    /// Median neighbour difference, percent.
    pub neighbour_diff_median_pct: [f64; 2],
    /// 90th percentile of the neighbour difference, percent.
    pub neighbour_diff_p90_pct: [f64; 2],
    /// Best against the median of its neighbours, percent.
    pub best_vs_neighbours_pct: [f64; 2],
    /// Configurations within 2 % of the best.
    pub within_2pct: [f64; 2],
    /// Second best above the best, percent.
    pub second_best_pct: [f64; 2],
}

impl RealRanges {
    /// The ranges compiled in from `calibration/real-landscapes.toml`.
    pub fn load() -> RealRanges {
        toml::from_str(include_str!("../calibration/real-landscapes.toml"))
            .expect("calibration/real-landscapes.toml is checked by the tests")
    }

    /// Each range with its statistic's name, in the order of [`Stats::fields`].
    pub fn fields(&self) -> [(&'static str, [f64; 2]); 6] {
        [
            ("local_minima_pct", self.local_minima_pct),
            ("neighbour_diff_median_pct", self.neighbour_diff_median_pct),
            ("neighbour_diff_p90_pct", self.neighbour_diff_p90_pct),
            ("best_vs_neighbours_pct", self.best_vs_neighbours_pct),
            ("within_2pct", self.within_2pct),
            ("second_best_pct", self.second_best_pct),
        ]
    }

    /// The statistics of `s` outside their real range, by name.
    pub fn outside(&self, s: &Stats) -> Vec<&'static str> {
        self.fields()
            .iter()
            .zip(s.fields())
            .filter(|((_, [lo, hi]), (_, v))| *v < *lo || *v > *hi)
            .map(|((name, _), _)| *name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_are_one_step_on_one_axis() {
        let dims = [3, 4];
        let mut n = neighbours(&dims, 5); // (1, 1)
        n.sort();
        assert_eq!(n, vec![1, 4, 6, 9]);
        let mut corner = neighbours(&dims, 0);
        corner.sort();
        assert_eq!(corner, vec![1, 4]);
    }

    #[test]
    fn statistics_of_a_small_grid() {
        // A bowl with its minimum at the centre and a second dip in a corner.
        let dims = [3, 3];
        let v = [1.3, 1.2, 1.3, 1.2, 1.0, 1.2, 1.3, 1.2, 1.01];
        let s = Stats::of(&dims, &v);
        assert!((s.local_minima_pct - 200.0 / 9.0).abs() < 1e-9, "{s:?}");
        assert!((s.best_vs_neighbours_pct - 20.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.within_2pct, 2);
        assert!((s.second_best_pct - 1.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_rough_factor_is_persistent_seeded_and_spread_as_asked() {
        let r = Roughness {
            params: TwinRough::default(),
            seed: 3,
        };
        let c = Config::new(921_600, 614_400_000, 8);
        assert_eq!(r.factor(&c), r.factor(&c));
        let other = Roughness { seed: 4, ..r };
        assert_ne!(r.factor(&c), other.factor(&c));
        let f: Vec<f64> = (0..2000u64)
            .map(|i| r.factor(&Config::new(100_000 + i, 614_400_000, 8)).ln())
            .collect();
        let sd = statrs::statistics::Statistics::std_dev(&f);
        assert!((0.02..0.08).contains(&sd), "sd {sd}");
        let flat = Roughness {
            params: TwinRough {
                config_sd: 0.0,
                value_sd: 0.0,
                dip_share: 0.0,
                bump_share: 0.0,
                ..TwinRough::default()
            },
            seed: 3,
        };
        assert_eq!(flat.factor(&c), 1.0);
    }

    #[test]
    fn the_real_ranges_load() {
        let r = RealRanges::load();
        for (name, [lo, hi]) in r.fields() {
            assert!(lo <= hi, "{name}");
        }
    }
}

#[cfg(test)]
mod calibration {
    use super::*;
    use crate::catalog::Catalog;
    use crate::space::Space;

    /// Every rough grid of the paper's twelve cells (the twenty boards `bench --rough` makes of
    /// each) falls inside every range of the real tables; the smooth twin's do not (it is far
    /// smoother). The Orin boards copy these parameters; no real Orin table was there to fit.
    #[test]
    fn rough_grids_fall_inside_the_real_tables_ranges() {
        let cat = Catalog::load(None).unwrap();
        let real = RealRanges::load();
        let mut outside = Vec::new();
        for b in cat
            .boards
            .iter()
            .filter(|b| ["nano", "xavier-nx"].contains(&b.board.id.as_str()))
        {
            for m in &cat.models {
                let space = Space::new(b, m, None, &[]).unwrap();
                let smooth: Vec<f64> = crate::twin::true_grid(b, m, &space, 3200)
                    .iter()
                    .map(|t| t.energy_j)
                    .collect();
                let s = Stats::of(&space.dims(), &smooth);
                eprintln!("smooth {} {}: {s:?}", b.board.id, m.model.id);
                // The boards of `bench --rough`'s default 20 seeds.
                for seed in 0..20 {
                    let r = Roughness::of_study(b.twin.rough, seed, &b.board.id, &m.model.id);
                    let g: Vec<f64> = crate::twin::rough_grid(b, m, &space, 3200, &r)
                        .iter()
                        .map(|t| t.energy_j)
                        .collect();
                    let s = Stats::of(&space.dims(), &g);
                    eprintln!("rough {} {} {seed}: {s:?}", b.board.id, m.model.id);
                    let out = real.outside(&s);
                    if !out.is_empty() {
                        outside.push(format!(
                            "{} {} seed {seed}: {out:?}",
                            b.board.id, m.model.id
                        ));
                    }
                }
            }
        }
        assert!(outside.is_empty(), "{outside:#?}");
    }
}
