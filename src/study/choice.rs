//! The final choice: what a study recommends once it stops exploring.
//!
//! A surrogate's lowest estimate and the lowest readings can disagree, and on a rough board
//! (a sharp dip, a lucky reading) either can be wrong. So the study decides by measuring: the
//! strategy's recommendation and its rivals (measured configurations whose expected gain over it
//! is material by the strategy's own estimates, or by their readings without a model) get the
//! full protocol, one run of each in turn so that drift hits them alike, and the lowest
//! confirmed figure wins. Confirmed figures are told to the strategy, whose recommendation may
//! then name new rivals, for a few rounds. A recorded table cannot be measured again: its
//! readings are the confirmed figures. Last, no full-protocol reading in hand may beat the
//! winner by more than two standard errors: such a reading takes its place.

use super::engine::Found;
use super::{Event, FinalChoice, JournalRecord, StudyError};
use crate::measure::protocol::KeepGoing;
use crate::measure::{Measurement, Run};
use crate::objective::Quantities;
use crate::space::Point;
use crate::strategy::History;
use statrs::distribution::{Continuous, ContinuousCDF, Normal};
use std::collections::HashMap;

/// Expected gain (ln units, relative) over the recommendation from which a measured
/// configuration is worth confirming beside it.
pub const RIVAL_GAIN: f64 = 0.01;

/// Rivals confirmed beside the recommendation in one round, at most.
pub const MAX_RIVALS: usize = 2;

/// Rounds of confirmation at most (a confirmed figure may move the recommendation, whose new
/// rivals are then confirmed in their turn).
pub const MAX_ROUNDS: usize = 3;

/// Standard errors by which a full-protocol reading must beat the winner to take its place.
pub const BEATEN_BY_SE: f64 = 2.0;

/// On a recorded table, the lowest readings that are candidates whatever the model says: a table
/// cannot be measured again, and its readings are all it has.
pub const TABLE_LOWEST: usize = 2;

/// Smallest relative standard error a reading is taken to have (no run is exact).
const MIN_REL_SE: f64 = 0.005;

/// Expected amount by which a normal variable with mean `d` and variance `v` exceeds 0.
fn expected_gain(d: f64, v: f64) -> f64 {
    let s = v.max(0.0).sqrt();
    if s < 1e-12 {
        return d.max(0.0);
    }
    let n = Normal::standard();
    d * n.cdf(d / s) + s * n.pdf(d / s)
}

/// Each measured, feasible configuration's estimate (ln value, variance): the strategy's where
/// it has one, else the reading's with its standard error.
fn estimates_of(h: &History, model: Option<&HashMap<Point, (f64, f64)>>) -> Vec<(Point, f64, f64)> {
    h.iter()
        .filter(|o| !o.failed && !o.pending && o.feasible())
        .map(|o| {
            let own = (
                o.value.max(f64::MIN_POSITIVE).ln(),
                o.rel_se().max(MIN_REL_SE).powi(2),
            );
            let (m, v) = model.and_then(|e| e.get(&o.point).copied()).unwrap_or(own);
            (o.point.clone(), m, v)
        })
        .collect()
}

/// The configurations worth confirming beside `rec`: measured, feasible, with an expected gain
/// over it of at least [`RIVAL_GAIN`], largest first, at most [`MAX_RIVALS`].
pub fn rivals(h: &History, model: Option<&HashMap<Point, (f64, f64)>>, rec: &Point) -> Vec<Point> {
    let est = estimates_of(h, model);
    let Some((_, m0, v0)) = est.iter().find(|(p, _, _)| p == rec).cloned() else {
        return Vec::new();
    };
    let mut gains: Vec<(Point, f64)> = est
        .into_iter()
        .filter(|(p, _, _)| p != rec)
        .map(|(p, m, v)| (p, expected_gain(m0 - m, v0 + v)))
        .filter(|(_, g)| *g >= RIVAL_GAIN)
        .collect();
    gains.sort_by(|a, b| b.1.total_cmp(&a.1));
    gains.into_iter().take(MAX_RIVALS).map(|(p, _)| p).collect()
}

/// The `k` measured, feasible configurations with the lowest readings.
fn lowest_readings(h: &History, k: usize) -> Vec<Point> {
    let mut v: Vec<(&Point, f64)> = h
        .iter()
        .filter(|o| !o.failed && !o.pending && o.feasible())
        .map(|o| (&o.point, o.value))
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v.into_iter().take(k).map(|(p, _)| p.clone()).collect()
}

impl super::Study<'_> {
    /// The point of measurement `i`.
    fn point_of(&self, f: &Found, i: usize) -> Point {
        self.space
            .point_of(&f.measured[i].config)
            .expect("measured in the space")
    }

    /// How far a measurement, at the protocol's length, misses the limits (0: it meets them).
    fn missed_by(&self, m: &Measurement, baseline: &Measurement) -> f64 {
        let full = m.at_length(self.protocol.inferences);
        crate::objective::violation(&self.goal.measured_constraints(&full, baseline))
    }

    /// The objective's value of a measurement at the protocol's length, and its relative
    /// standard error; infeasible measurements are infinite.
    fn judged(&self, m: &Measurement, baseline: &Measurement) -> (f64, f64) {
        if self.missed_by(m, baseline) > 0.0 {
            return (f64::INFINITY, 0.0);
        }
        let full = m.at_length(self.protocol.inferences);
        let se = full.cv / (full.runs.len().max(1) as f64).sqrt();
        (self.goal.value(&Quantities::of(&full)), se.max(MIN_REL_SE))
    }

    /// Decides the recommendation by measuring (see the module's words). `f.best` ends at the
    /// winner; every confirmed figure is journaled and told to the strategy.
    pub(super) fn final_choice(
        &mut self,
        f: &mut Found,
        baseline: &Measurement,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<FinalChoice, StudyError> {
        let mut choice = FinalChoice::default();
        let mut stuck: Vec<usize> = Vec::new();
        // The first round measures the strategy's recommendation and its rivals; later rounds
        // measure only what may beat the best confirmed figure by a material gain.
        let mut anchor = f.best;
        for round in 0..MAX_ROUNDS {
            let Some(a) = anchor else { break };
            let model = self.strategy.estimates(&f.history);
            let point = self.point_of(f, a);
            // The anchor is named when it still needs the protocol: the first recommendation,
            // or a later one the strategy moved to when no candidate meets the limits.
            let mut named: Vec<usize> = if round == 0 || !self.is_full(&f.measured[a].measurement) {
                vec![a]
            } else {
                Vec::new()
            };
            if round == 0 && self.device.backend() == crate::device::BackendKind::Replay {
                named.extend(
                    lowest_readings(&f.history, TABLE_LOWEST)
                        .iter()
                        .filter_map(|p| f.index.get(p).copied()),
                );
            }
            named.extend(
                rivals(&f.history, model.as_ref(), &point)
                    .iter()
                    .filter_map(|p| f.index.get(p).copied()),
            );
            for i in &named {
                if !choice.candidates.contains(i) {
                    choice.candidates.push(*i);
                }
            }
            let todo: Vec<usize> = named
                .into_iter()
                .filter(|i| !self.is_full(&f.measured[*i].measurement) && !stuck.contains(i))
                .collect();
            if todo.is_empty() || self.interrupted() {
                break;
            }
            if !self.confirm_interleaved(f, &todo, baseline, &mut stuck, on_event)? {
                break;
            }
            f.recommended.pop();
            self.recommend(f);
            anchor = self.leader(f, &choice.candidates, baseline).or(f.best);
        }
        self.settle(f, &mut choice, baseline);
        Ok(choice)
    }

    /// The candidate with the lowest figure (feasible), if any.
    fn leader(&self, f: &Found, candidates: &[usize], baseline: &Measurement) -> Option<usize> {
        candidates
            .iter()
            .map(|i| (*i, self.judged(&f.measured[*i].measurement, baseline).0))
            .filter(|(_, v)| v.is_finite())
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// When no candidate meets the limits and the strategy's recommendation is not at the full
    /// protocol: the candidate at the full protocol that misses them by the least, so that the
    /// least infeasible recommendation is a confirmed figure too.
    fn least_infeasible(
        &self,
        f: &Found,
        candidates: &[usize],
        baseline: &Measurement,
    ) -> Option<usize> {
        if f.best
            .is_some_and(|b| self.is_full(&f.measured[b].measurement))
        {
            return None;
        }
        candidates
            .iter()
            .filter(|i| self.is_full(&f.measured[**i].measurement))
            .map(|i| (*i, self.missed_by(&f.measured[*i].measurement, baseline)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// The winner among the candidates (the lowest confirmed figure, feasible first), then any
    /// full-protocol reading that beats it by more than [`BEATEN_BY_SE`] standard errors.
    pub(super) fn settle(
        &mut self,
        f: &mut Found,
        choice: &mut FinalChoice,
        baseline: &Measurement,
    ) {
        let judged: Vec<(f64, f64)> = f
            .measured
            .iter()
            .map(|m| self.judged(&m.measurement, baseline))
            .collect();
        let mut winner = self
            .leader(f, &choice.candidates, baseline)
            .or_else(|| self.least_infeasible(f, &choice.candidates, baseline))
            .or(f.best);
        // A full-protocol reading well below the winner is the better figure in hand.
        while let Some(w) = winner {
            let (vw, sw) = judged[w];
            let beats = (0..f.measured.len())
                .filter(|i| *i != w && self.is_full(&f.measured[*i].measurement))
                .filter(|i| {
                    let (v, s) = judged[*i];
                    vw - v > BEATEN_BY_SE * (v * s).hypot(vw * sw)
                })
                .min_by(|a, b| judged[*a].0.total_cmp(&judged[*b].0));
            match beats {
                Some(i) if self.is_full(&f.measured[w].measurement) => {
                    if !choice.candidates.contains(&i) {
                        choice.candidates.push(i);
                    }
                    winner = Some(i);
                }
                Some(i) => {
                    // The winner is not at the full protocol (a table's readings, or a signal):
                    // say which reading beats it rather than compare unlike figures.
                    choice.unresolved.push(format!(
                        "measurement #{} reads {:.1} % lower at the full protocol, but the recommendation could not be measured to the full protocol to compare",
                        i + 1,
                        (1.0 - judged[i].0 / vw) * 100.0
                    ));
                    break;
                }
                None => break,
            }
        }
        if let Some(w) = winner {
            if f.best != Some(w) {
                f.best = Some(w);
                f.recommended.pop();
                f.recommended.push(w);
            }
        }
        choice.winner = winner;
    }

    /// Measures `todo` (indices into `f.measured`) at the full protocol, one run of each in
    /// turn, until each meets it (or a recorded table has no more readings of it: `stuck`).
    /// Journals each finished figure and tells it to the strategy. `false` when a signal
    /// stopped it.
    fn confirm_interleaved(
        &mut self,
        f: &mut Found,
        todo: &[usize],
        baseline: &Measurement,
        stuck: &mut Vec<usize>,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Result<bool, StudyError> {
        // What each cost while exploring, and its full-length runs so far.
        let mut explored: HashMap<usize, f64> = HashMap::new();
        loop {
            let open: Vec<usize> = todo
                .iter()
                .copied()
                .filter(|i| !self.is_full(&f.measured[*i].measurement) && !stuck.contains(i))
                .collect();
            if open.is_empty() {
                return Ok(true);
            }
            for i in open {
                if self.interrupted() {
                    return Ok(false);
                }
                let m = f.measured[i].measurement.clone();
                explored.entry(i).or_insert(m.wall_s);
                // A resumed study's confirmation comes from its journal, as it was recorded.
                let journaled = self.prior.confirmed.get(&f.measured[i].config).cloned();
                let next = match journaled.clone() {
                    Some(c) => c,
                    None => match self.one_more_run(f.measured[i].config, &m)? {
                        Some(next) => next,
                        None => return Ok(false),
                    },
                };
                let grew = journaled.is_some()
                    || next.runs.len() > full_runs(&m, self.protocol.inferences).len();
                f.measured[i].measurement = next.clone();
                if !grew {
                    stuck.push(i);
                }
                if journaled.is_some() && !self.is_full(&next) {
                    // Recorded because it could not grow (a table ran out): it stays as it is.
                    stuck.push(i);
                }
                if self.is_full(&next) || !grew || journaled.is_some() {
                    // A confirmation is recorded once, finished (a storage keeps one per
                    // configuration); a signal mid-round loses that round's runs only.
                    if let Some(j) = self.journal.as_mut().filter(|_| journaled.is_none()) {
                        j.record(&JournalRecord::Confirmed {
                            config: f.measured[i].config,
                            measurement: next.clone(),
                        })?;
                    }
                    let point = self.point_of(f, i);
                    self.tell_confirmed(f, point, &next, baseline);
                    if grew {
                        on_event(Event::Confirmed {
                            measured: &f.measured[i],
                            extra_wall_s: next.wall_s - explored[&i],
                        });
                    }
                }
            }
        }
    }

    /// `m` (of `config`) with one more full-length run (its screening runs do not count);
    /// `None` when a signal stopped it. Its cost adds to what the configuration cost so far.
    fn one_more_run(
        &mut self,
        config: crate::space::Config,
        m: &Measurement,
    ) -> Result<Option<Measurement>, StudyError> {
        let earlier = full_runs(m, self.protocol.inferences);
        let before = earlier.len();
        let once = move |runs: &[Run]| runs.len() <= before;
        let window = (&earlier[..], m.window_repeats);
        let Some(mut next) = self.at_full_protocol(config, window, Some(&once as &KeepGoing))?
        else {
            return Ok(None);
        };
        next.wall_s += m.wall_s;
        Ok(Some(next))
    }
}

/// The runs of `m` that count towards a full-protocol measurement: all of them when they were
/// full-length (each reported per `inferences`, whatever window it was measured in; the
/// protocol goes on at that window), none when they were screening runs.
pub(super) fn full_runs(m: &Measurement, inferences: u32) -> Vec<Run> {
    if m.inferences == inferences {
        m.runs.clone()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{Device, DeviceError, EnergyWindow, FreqSetting, VirtualMeter};
    use crate::measure::ProtocolSettings;
    use crate::space::{Axis, Config, Knob, Space};
    use crate::strategy::{Observation, Strategy, StrategyInit};
    use crate::study::{Exploration, Outcome, Prior, Study};
    use crate::workload::{Meter, Workload, WorkloadRun};
    use std::sync::{Arc, Mutex};

    fn obs(point: Point, value: f64, cv: f64, runs: u32) -> Observation {
        Observation {
            point,
            value,
            cv,
            runs,
            ..Default::default()
        }
    }

    #[test]
    fn rivals_are_the_readings_that_may_well_beat_the_recommendation() {
        let mut h = History::default();
        h.push(obs(vec![0], 100.0, 0.02, 1));
        h.push(obs(vec![1], 95.0, 0.02, 1)); // 5 % lower, noise 2 %: a rival
        h.push(obs(vec![2], 99.9, 0.001, 3)); // a tie, exactly known: no gain to speak of
        h.push(obs(vec![3], 130.0, 0.02, 1)); // far above: none
        let r = rivals(&h, None, &vec![0]);
        assert_eq!(r, vec![vec![1]]);
        // A model that says reading 1 was luck takes it out.
        let model: HashMap<Point, (f64, f64)> = [
            (vec![0], (100f64.ln(), 1e-5)),
            (vec![1], (101f64.ln(), 1e-5)),
            (vec![2], (100f64.ln(), 1e-5)),
            (vec![3], (130f64.ln(), 1e-5)),
        ]
        .into();
        assert!(rivals(&h, Some(&model), &vec![0]).is_empty());
    }

    #[test]
    fn expected_gain_is_the_mean_when_sure_and_grows_with_doubt() {
        assert!((expected_gain(0.03, 0.0) - 0.03).abs() < 1e-12);
        assert_eq!(expected_gain(-0.03, 0.0), 0.0);
        assert!(expected_gain(0.0, 0.02f64.powi(2)) > expected_gain(0.0, 0.01f64.powi(2)));
    }

    /// A board measured exactly: one GPU-clock axis (1 to 10 Hz, batch 8), each clock's energy
    /// per full run of 3200 inferences, screening runs reading `screened[i]` times as much per
    /// inference; under the governors 150 J.
    #[derive(Clone)]
    struct Land {
        now: Arc<Mutex<(FreqSetting, VirtualMeter)>>,
        full: Vec<f64>,
        screened: Vec<f64>,
    }

    impl Device for Land {
        fn backend(&self) -> crate::device::BackendKind {
            crate::device::BackendKind::Sim
        }
        fn apply(&mut self, s: &FreqSetting) -> Result<(), DeviceError> {
            self.now.lock().unwrap().0 = *s;
            Ok(())
        }
        fn window_begin(&mut self) -> Result<(), DeviceError> {
            self.now.lock().unwrap().1.begin();
            Ok(())
        }
        fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
            self.now.lock().unwrap().1.end()
        }
        fn restore(&mut self) -> Result<(), DeviceError> {
            self.now.lock().unwrap().0 = FreqSetting::Dvfs;
            Ok(())
        }
    }

    impl Workload for Land {
        fn name(&self) -> String {
            "land".into()
        }
        fn run(&mut self, _: u32, n: u32, m: &mut dyn Meter) -> Result<WorkloadRun, DeviceError> {
            m.begin()?;
            let mut now = self.now.lock().unwrap();
            let per_run = match now.0 {
                FreqSetting::Pinned { gpu_freq_hz, .. } => {
                    let i = gpu_freq_hz as usize - 1;
                    self.full[i] * if n < 3200 { self.screened[i] } else { 1.0 }
                }
                FreqSetting::Dvfs => 150.0,
            };
            now.1.advance(n as f64 * 0.01, per_run * n as f64 / 3200.0);
            drop(now);
            m.end()?;
            Ok(WorkloadRun::default())
        }
    }

    fn land_space() -> Space {
        Space::from_axes(
            vec![Axis {
                knob: Knob::GpuFreqHz,
                values: (1..=10).collect(),
            }],
            Config::new(1_000_000, 0, 8),
        )
    }

    /// A study of `strategy` on `land` that measures every configuration, exploring as given.
    fn study_on(land: &Land, strategy: Box<dyn Strategy>, exploration: Exploration) -> Outcome {
        let space = land_space();
        let (mut dev, mut wl) = (land.clone(), land.clone());
        let mut study = Study {
            space: &space,
            device: &mut dev,
            workload: &mut wl,
            strategy,
            budget: 10,
            protocol: ProtocolSettings {
                warmup_inferences: 0,
                ..ProtocolSettings::default()
            },
            baseline_batch: 8,
            journal: None,
            prior: Prior::default(),
            interrupt: None,
            goal: Default::default(),
            exploration,
        };
        study.run(|_| {}).unwrap()
    }

    fn land(full: [f64; 10], screened: [f64; 10]) -> Land {
        Land {
            now: Arc::new(Mutex::new((FreqSetting::Dvfs, VirtualMeter::default()))),
            full: full.to_vec(),
            screened: screened.to_vec(),
        }
    }

    #[test]
    fn a_confirmation_that_moves_three_times_still_ends_confirmed_at_the_lowest_figure() {
        // Screening runs read the first four clocks low; at the full protocol the first three
        // are the worst of all and the fourth is the best. Each confirmation moves the
        // recommendation on.
        let l = land(
            [
                110.0, 109.0, 108.0, 95.0, 100.0, 100.0, 101.0, 102.0, 103.0, 104.0,
            ],
            [
                90.0 / 110.0,
                91.0 / 109.0,
                92.0 / 108.0,
                93.0 / 95.0,
                1.0,
                1.0,
                1.0,
                1.0,
                1.0,
                1.0,
            ],
        );
        let init = StrategyInit::new(vec![10], 1, 10);
        let o = study_on(
            &l,
            crate::strategy::make("random", &init).unwrap(),
            Exploration {
                race: true,
                screen_inferences: Some(400),
            },
        );
        let gpu = |i: usize| o.measured[i].config.gpu_freq_hz;
        let named: Vec<u64> = o.choice.candidates.iter().map(|i| gpu(*i)).collect();
        // Round 1 confirms clock 1 (110 J); round 2 its rivals 2 and 3 (109, 108 J); round 3
        // clock 4 (95 J) and one more rival. Each round moved the recommendation on.
        assert_eq!(named[..4], [1, 2, 3, 4], "{named:?}");
        let best = o.best().unwrap();
        assert_eq!(best.config.gpu_freq_hz, 4, "{named:?}");
        assert!(o.best_full, "the recommendation ends at the full protocol");
        assert!((best.measurement.energy_j - 95.0).abs() < 1e-9);
        assert_eq!(o.recommended.last().map(|i| gpu(*i)), Some(4));
    }

    /// A strategy that recommends clock 5 whatever was measured, and says its model agrees.
    struct Stubborn;
    impl Strategy for Stubborn {
        fn name(&self) -> &'static str {
            "stubborn"
        }
        fn ask(&mut self, h: &History) -> Option<Point> {
            (0..10).map(|i| vec![i]).find(|p| !h.contains(p))
        }
        fn recommend(&mut self, _: &History) -> Option<Point> {
            Some(vec![4])
        }
        fn estimates(&mut self, h: &History) -> Option<HashMap<Point, (f64, f64)>> {
            Some(
                h.iter()
                    .map(|o| {
                        (
                            o.point.clone(),
                            (if o.point == [4] { 0.0 } else { 1.0 }, 1e-6),
                        )
                    })
                    .collect(),
            )
        }
    }

    #[test]
    fn a_full_protocol_reading_two_standard_errors_below_the_recommendation_takes_its_place() {
        // Every configuration at the full protocol; clock 5 (the strategy's pick) reads 100 J,
        // clock 8 reads 90 J, exactly: 10 % lower, far beyond two standard errors.
        let l = land(
            [
                120.0, 118.0, 115.0, 110.0, 100.0, 105.0, 95.0, 90.0, 99.0, 104.0,
            ],
            [1.0; 10],
        );
        let o = study_on(&l, Box::new(Stubborn), Exploration::default());
        let best = o.best().unwrap();
        assert_eq!(best.config.gpu_freq_hz, 8);
        assert!(o.best_full);
        assert!(o.choice.unresolved.is_empty());
        // A reading within two standard errors does not: 99.5 J against 100 J.
        let mut near = [
            120.0, 118.0, 115.0, 110.0, 100.0, 105.0, 101.0, 99.5, 102.0, 104.0,
        ];
        let o = study_on(
            &land(near, [1.0; 10]),
            Box::new(Stubborn),
            Exploration::default(),
        );
        assert_eq!(o.best().unwrap().config.gpu_freq_hz, 5);
        near[7] = 95.0;
        let o = study_on(
            &land(near, [1.0; 10]),
            Box::new(Stubborn),
            Exploration::default(),
        );
        assert_eq!(o.best().unwrap().config.gpu_freq_hz, 8);
    }
}
