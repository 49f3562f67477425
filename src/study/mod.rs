//! The study: the loop that asks a strategy for configurations, measures them through the
//! protocol, journals every measurement before the next starts, stops on budget, convergence or
//! interrupt, and always puts the device back as it found it. A study resumes from its journal
//! without re-measuring.

use crate::device::{Device, DeviceError, FreqSetting};
use crate::measure::protocol::{measure_how, measure_or_stop, How, KeepGoing};
use crate::measure::{stats, Measurement, ProtocolSettings, Run};
use crate::objective::{violation, Goal, Quantities};
use crate::space::Point;
use crate::space::{Config, Space};
use crate::strategy::{penalised, History, Observation, Strategy};
use crate::workload::Workload;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;

pub mod choice;
pub mod fleet;
pub mod journal;
pub mod storage;
pub use journal::{Journal, JournalError, JournalRecord, Prior, StudyHeader};
pub use storage::{StorageError, StudyLog};

/// A measured configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The configuration.
    pub config: Config,
    /// Its measurement.
    pub measurement: Measurement,
    /// Whether it came from the journal rather than the device.
    #[serde(skip)]
    pub from_journal: bool,
}

/// Events a study reports while it runs (for progress displays).
#[derive(Debug)]
pub enum Event<'a> {
    /// The DVFS baseline was measured.
    Baseline(&'a Measurement),
    /// A configuration was measured; `n` of `budget`.
    Measured {
        /// Measurements so far.
        n: usize,
        /// Budget.
        budget: usize,
        /// What was measured.
        measured: &'a Measured,
        /// Best so far.
        best: &'a Measured,
        /// Its energy for a run of the protocol's length (a screened measurement scaled up).
        best_energy_j: f64,
    },
    /// The recommendation was measured again at the full protocol.
    Confirmed {
        /// The configuration with its full measurement.
        measured: &'a Measured,
        /// Board time the confirmation added, seconds.
        extra_wall_s: f64,
    },
    /// The workload failed at a configuration; the study goes on.
    Failed {
        /// The configuration.
        config: &'a Config,
        /// What went wrong.
        error: &'a str,
    },
}

/// Failures in a row after which a study stops: the workload is probably broken, not the
/// configurations.
pub const MAX_FAILURES_IN_A_ROW: usize = 3;

/// Why a study stopped; displayed as the sentence the reports show.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// A signal asked it to stop.
    Interrupted,
    /// The measurement budget was used.
    Budget(usize),
    /// The workload failed at [`MAX_FAILURES_IN_A_ROW`] configurations in a row.
    FailuresInARow {
        /// The last error.
        last_error: String,
    },
    /// The strategy had nothing more to ask, in its own words (converged, grid exhausted).
    Strategy(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Interrupted => write!(f, "interrupted"),
            StopReason::Budget(n) => write!(f, "the budget of {n} measurements was used"),
            StopReason::FailuresInARow { last_error } => write!(
                f,
                "the workload failed at {MAX_FAILURES_IN_A_ROW} configurations in a row; fix it and continue with --resume (last error: {last_error})"
            ),
            StopReason::Strategy(words) => f.write_str(words),
        }
    }
}

/// What a study found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// DVFS at the baseline batch size.
    pub baseline: Measurement,
    /// DVFS at the recommended batch size (equal to `baseline` when the batch sizes agree).
    pub baseline_same_batch: Option<Measurement>,
    /// Every configuration measured, in order.
    pub measured: Vec<Measured>,
    /// Index into `measured` of the recommendation.
    pub best: Option<usize>,
    /// Index into `measured` of the recommendation after each measurement.
    pub recommended: Vec<usize>,
    /// Why the study stopped.
    pub stop_reason: StopReason,
    /// Measurements taken from the journal of an earlier run.
    pub resumed: usize,
    /// Configurations at which the workload failed, with the error.
    pub failed: Vec<(Config, String)>,
    /// Inferences of a full run: screened measurements are scaled to it wherever they are
    /// compared with full ones.
    pub inferences: u32,
    /// Whether the recommendation's figure meets the full protocol (its length, at least the
    /// fewest runs, converged or out of runs); a signal may stop a study before it is confirmed.
    pub best_full: bool,
    /// How the recommendation was decided: the candidates measured at the full protocol.
    pub choice: choice::FinalChoice,
    /// How well the strategy's model describes the measurements, where it has one.
    pub surrogate: Option<crate::strategy::ModelCheck>,
}

impl Outcome {
    /// Whether an interrupt stopped the study.
    pub fn interrupted(&self) -> bool {
        self.stop_reason == StopReason::Interrupted
    }
    /// The recommended configuration.
    pub fn best(&self) -> Option<&Measured> {
        self.best.map(|i| &self.measured[i])
    }
    /// The history a strategy saw, rebuilt from the measurements.
    pub fn history(&self, space: &Space) -> History {
        let mut h = History::default();
        for m in &self.measured {
            if let Some(point) = space.point_of(&m.config) {
                h.push(Observation {
                    point,
                    value: m.measurement.at_length(self.inferences).energy_j,
                    cv: m.measurement.cv,
                    runs: m.measurement.runs.len() as u32,
                    ..Default::default()
                });
            }
        }
        h
    }

    /// Energy of the recommendation after each measurement (screened figures scaled).
    pub fn trace_j(&self) -> Vec<f64> {
        self.recommended
            .iter()
            .map(|i| {
                self.measured[*i]
                    .measurement
                    .at_length(self.inferences)
                    .energy_j
            })
            .collect()
    }

    /// Total time spent measuring (what the study cost on the device), seconds.
    pub fn tuning_time_s(&self) -> f64 {
        self.baseline.wall_s
            + self.baseline_same_batch.as_ref().map_or(0.0, |m| m.wall_s)
            + self
                .measured
                .iter()
                .map(|m| m.measurement.wall_s)
                .sum::<f64>()
    }
}

/// How a study spends board time on configurations it will not recommend. The recommendation
/// is always confirmed at the full protocol, so what a report states meets it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Exploration {
    /// Racing: a configuration gets one run first, and more only while its interval overlaps
    /// the incumbent's (or to reach the CV target once it is the recommendation).
    pub race: bool,
    /// Inferences per run while exploring (`None`: the protocol's); a screened figure is never
    /// reported as a final one.
    pub screen_inferences: Option<u32>,
}

impl Exploration {
    /// What a study may use of what was asked for. A study of the whole grid measures it at the
    /// full protocol. A recorded row is a run of its own length (`recorded`), which screening
    /// would only scale. A Pareto front is mapped from full measurements, and limits need the
    /// runs' spread for their noise margin, so neither races (a Pareto study does not screen
    /// either; limits are judged on screened runs scaled to full length). A strategy that
    /// compares readings one by one (`!pools_readings`: coordinate descent, annealing, random)
    /// cannot judge short runs, whose noise and settling bias would decide its comparisons: it
    /// explores at full length.
    pub fn for_study(
        self,
        goal: &Goal,
        whole_grid: bool,
        recorded: bool,
        pools_readings: bool,
    ) -> Exploration {
        if whole_grid || goal.pareto {
            return Exploration::default();
        }
        Exploration {
            race: self.race && goal.limits_info().is_empty(),
            screen_inferences: self
                .screen_inferences
                .filter(|_| !recorded && pools_readings),
        }
    }
}

/// Default budget: 10 % of the grid, at least 10 (or the whole grid when smaller).
pub fn default_budget(grid: usize) -> usize {
    grid.div_ceil(10).max(10).min(grid)
}

/// Configurations of a recorded table searched whole by default: reading a table costs no board
/// time, so stopping early saves nothing there.
pub const TABLE_WHOLE: usize = 60;

/// Default budget on a recorded table: the whole table up to [`TABLE_WHOLE`] configurations,
/// else the larger of that and [`default_budget`].
pub fn table_budget(grid: usize) -> usize {
    if grid <= TABLE_WHOLE {
        grid
    } else {
        default_budget(grid).max(TABLE_WHOLE)
    }
}

/// Shortest screening run, seconds at the DVFS baseline's pace.
pub const MIN_SCREEN_S: f64 = 20.0;

/// Standard errors either side of a mean that a racing interval spans.
const RACE_Z: f64 = 0.5;

/// Runs at most while exploring: one for a strategy whose surrogate pools neighbouring
/// configurations (a second run of a near-tie costs more than it tells it), two for one that
/// compares readings one by one; the recommendation and its rivals are confirmed at the full
/// protocol anyway.
fn race_max_runs(pools_readings: bool) -> usize {
    if pools_readings {
        1
    } else {
        2
    }
}

/// Configurations measured first that get a second exploring run whatever racing says: the
/// replicated runs give the surrogate the noise of one exploring run, which three baseline runs
/// tell poorly, and a second run of a configuration costs one window (no clock change, no
/// warm-up).
const REPLICATED: usize = 4;

/// Smallest per-run CV the race assumes (a baseline's three runs may agree by chance).
const RACE_MIN_CV: f64 = 0.01;

/// The twin's predictions for every configuration of `space`: the goal's value and the time of
/// a run (what `--prior twin` gives a strategy).
pub fn twin_prior(
    b: &crate::catalog::Board,
    m: &crate::catalog::Model,
    space: &Space,
    goal: &Goal,
    inferences: u32,
) -> crate::strategy::GridPrior {
    let grid = crate::twin::true_grid(b, m, space, inferences);
    let value = grid
        .iter()
        .zip(space.points())
        .map(|(t, p)| {
            goal.value(&Quantities {
                energy_j: t.energy_j,
                time_s: t.time_s,
                inferences,
                batch_size: space.config(&p).batch_size,
            })
        })
        .collect();
    crate::strategy::GridPrior {
        value,
        time_s: grid.iter().map(|t| t.time_s).collect(),
    }
}

/// The study loop.
pub struct Study<'a> {
    /// Search space.
    pub space: &'a Space,
    /// Device to measure on.
    pub device: &'a mut dyn Device,
    /// Workload to run.
    pub workload: &'a mut dyn Workload,
    /// Strategy.
    pub strategy: Box<dyn Strategy>,
    /// Measurement budget.
    pub budget: usize,
    /// Protocol settings.
    pub protocol: ProtocolSettings,
    /// Batch size of the DVFS baseline.
    pub baseline_batch: u32,
    /// Where each record goes (a journal file, a study in a database), if anywhere.
    pub journal: Option<Box<dyn StudyLog>>,
    /// Measurements from an earlier run of the same study.
    pub prior: Prior,
    /// Set by a signal handler to stop between measurements.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Objective and constraints.
    pub goal: Goal,
    /// Racing and screening runs.
    pub exploration: Exploration,
}

/// Failures of a study: the device failed, or the journal could not be written. What was
/// measured before is in the journal.
#[derive(Debug, Error)]
pub enum StudyError {
    /// The device or workload failed.
    #[error("measuring {what} failed: {source}")]
    Device {
        /// What was being measured.
        what: String,
        /// Underlying error.
        source: DeviceError,
    },
    /// The journal or the study's storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What [`Study::take`] got for a configuration.
enum Taken {
    /// Its measurement, and whether it came from the journal.
    Measured(Measurement, bool),
    /// The workload failed there (with its error), or a recorded table has no row for it
    /// (`false`: a hole says nothing of whether the workload works).
    Failed(String, bool),
    /// A signal stopped the measurement.
    Interrupted,
}

impl Study<'_> {
    fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    fn baseline_at(&mut self, batch: u32) -> Result<(Measurement, bool), StudyError> {
        if let Some(m) = self.prior.baselines.get(&batch) {
            return Ok((m.clone(), true));
        }
        let m = measure_or_stop(
            self.device,
            self.workload,
            &FreqSetting::Dvfs,
            batch,
            &self.protocol,
            self.interrupt.as_deref(),
        )
        .map_err(|source| StudyError::Device {
            what: format!("the DVFS baseline at batch {batch}"),
            source,
        })?;
        if let Some(j) = self.journal.as_mut() {
            j.record(&JournalRecord::Baseline {
                measurement: m.clone(),
            })?;
        }
        Ok((m, false))
    }

    /// What the strategy is told of a measurement: the objective's value, the constraints
    /// (conservative), the batch latency, all for runs of the protocol's length (a screened
    /// measurement scaled up). A strategy that does not model constraints sees an infeasible
    /// point as worse than any feasible one. `run_cv` stands in for the CV of a single run.
    fn observe(
        &self,
        point: Point,
        m: &Measurement,
        baseline: &Measurement,
        run_cv: f64,
    ) -> Observation {
        let screened = m.inferences != self.protocol.inferences;
        let m = &m.at_length(self.protocol.inferences);
        let q = Quantities::of(m);
        let constraints = self.goal.measured_constraints(m, baseline);
        let v = violation(&constraints);
        let value = if v > 0.0 && !self.strategy.handles_constraints() {
            penalised(v)
        } else {
            self.goal.value(&q)
        };
        Observation {
            point,
            value,
            cv: if m.runs.len() < 2 { run_cv } else { m.cv },
            runs: m.runs.len() as u32,
            constraints,
            latency_ms: q.latency_ms(),
            failed: false,
            cost_s: m.wall_s,
            spread_unknown: m.runs.len() < 2 && baseline.runs.len() < 2,
            first_run_excess: first_run_excess(&m.runs),
            screened,
            pending: false,
        }
    }

    /// The protocol's settings while exploring at `batch`: screening runs where asked for,
    /// whole batches, and never shorter than [`MIN_SCREEN_S`] at the baseline's pace (a short
    /// window is noisy and biased by the settling after the clock change).
    fn explore_settings(&self, batch: u32, baseline: &Measurement) -> ProtocolSettings {
        let mut p = self.protocol;
        if let Some(n) = self.exploration.screen_inferences {
            let per_inference_s = baseline.time_s / baseline.inferences.max(1) as f64;
            let long_enough = if per_inference_s > 0.0 {
                (MIN_SCREEN_S / per_inference_s).ceil().min(u32::MAX as f64) as u32
            } else {
                0
            };
            // In u64: a workload whose time does not grow with its count asks for ~2^32.
            let b = u64::from(batch.max(1));
            let n = u64::from(n.max(long_enough)).div_ceil(b) * b;
            p.inferences = n.min(u64::from(p.inferences)).max(1) as u32;
        }
        p
    }

    /// CV of one exploring run: the baseline's, floored. Screening windows are held to at least
    /// [`MIN_SCREEN_S`], where the run-to-run spread dominates what the window adds.
    fn run_cv(&self, baseline: &Measurement) -> f64 {
        baseline.cv.max(RACE_MIN_CV)
    }

    /// Whether a measurement meets the full protocol (what a report may state).
    fn is_full(&self, m: &Measurement) -> bool {
        let p = &self.protocol;
        m.inferences == p.inferences
            && m.runs.len() as u32 >= p.min_runs
            && (m.converged || m.runs.len() as u32 >= p.max_runs)
    }

    /// Runs the study. The device is restored on every path out of this function.
    pub fn run(&mut self, mut on_event: impl FnMut(Event<'_>)) -> Result<Outcome, StudyError> {
        let result = self.run_inner(&mut on_event);
        let restored = self.device.restore();
        let outcome = result?;
        restored.map_err(|source| StudyError::Device {
            what: "restoring the device".into(),
            source,
        })?;
        Ok(outcome)
    }

    /// A configuration's measurement: from the journal of an earlier run, or measured now
    /// (exploring: screening runs, raced against `incumbent`, its value and relative standard
    /// error) and journaled (a failure of the workload too).
    fn take(
        &mut self,
        config: Config,
        incumbent: Option<(f64, f64)>,
        replicate: bool,
        baseline: &Measurement,
    ) -> Result<Taken, StudyError> {
        if let Some(m) = self.prior.measurements.get(&config) {
            return Ok(Taken::Measured(m.clone(), true));
        }
        let settings = self.explore_settings(config.batch_size, baseline);
        let run_cv = self.run_cv(baseline);
        let (goal, full, batch_size) = (self.goal, self.protocol.inferences, config.batch_size);
        let max_runs = race_max_runs(self.strategy.pools_readings());
        // Racing: more runs only while this configuration's interval overlaps the incumbent's.
        let keep = move |runs: &[Run]| -> bool {
            // A second run of the first few configurations: the noise of one exploring run,
            // measured where it is, tells the surrogate how much of what differs between
            // configurations is noise and how much is the board's own structure.
            if replicate && runs.len() < 2 {
                return true;
            }
            // The first configuration has nothing to race: one run tells the search enough.
            let Some((inc, inc_se)) = incumbent else {
                return false;
            };
            let k = full as f64 / settings.inferences as f64;
            let q = Quantities {
                energy_j: stats::mean(&runs.iter().map(|r| r.energy_j).collect::<Vec<_>>()) * k,
                time_s: stats::mean(&runs.iter().map(|r| r.time_s).collect::<Vec<_>>()) * k,
                inferences: full,
                batch_size,
            };
            if runs.len() >= max_runs {
                return false;
            }
            let se = run_cv / (runs.len() as f64).sqrt();
            goal.value(&q) * (1.0 - RACE_Z * se) <= inc * (1.0 + RACE_Z * inc_se)
        };
        let how = How {
            stop: self.interrupt.as_deref(),
            earlier: &[],
            earlier_window_repeats: 1,
            keep_going: self.exploration.race.then_some(&keep as &KeepGoing),
        };
        let m = match measure_how(
            self.device,
            self.workload,
            &config.setting(),
            config.batch_size,
            &settings,
            &how,
        ) {
            Ok(m) => m,
            Err(DeviceError::Interrupted) => return Ok(Taken::Interrupted),
            Err(e @ (DeviceError::Workload(_) | DeviceError::NotRecorded(_))) => {
                let workload = matches!(e, DeviceError::Workload(_));
                let error = e.to_string();
                if let Some(j) = self.journal.as_mut() {
                    j.record(&JournalRecord::Failed {
                        config,
                        error: error.clone(),
                    })?;
                }
                return Ok(Taken::Failed(error, workload));
            }
            Err(source) => {
                return Err(StudyError::Device {
                    what: config.to_string(),
                    source,
                })
            }
        };
        if let Some(j) = self.journal.as_mut() {
            j.record(&JournalRecord::Measurement {
                config,
                measurement: m.clone(),
            })?;
        }
        Ok(Taken::Measured(m, false))
    }

    /// `config` measured through the protocol from its `earlier` runs (until `keep_going` says
    /// stop, or the protocol is met), as a confirmation; `None` when a signal stopped it.
    fn at_full_protocol(
        &mut self,
        config: Config,
        (earlier, earlier_window_repeats): (&[crate::measure::Run], u32),
        keep_going: Option<&KeepGoing>,
    ) -> Result<Option<Measurement>, StudyError> {
        let how = How {
            stop: self.interrupt.as_deref(),
            earlier,
            earlier_window_repeats,
            keep_going,
        };
        match measure_how(
            self.device,
            self.workload,
            &config.setting(),
            config.batch_size,
            &self.protocol,
            &how,
        ) {
            Ok(m) => Ok(Some(m)),
            Err(DeviceError::Interrupted) => Ok(None),
            Err(source) => Err(StudyError::Device {
                what: format!("confirming {config}"),
                source,
            }),
        }
    }

    /// Measures `m` (of `config`) again at the full protocol, counting its runs when they were
    /// full-length; journals the result. `None` when a signal stopped it.
    fn confirm(
        &mut self,
        config: Config,
        m: &Measurement,
    ) -> Result<Option<Measurement>, StudyError> {
        // A resumed study confirms from its journal: no board time, nothing journaled twice.
        if let Some(c) = self.prior.confirmed.get(&config) {
            return Ok(Some(c.clone()));
        }
        let earlier = choice::full_runs(m, self.protocol.inferences);
        let window = m.window_repeats;
        let Some(mut full) = self.at_full_protocol(config, (&earlier, window), None)? else {
            return Ok(None);
        };
        // What the configuration cost in all: exploring it, then confirming it.
        full.wall_s += m.wall_s;
        if let Some(j) = self.journal.as_mut() {
            j.record(&JournalRecord::Confirmed {
                config,
                measurement: full.clone(),
            })?;
        }
        Ok(Some(full))
    }

    fn run_inner(&mut self, on_event: &mut impl FnMut(Event<'_>)) -> Result<Outcome, StudyError> {
        let (baseline, _) = self.baseline_at(self.baseline_batch)?;
        on_event(Event::Baseline(&baseline));
        let mut f = Found::default();
        let mut resumed = 0;
        let mut failed: Vec<(Config, String)> = Vec::new();
        let mut in_a_row = 0;
        let stop_reason = loop {
            if self.interrupted() {
                break StopReason::Interrupted;
            }
            if f.measured.len() + failed.len() >= self.budget {
                break StopReason::Budget(self.budget);
            }
            if in_a_row >= MAX_FAILURES_IN_A_ROW {
                let last_error = failed.last().map_or(String::new(), |(_, e)| e.clone());
                break StopReason::FailuresInARow { last_error };
            }
            let Some(point) = self.strategy.ask(&f.history) else {
                break StopReason::Strategy(self.strategy.stop_reason());
            };
            let config = self.space.config(&point);
            let incumbent = f
                .history
                .best()
                .filter(|o| o.feasible())
                .map(|o| (o.value, o.rel_se()));
            let replicate = f.measured.len() < REPLICATED;
            let (measurement, from_journal) =
                match self.take(config, incumbent, replicate, &baseline)? {
                    Taken::Measured(m, from_journal) => (m, from_journal),
                    // A signal cut the measurement short: keep what was measured before it.
                    Taken::Interrupted => break StopReason::Interrupted,
                    // The workload failed here (or the table has a hole): never ask again, go on.
                    Taken::Failed(error, workload) => {
                        let obs = Observation {
                            point,
                            value: penalised(1e6),
                            failed: true,
                            ..Default::default()
                        };
                        self.strategy.tell(&obs);
                        f.history.push(obs);
                        on_event(Event::Failed {
                            config: &config,
                            error: &error,
                        });
                        failed.push((config, error));
                        in_a_row += usize::from(workload);
                        continue;
                    }
                };
            resumed += from_journal as usize;
            in_a_row = 0;
            let obs = self.observe(point, &measurement, &baseline, self.run_cv(&baseline));
            self.strategy.tell(&obs);
            f.add(
                obs,
                Measured {
                    config,
                    measurement,
                    from_journal,
                },
            );
            let best = self.recommend(&mut f);
            on_event(Event::Measured {
                n: f.measured.len(),
                budget: self.budget,
                measured: &f.measured[f.measured.len() - 1],
                best: &f.measured[best],
                best_energy_j: f.measured[best]
                    .measurement
                    .at_length(self.protocol.inferences)
                    .energy_j,
            });
        };
        resumed += self.take_leftovers(&mut f, &baseline);
        let choice = if stop_reason != StopReason::Interrupted {
            self.final_choice(&mut f, &baseline, on_event)?
        } else {
            choice::FinalChoice::default()
        };
        let surrogate = self.strategy.check(&f.history);
        let baseline_same_batch =
            self.baseline_same_batch(f.best.map(|b| f.measured[b].config.batch_size), &baseline)?;
        let best_full = f
            .best
            .is_some_and(|b| self.is_full(&f.measured[b].measurement));
        Ok(Outcome {
            baseline,
            baseline_same_batch,
            measured: f.measured,
            best: f.best,
            recommended: f.recommended,
            stop_reason,
            resumed,
            failed,
            inferences: self.protocol.inferences,
            best_full,
            choice,
            surrogate,
        })
    }

    /// The DVFS baseline at the recommended batch size `batch`, for the frequency-only saving;
    /// `None` without a recommendation, after a signal, or where a table holds no baseline at
    /// that batch.
    fn baseline_same_batch(
        &mut self,
        batch: Option<u32>,
        baseline: &Measurement,
    ) -> Result<Option<Measurement>, StudyError> {
        match batch {
            Some(b) if b == self.baseline_batch => Ok(Some(baseline.clone())),
            Some(b) if !self.interrupted() => match self.baseline_at(b) {
                Ok((m, _)) => Ok(Some(m)),
                Err(StudyError::Device {
                    source: DeviceError::NotRecorded(_),
                    ..
                }) => Ok(None),
                Err(e) => Err(e),
            },
            _ => Ok(None),
        }
    }

    /// Journaled measurements this run did not ask for (a lower budget, another stop rule, a
    /// signal this time): they are the study's all the same, told to the strategy and
    /// reported, never dropped. How many there were.
    fn take_leftovers(&mut self, f: &mut Found, baseline: &Measurement) -> usize {
        let taken: std::collections::HashSet<Config> =
            f.measured.iter().map(|m| m.config).collect();
        let left: Vec<Config> = (self.prior.order.iter())
            .filter(|c| !taken.contains(c))
            .copied()
            .collect();
        let mut n = 0;
        for config in left {
            let Some(point) = self.space.point_of(&config) else {
                continue;
            };
            let measurement = self.prior.measurements[&config].clone();
            let obs = self.observe(point, &measurement, baseline, self.run_cv(baseline));
            self.strategy.tell(&obs);
            f.add(
                obs,
                Measured {
                    config,
                    measurement,
                    from_journal: true,
                },
            );
            n += 1;
        }
        if n > 0 {
            self.recommend(f);
        }
        n
    }

    /// What the strategy would recommend now (a surrogate's best mean, or the lowest
    /// measurement), recorded in `f`; returns its index.
    fn recommend(&mut self, f: &mut Found) -> usize {
        let best = self
            .strategy
            .recommend(&f.history)
            .and_then(|p| f.index.get(&p).copied())
            .or(f.best)
            .unwrap_or(f.measured.len() - 1);
        f.best = Some(best);
        f.recommended.push(best);
        best
    }
}

/// ln of a measurement's first run over the mean of its later runs (two runs or more).
fn first_run_excess(runs: &[Run]) -> Option<f64> {
    let (first, rest) = runs.split_first()?;
    let later = stats::mean(&rest.iter().map(|r| r.energy_j).collect::<Vec<_>>());
    (!rest.is_empty() && first.energy_j > 0.0 && later > 0.0).then(|| (first.energy_j / later).ln())
}

/// What a study found so far.
#[derive(Default)]
struct Found {
    history: History,
    measured: Vec<Measured>,
    /// Index into `measured` of each point.
    index: HashMap<Point, usize>,
    best: Option<usize>,
    /// The recommendation after each measurement.
    recommended: Vec<usize>,
}

impl Found {
    /// A measurement and the observation the strategy was told of it.
    fn add(&mut self, obs: Observation, measured: Measured) {
        self.index.insert(obs.point.clone(), self.measured.len());
        self.history.push(obs);
        self.measured.push(measured);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sim::{Noise, SimBoard};
    use crate::catalog::Catalog;
    use crate::device::EnergyWindow;
    use crate::strategy::{make, StrategyInit};
    use std::path::{Path, PathBuf};

    /// Wraps the sim device to record restores and fail on demand.
    struct Watched {
        inner: crate::backend::sim::SimDevice,
        restores: Arc<std::sync::atomic::AtomicUsize>,
        fail_after: Option<usize>,
        windows: usize,
        /// Raised when the window with this number opens (0: before the study starts).
        interrupt: (Arc<AtomicBool>, Option<usize>),
    }
    impl Device for Watched {
        fn backend(&self) -> crate::device::BackendKind {
            crate::device::BackendKind::Sim
        }
        fn apply(&mut self, s: &FreqSetting) -> Result<(), DeviceError> {
            self.inner.apply(s)
        }
        fn window_begin(&mut self) -> Result<(), DeviceError> {
            self.windows += 1;
            if self.interrupt.1 == Some(self.windows) {
                self.interrupt.0.store(true, Ordering::SeqCst);
            }
            if self.fail_after.is_some_and(|n| self.windows > n) {
                return Err(DeviceError::Failed("sensor vanished".into()));
            }
            self.inner.window_begin()
        }
        fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
            self.inner.window_end()
        }
        fn restore(&mut self) -> Result<(), DeviceError> {
            self.restores.fetch_add(1, Ordering::SeqCst);
            self.inner.restore()
        }
    }

    /// The header of the test study (ResNet-18 on the Nano, coordinate descent, seed 1).
    fn header(space: Space) -> StudyHeader {
        StudyHeader {
            model: "resnet18".into(),
            device: "nano".into(),
            backend: crate::device::BackendKind::Sim,
            strategy: "coordinate".into(),
            seed: 1,
            budget: 20,
            baseline_batch: 4,
            protocol: ProtocolSettings::default(),
            space,
            goal: Goal::default(),
            exploration: Exploration::default(),
            args: Vec::new(),
            prior: String::new(),
            prior_grid: None,
        }
    }

    /// The test study; `interrupt_at`: the window at whose opening a signal arrives (0: before
    /// the start; the baseline takes windows 1-4: a warm-up and three runs).
    fn setup(
        fail_after: Option<usize>,
        interrupt_at: Option<usize>,
        journal: &Path,
    ) -> (Result<Outcome, StudyError>, usize, SimBoard) {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let space = Space::new(b, m, None, &[]).unwrap();
        let sim = SimBoard::new(b, Noise::Seeded(1));
        let restores = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let flag = Arc::new(AtomicBool::new(interrupt_at == Some(0)));
        let mut dev = Watched {
            inner: sim.device(),
            restores: restores.clone(),
            fail_after,
            windows: 0,
            interrupt: (flag.clone(), interrupt_at),
        };
        let mut wl = sim.workload(m).unwrap();
        let init = StrategyInit::new(space.dims(), 1, 20);
        let header = header(space.clone());
        let mut study = Study {
            space: &space,
            device: &mut dev,
            workload: &mut wl,
            strategy: make("coordinate", &init).unwrap(),
            budget: 20,
            protocol: ProtocolSettings::default(),
            baseline_batch: 4,
            journal: Some(Box::new(Journal::create(journal, &header).unwrap())),
            prior: Prior::default(),
            interrupt: Some(flag),
            goal: Default::default(),
            exploration: Exploration::default(),
        };
        let r = study.run(|_| {});
        (r, restores.load(Ordering::SeqCst), sim)
    }

    #[test]
    fn an_interrupt_stops_between_measurements_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        // The signal arrives as the first configuration's warm-up starts.
        let (r, restores, sim) = setup(None, Some(5), &dir.path().join("j.jsonl"));
        let o = r.unwrap();
        assert!(o.interrupted());
        assert_eq!(o.stop_reason.to_string(), "interrupted");
        assert!(o.measured.is_empty());
        assert_eq!(restores, 1);
        assert_eq!(sim.setting(), FreqSetting::Dvfs);
    }

    #[test]
    fn an_interrupt_during_the_baseline_stops_it_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let (r, restores, sim) = setup(None, Some(0), &dir.path().join("j.jsonl"));
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                StudyError::Device {
                    source: DeviceError::Interrupted,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(restores, 1);
        assert_eq!(sim.setting(), FreqSetting::Dvfs);
    }

    #[test]
    fn a_device_failure_restores_and_keeps_what_was_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        // Baseline (warm-up + 3 runs) and two configurations succeed, then the sensor fails.
        let (r, restores, _) = setup(Some(12), None, &path);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("sensor vanished"), "{e}");
        assert_eq!(restores, 1);
        let lines = std::fs::read_to_string(&path).unwrap();
        let kinds: Vec<&str> = lines
            .lines()
            .map(|l| {
                if l.contains("\"type\":\"measurement\"") {
                    "m"
                } else {
                    "o"
                }
            })
            .collect();
        assert_eq!(kinds.iter().filter(|k| **k == "m").count(), 2, "{lines}");
    }

    /// A study of `strategy` on the twin (ResNet-18, Nano, seed 1) writing to `journal`.
    fn study_of(strategy: &str, budget: usize, journal: Journal, prior: Prior) -> Outcome {
        study_with(strategy, budget, journal, prior, Exploration::default())
    }

    /// [`study_of`] with racing and screening as given, and the twin's prior.
    fn study_with(
        strategy: &str,
        budget: usize,
        journal: Journal,
        prior: Prior,
        exploration: Exploration,
    ) -> Outcome {
        study_seeded(strategy, 1, budget, journal, prior, exploration)
    }

    /// [`study_with`] with the strategy's and the twin's noise's seed.
    fn study_seeded(
        strategy: &str,
        seed: u64,
        budget: usize,
        journal: Journal,
        prior: Prior,
        exploration: Exploration,
    ) -> Outcome {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let space = Space::new(b, m, None, &[]).unwrap();
        let sim = SimBoard::new(b, Noise::Seeded(seed));
        let (mut dev, mut wl) = (sim.device(), sim.workload(m).unwrap());
        let mut init = StrategyInit::for_space(&space, seed, budget);
        if exploration != Exploration::default() {
            init = init.with_prior(twin_prior(b, m, &space, &Goal::default(), 3200));
        }
        let mut study = Study {
            space: &space,
            device: &mut dev,
            workload: &mut wl,
            strategy: make(strategy, &init).unwrap(),
            budget,
            protocol: ProtocolSettings::default(),
            baseline_batch: 4,
            journal: Some(Box::new(journal)),
            prior,
            interrupt: None,
            goal: Default::default(),
            exploration,
        };
        study.run(|_| {}).unwrap()
    }

    #[test]
    fn racing_and_screening_save_board_time_and_the_recommendation_is_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let cheap = Exploration {
            race: true,
            screen_inferences: Some(400),
        };
        let h = StudyHeader {
            exploration: cheap,
            ..nano_header("bayes", 30)
        };
        let path = dir.path().join("raced.jsonl");
        let raced = study_with(
            "bayes",
            30,
            Journal::create(&path, &h).unwrap(),
            Prior::default(),
            cheap,
        );
        let plain_path = dir.path().join("plain.jsonl");
        let plain = study_of(
            "bayes",
            30,
            Journal::create(&plain_path, &nano_header("bayes", 30)).unwrap(),
            Prior::default(),
        );
        // Exploring runs were short and single; the recommendation is at the full protocol.
        let m = &raced.measured;
        assert!(
            m.iter().any(|x| x.measurement.inferences < 3200),
            "no screening run"
        );
        assert!(
            m.iter().any(|x| x.measurement.runs.len() == 1),
            "no single run"
        );
        assert!(raced.best_full);
        let best = &raced.best().unwrap().measurement;
        assert_eq!(best.inferences, 3200);
        assert!(best.runs.len() >= 3 && best.converged, "{best:?}");
        assert!(
            raced.tuning_time_s() < 0.6 * plain.tuning_time_s(),
            "raced {:.0} s, plain {:.0} s",
            raced.tuning_time_s(),
            plain.tuning_time_s()
        );
        // The confirmation is journaled, and a resume takes it beside the screened figure
        // (which it replays, so the strategy asks what it asked).
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"type\":\"confirmed\""));
        let (_, prior) = Journal::resume(&path, &h).unwrap();
        let c = raced.best().unwrap().config;
        assert_eq!(prior.confirmed[&c].inferences, 3200);
        assert!(prior.measurements[&c].inferences < 3200);
    }

    /// Issue 25, case 6: a study of every strategy, screened and confirmed, cut anywhere in its
    /// journal (or not cut: finished) and resumed, reuses every journaled configuration, never
    /// measures past its budget, never reports fewer configurations than the journal holds, and
    /// resumed whole measures nothing and recommends what the first run recommended.
    #[test]
    fn a_resumed_study_reuses_every_journaled_configuration_whatever_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let cheap = Exploration {
            race: true,
            screen_inferences: Some(400),
        };
        let budget = 10;
        for strategy in ["bayes", "coordinate", "anneal", "random", "grid"] {
            for seed in [1, 7] {
                let h = StudyHeader {
                    exploration: cheap,
                    seed,
                    ..nano_header(strategy, budget)
                };
                let path = dir.path().join(format!("{strategy}-{seed}.jsonl"));
                let journal = Journal::create(&path, &h).unwrap();
                let full = study_seeded(strategy, seed, budget, journal, Prior::default(), cheap);
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                let confirmed = lines.iter().any(|l| l.contains("\"type\":\"confirmed\""));
                assert!(
                    confirmed || strategy == "grid",
                    "{strategy} {seed}: no confirmation"
                );
                for cut in [2, lines.len() / 2, lines.len() - 1, lines.len()] {
                    let kept = &lines[..cut];
                    let journaled = kept
                        .iter()
                        .filter(|l| l.contains("\"type\":\"measurement\""))
                        .count();
                    let p = dir.path().join(format!("{strategy}-{seed}-{cut}.jsonl"));
                    std::fs::write(&p, kept.join("\n") + "\n").unwrap();
                    let (j, prior) = Journal::resume(&p, &h).unwrap();
                    let again = study_seeded(strategy, seed, budget, j, prior, cheap);
                    let what = format!("{strategy} seed {seed} cut {cut}/{}", lines.len());
                    assert_eq!(again.resumed, journaled, "{what}: reused");
                    let n = again.measured.len() + again.failed.len();
                    assert!(n <= budget.max(journaled), "{what}: {n} measured");
                    assert!(again.measured.len() >= journaled, "{what}");
                    if cut == lines.len() {
                        assert_eq!(again.measured.len(), full.measured.len(), "{what}");
                        let best = |o: &Outcome| o.best().map(|b| b.config);
                        assert_eq!(best(&again), best(&full), "{what}");
                        let new = std::fs::read_to_string(&p).unwrap();
                        assert_eq!(new.lines().count(), lines.len(), "{what}: journaled again");
                    }
                }
            }
        }
    }

    fn nano_header(strategy: &str, budget: usize) -> StudyHeader {
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        StudyHeader {
            strategy: strategy.into(),
            budget,
            ..header(Space::new(b, m, None, &[]).unwrap())
        }
    }

    #[test]
    fn a_resumed_bayes_study_replays_exactly_to_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let h = nano_header("bayes", 30);
        let full_path = dir.path().join("full.jsonl");
        let full = study_of(
            "bayes",
            30,
            Journal::create(&full_path, &h).unwrap(),
            Prior::default(),
        );
        let configs = |o: &Outcome| o.measured.iter().map(|m| m.config).collect::<Vec<_>>();
        let lines: Vec<String> = std::fs::read_to_string(&full_path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        // Header, baseline, then one line per measurement.
        for kept in (3..full.measured.len()).step_by(2) {
            let path = dir.path().join(format!("cut-{kept}.jsonl"));
            std::fs::write(&path, lines[..2 + kept].join("\n") + "\n").unwrap();
            let (j, prior) = Journal::resume(&path, &h).unwrap();
            let again = study_of("bayes", 30, j, prior);
            // Every journaled measurement is asked for again, in order, and reused; what comes
            // after is measured anew (the twin's noise then differs, as a board's would).
            assert_eq!(again.resumed, kept, "kept {kept}");
            assert_eq!(
                configs(&again)[..kept],
                configs(&full)[..kept],
                "kept {kept}"
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let journaled = text.matches("\"type\":\"measurement\"").count();
            assert_eq!(
                journaled,
                again.measured.len(),
                "kept {kept}: each journaled once"
            );
        }
    }

    #[test]
    fn journaled_measurements_come_back_bit_for_bit() {
        // serde_json's default parser is off by an ULP for about 1 value in 10; a resumed
        // study then fits its surrogate to other numbers than the study it continues.
        let dir = tempfile::tempdir().unwrap();
        let (path, text, h) = journal_text(dir.path());
        let first: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        let mut m: Measurement = serde_json::from_value(first["measurement"].clone()).unwrap();
        let mut lines = vec![text.lines().next().unwrap().to_string()];
        let mut u = 0.123_456_789_f64;
        for _ in 0..200 {
            u = (u * 997.0 + 0.377_21).fract();
            let x = 1.0 + 1000.0 * u;
            m.energy_j = x;
            m.time_s = x / 7.0;
            m.runs[0].energy_j = x * 1.000_1;
            lines.push(
                serde_json::to_string(&JournalRecord::Baseline {
                    measurement: m.clone(),
                })
                .unwrap(),
            );
            let p = Prior::parse((lines.join("\n") + "\n").as_bytes(), &path, &h).unwrap();
            let got = &p.baselines[&m.batch_size];
            assert_eq!(got.energy_j.to_bits(), m.energy_j.to_bits(), "{x}");
            assert_eq!(got.time_s.to_bits(), m.time_s.to_bits(), "{x}");
            assert_eq!(got.runs[0].energy_j.to_bits(), m.runs[0].energy_j.to_bits());
        }
    }

    /// A finished coordinate study's journal and its header.
    fn journal_text(dir: &Path) -> (PathBuf, String, StudyHeader) {
        let path = dir.join("j.jsonl");
        setup(None, None, &path).0.unwrap();
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let h = header(Space::new(b, m, None, &[]).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        (path, text, h)
    }

    #[test]
    fn a_torn_last_line_is_dropped_with_a_warning_and_the_journal_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text, h) = journal_text(dir.path());
        let whole = Prior::read(&path, &h).unwrap().measurements.len();
        // A kill in the middle of writing the next record.
        let last = text.lines().last().unwrap();
        std::fs::write(&path, format!("{text}{}", &last[..last.len() / 2])).unwrap();
        let (mut j, prior) = Journal::resume(&path, &h).unwrap();
        assert_eq!(prior.measurements.len(), whole);
        assert!(
            prior.warnings[0].contains("cut short"),
            "{:?}",
            prior.warnings
        );
        j.record(&JournalRecord::Failed {
            config: Config::new(102_000, 76_800_000, 1),
            error: "x".into(),
        })
        .unwrap();
        drop(j);
        let after = Prior::read(&path, &h).unwrap();
        assert!(after.warnings.is_empty());
        assert_eq!(after.measurements.len(), whole);
    }

    #[test]
    fn a_last_line_without_its_newline_gets_one_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text, h) = journal_text(dir.path());
        std::fs::write(&path, text.trim_end()).unwrap();
        let (mut j, prior) = Journal::resume(&path, &h).unwrap();
        assert!(prior.warnings.is_empty());
        j.record(&JournalRecord::Failed {
            config: Config::new(102_000, 76_800_000, 1),
            error: "x".into(),
        })
        .unwrap();
        drop(j);
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after.lines().count(), text.lines().count() + 1);
        Prior::read(&path, &h).unwrap();
    }

    #[test]
    fn a_journal_without_its_header_first_or_with_bad_records_is_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text, h) = journal_text(dir.path());
        let lines: Vec<&str> = text.lines().collect();
        let refused = |body: String, line: usize, what: &str| {
            std::fs::write(&path, body).unwrap();
            let e = Prior::read(&path, &h).unwrap_err().to_string();
            assert!(e.contains(&format!(":{line}:")), "{e}");
            assert!(e.contains(what), "{e}");
        };
        refused(lines[1..].join("\n") + "\n", 1, "header");
        let mut moved = lines.clone();
        moved.swap(0, 2);
        refused(moved.join("\n") + "\n", 1, "header");
        let mut twice = lines.clone();
        twice.push(lines[0]);
        refused(
            twice.join("\n") + "\n",
            lines.len() + 1,
            "second study header",
        );
        let m = lines[2];
        let bad = serde_json::to_string(&{
            let mut v: serde_json::Value = serde_json::from_str(m).unwrap();
            v["measurement"]["energy_j"] = (-1.0).into();
            v
        })
        .unwrap();
        let mut neg = lines.clone();
        neg[2] = &bad;
        refused(neg.join("\n") + "\n", 3, "energy must be positive");
        let mut dup = lines.clone();
        dup.push(m);
        refused(dup.join("\n") + "\n", lines.len() + 1, "measured twice");
        // Another study's header (another model) is a mismatch, not a mix.
        let other = StudyHeader {
            model: "alexnet".into(),
            ..h.clone()
        };
        std::fs::write(&path, &text).unwrap();
        let e = Prior::read(&path, &other).unwrap_err().to_string();
        assert!(e.contains("different study"), "{e}");
    }

    #[test]
    fn a_study_without_a_prior_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, mut h) = journal_text(dir.path());
        // "none" is left out of the header and reads back empty: still the same study.
        h.prior = "none".into();
        let p2 = dir.path().join("none.jsonl");
        drop(Journal::create(&p2, &h).unwrap());
        assert!(Journal::resume(&p2, &h).is_ok());
        assert!(!std::fs::read_to_string(&p2).unwrap().contains("prior"));
        drop(path);
    }

    #[test]
    fn a_journal_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text, h) = journal_text(dir.path());
        let e = Journal::create(&path, &h).err().unwrap();
        assert!(e.to_string().contains("--resume"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn a_corrupt_journal_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        setup(None, None, &path).0.unwrap();
        let mut s = std::fs::read_to_string(&path).unwrap();
        s.push_str("{not json\n");
        std::fs::write(&path, &s).unwrap();
        let cat = Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let e = Prior::read(&path, &header(Space::new(b, m, None, &[]).unwrap())).unwrap_err();
        let n = s.lines().count();
        assert!(e.to_string().contains(&format!(":{n}:")), "{e}");
    }
}
