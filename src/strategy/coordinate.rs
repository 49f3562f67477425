//! Coordinate descent over the discrete axes. From the incumbent, a golden-section line search
//! along one axis at a time (GPU frequency first, then CPU frequency, then batch size), cycling
//! until a full cycle improves the incumbent by no more than the measurement noise (the relative
//! standard error of the two values compared). Then one restart from a second, seeded start
//! point, if budget remains.

use super::base::{History, Strategy, StrategyInit};
use crate::space::Point;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Golden-section search along one axis, with measured points reused from the history.
#[derive(Debug, Clone)]
struct Line {
    axis: usize,
    base: Point,
    /// Values on the axis.
    n: usize,
    lo: usize,
    hi: usize,
}

enum Step {
    Measure(Point),
    Done(Point),
}

impl Line {
    fn at(&self, i: usize) -> Point {
        let mut p = self.base.clone();
        p[self.axis] = i;
        p
    }

    fn next(&mut self, h: &History) -> Step {
        let (axis, base) = (self.axis, self.base.clone());
        let at = |i: usize| {
            let mut p = base.clone();
            p[axis] = i;
            p
        };
        let value = |i: usize| h.get(&at(i)).map(|o| o.value);
        loop {
            if self.hi - self.lo < 3 {
                if let Some(i) = (self.lo..=self.hi).find(|i| value(*i).is_none()) {
                    return Step::Measure(self.at(i));
                }
                // The best measured point anywhere on the line, the incumbent included.
                let best = (0..self.n)
                    .filter_map(|i| value(i).map(|v| (i, v)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(i, _)| i)
                    .unwrap_or(self.base[self.axis]);
                return Step::Done(self.at(best));
            }
            let span = (self.hi - self.lo) as f64;
            let m1 = self.lo + (0.382 * span).round() as usize;
            let m2 = (self.lo + (0.618 * span).round() as usize).max(m1 + 1);
            match (value(m1), value(m2)) {
                (None, _) => return Step::Measure(self.at(m1)),
                (_, None) => return Step::Measure(self.at(m2)),
                (Some(a), Some(b)) => {
                    if a <= b {
                        self.hi = m2;
                    } else {
                        self.lo = m1;
                    }
                }
            }
        }
    }
}

/// Coordinate descent with one restart.
pub struct Coordinate {
    dims: Vec<usize>,
    /// Axes in search order (the space's priority: GPU frequency first, batch size last).
    order: Vec<usize>,
    budget: usize,
    rng: ChaCha8Rng,
    starts: Vec<Point>,
    restarts_left: u32,
    incumbent: Option<Point>,
    cycle_start: Option<Point>,
    axis_pos: usize,
    line: Option<Line>,
    reason: String,
    done: bool,
}

impl Coordinate {
    /// Starts at the all-max clock corner with the middle value of the last axis in search order
    /// (the batch size).
    pub fn new(init: &StrategyInit) -> Coordinate {
        // The all-max clock corner at the middle batch size: the DVFS-like point.
        let last = init.order().last().copied();
        let first = init
            .dims
            .iter()
            .enumerate()
            .map(|(a, d)| if Some(a) == last { d / 2 } else { d - 1 })
            .collect();
        Coordinate {
            dims: init.dims.clone(),
            order: init.order(),
            budget: init.budget,
            rng: ChaCha8Rng::seed_from_u64(init.seed),
            starts: vec![first],
            restarts_left: 1,
            incumbent: None,
            cycle_start: None,
            axis_pos: 0,
            line: None,
            reason: String::new(),
            done: false,
        }
    }

    fn axes(&self) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|a| self.dims[*a] > 1)
            .collect()
    }

    /// A start point far from what was tried: seeded random, in the middle half of each axis.
    fn second_start(&mut self) -> Point {
        self.dims
            .iter()
            .map(|n| {
                if *n <= 2 {
                    self.rng.random_range(0..*n)
                } else {
                    self.rng.random_range(n / 4..=(3 * n / 4).min(n - 1))
                }
            })
            .collect()
    }
}

impl Strategy for Coordinate {
    fn name(&self) -> &'static str {
        "coordinate"
    }

    fn ask(&mut self, h: &History) -> Option<Point> {
        loop {
            if self.done {
                return None;
            }
            let Some(inc) = self.incumbent.clone() else {
                // The start stays queued until it has been measured.
                let start = self.starts.last()?.clone();
                if !h.contains(&start) {
                    return Some(start);
                }
                self.starts.pop();
                self.incumbent = Some(start.clone());
                self.cycle_start = Some(start);
                self.axis_pos = 0;
                continue;
            };
            let axes = self.axes();
            if axes.is_empty() {
                self.done = true;
                self.reason = "the space has a single configuration".into();
                continue;
            }
            if self.line.is_none() {
                if self.axis_pos < axes.len() {
                    let axis = axes[self.axis_pos];
                    self.line = Some(Line {
                        axis,
                        base: inc.clone(),
                        n: self.dims[axis],
                        lo: 0,
                        hi: self.dims[axis] - 1,
                    });
                } else {
                    // A full cycle is over: go on only if it beat the noise.
                    let start = self.cycle_start.clone().expect("set with the incumbent");
                    let (a, b) = (h.get(&start), h.get(&inc));
                    let improved = match (a, b) {
                        (Some(a), Some(b)) => {
                            let noise = a.rel_se().max(b.rel_se());
                            (a.value - b.value) / a.value > noise
                        }
                        _ => false,
                    };
                    if improved {
                        self.cycle_start = Some(inc.clone());
                        self.axis_pos = 0;
                        continue;
                    }
                    if self.restarts_left > 0 && h.len() < self.budget {
                        self.restarts_left -= 1;
                        let s = self.second_start();
                        self.starts.push(s);
                        self.incumbent = None;
                        continue;
                    }
                    self.done = true;
                    self.reason =
                        "a full cycle of line searches improved by less than the measurement noise"
                            .into();
                    continue;
                }
            }
            let line = self.line.as_mut().expect("set above");
            match line.next(h) {
                Step::Measure(p) => return Some(p),
                Step::Done(best) => {
                    let better = match (h.get(&best), h.get(&inc)) {
                        (Some(b), Some(i)) => b.value < i.value,
                        _ => false,
                    };
                    if better {
                        self.incumbent = Some(best);
                    }
                    self.line = None;
                    self.axis_pos += 1;
                }
            }
        }
    }

    fn stop_reason(&self) -> String {
        if self.reason.is_empty() {
            "converged".into()
        } else {
            self.reason.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Observation;

    /// Drives a strategy on a function of the point until it stops.
    fn drive(s: &mut Coordinate, f: impl Fn(&[usize]) -> f64, budget: usize) -> History {
        let mut h = History::default();
        while h.len() < budget {
            let Some(p) = s.ask(&h) else { break };
            assert!(!h.contains(&p), "asked twice for {p:?}");
            let o = Observation {
                value: f(&p),
                point: p,
                cv: 0.0,
                runs: 3,
                ..Default::default()
            };
            s.tell(&o);
            h.push(o);
        }
        h
    }

    #[test]
    fn finds_the_minimum_of_a_separable_bowl_in_few_steps() {
        let init = StrategyInit {
            axis_order: vec![1, 0, 2],
            ..StrategyInit::new(vec![15, 12, 5], 1, 90)
        };
        let mut s = Coordinate::new(&init);
        let f = |p: &[usize]| {
            1.0 + (p[0] as f64 - 6.0).powi(2)
                + 2.0 * (p[1] as f64 - 4.0).powi(2)
                + (p[2] as f64 - 3.0).powi(2)
        };
        let h = drive(&mut s, f, 90);
        assert_eq!(h.best().unwrap().point, vec![6, 4, 3]);
        assert!(h.len() < 60, "{} measurements", h.len());
        assert!(s.ask(&h).is_none());
    }

    #[test]
    fn line_search_handles_short_axes() {
        let init = StrategyInit::new(vec![2, 1, 1], 3, 10);
        let mut s = Coordinate::new(&init);
        let h = drive(&mut s, |p| 5.0 - p[0] as f64, 10);
        assert_eq!(h.len(), 2);
        assert_eq!(h.best().unwrap().point, vec![1, 0, 0]);
    }
}
