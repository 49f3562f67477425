//! The study: the loop that asks a strategy for configurations, measures them through the
//! protocol, journals every measurement before the next starts, stops on budget, convergence or
//! interrupt, and always puts the device back as it found it. A study resumes from its journal
//! without re-measuring.

use crate::device::{Device, DeviceError, FreqSetting};
use crate::measure::protocol::{measure_how, measure_or_stop, How, KeepGoing};
use crate::measure::{stats, Measurement, ProtocolSettings, Run};
use crate::objective::{violation, Goal, Quantities};
use crate::opt::Opt;
use crate::space::Point;
use crate::space::{Config, Space};
use crate::strategy::{penalised, History, Observation, Strategy};
use crate::workload::Workload;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;

mod budget;
pub mod choice;
mod engine;
pub mod fleet;
mod heartbeat;
pub mod journal;
mod lies;
mod offsets;
mod pool;
pub mod storage;
pub use budget::{
    default_budget, table_budget, twin_prior, Exploration, MIN_SCREEN_S, TABLE_WHOLE,
};
use budget::{race_max_runs, RACE_MIN_CV, RACE_Z, REPLICATED};
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
                "the workload failed at {MAX_FAILURES_IN_A_ROW} configurations in a row; fix it and continue with {} (last error: {last_error})",
                Opt::Resume
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
    pub choice: FinalChoice,
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
/// Why the recommendation is what it is, for the report.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct FinalChoice {
    /// The configurations measured at the full protocol to decide (indices into the study's
    /// measurements), in the order they were first named.
    pub candidates: Vec<usize>,
    /// The one that won.
    pub winner: Option<usize>,
    /// Full-protocol readings that beat the winner by more than two standard errors and why
    /// they could not take its place (empty when none does).
    pub unresolved: Vec<String>,
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

    #[test]
    fn a_fleet_s_share_is_checked_as_a_confirmation_is() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text, h) = journal_text(dir.path());
        let first: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
        let config: Config = serde_json::from_value(first["config"].clone()).unwrap();
        let m: Measurement = serde_json::from_value(first["measurement"].clone()).unwrap();
        let with = |r: JournalRecord| {
            let line = serde_json::to_string(&r).unwrap();
            Prior::parse(format!("{text}{line}\n").as_bytes(), &path, &h).map(|_| ())
        };
        let share = |config, measurement| JournalRecord::Share {
            config,
            measurement,
        };
        assert!(with(share(config, m.clone())).is_ok());
        let unmeasured = Config {
            gpu_freq_hz: config.gpu_freq_hz + 1,
            ..config
        };
        let e = with(share(unmeasured, m.clone())).unwrap_err().to_string();
        assert!(e.contains("comes before it was measured"), "{e}");
        let other_batch = Config {
            batch_size: config.batch_size * 2,
            ..config
        };
        let e = with(share(other_batch, m.clone())).unwrap_err().to_string();
        assert!(
            e.contains("a share of") && e.contains("not at the full protocol"),
            "{e}"
        );
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
        assert!(e.to_string().contains("resume"), "{e}");
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
