//! Reports: `report.json` (the machine-readable result), `report.md`, the summary `tune` prints,
//! `profile.toml`, the nvpmodel `POWER_MODEL` block, and what `sweep` writes and prints.

pub mod listing;
pub mod markdown;
pub mod measure;
pub mod plot;
pub mod profile;
pub mod summary;
pub mod sweep;

use crate::measure::Measurement;
use crate::objective::Quantities;
use crate::space::{Config, Knob};
use crate::study::{Outcome, StopReason};
use serde::{Deserialize, Serialize};

/// Energy, time and power of a measurement, as every output writes them (flattened into its
/// record beside the configuration's knobs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    /// Energy for `inferences` inferences.
    pub energy_j: f64,
    /// Time for `inferences` inferences.
    pub time_s: f64,
    /// Average board power.
    pub avg_power_w: f64,
    /// Energy per inference, mJ.
    pub energy_per_inference_mj: f64,
}

impl Energy {
    /// A measurement's.
    pub fn of(m: &Measurement) -> Energy {
        Energy {
            energy_j: m.energy_j,
            time_s: m.time_s,
            avg_power_w: m.avg_power_w,
            energy_per_inference_mj: m.energy_per_inference_mj,
        }
    }
}

/// The recommended configuration and its measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Its knobs.
    #[serde(flatten)]
    pub config: Config,
    /// What it measured.
    #[serde(flatten)]
    pub energy: Energy,
}

/// A DVFS baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// The board's default governors, or what stands in for them.
    pub kind: crate::device::BaselineKind,
    /// Batch size.
    pub batch_size: u32,
    /// Energy for `inferences` inferences.
    pub energy_j: f64,
    /// Time for `inferences` inferences.
    pub time_s: f64,
    /// Average board power.
    pub avg_power_w: f64,
    /// Coefficient of variation of the runs.
    pub cv: f64,
    /// Runs.
    pub runs: usize,
    /// Whether its runs met the CV target; when not, every saving against it is uncertain.
    #[serde(default = "yes")]
    pub converged: bool,
}

impl Baseline {
    fn of(m: &Measurement, kind: crate::device::BaselineKind) -> Baseline {
        Baseline {
            kind,
            batch_size: m.batch_size,
            energy_j: m.energy_j,
            time_s: m.time_s,
            avg_power_w: m.avg_power_w,
            cv: m.cv,
            runs: m.runs.len(),
            converged: m.converged,
        }
    }
}

/// One measured configuration in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Order of measurement, from 1.
    pub n: usize,
    /// Its knobs.
    #[serde(flatten)]
    pub config: Config,
    /// Means over its runs.
    #[serde(flatten)]
    pub energy: Energy,
    /// Runs.
    pub runs: usize,
    /// Coefficient of variation of the runs' energy.
    pub cv: f64,
    /// Energy of every run.
    pub run_energies_j: Vec<f64>,
    /// Mean energy per run of each sensor rail, on a board with rails.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub rail_energy_j: std::collections::BTreeMap<String, f64>,
    /// Runs of `inferences` per energy window (over 1 where `--min-window-s` lengthened them).
    #[serde(
        default = "crate::measure::protocol::one",
        skip_serializing_if = "crate::measure::protocol::is_one"
    )]
    pub window_repeats: u32,
    /// Time of one batch, ms.
    #[serde(default)]
    pub latency_ms: f64,
    /// Whether it met the constraints (measured, with the noise margin); absent without any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feasible: Option<bool>,
    /// Inferences per run when it was measured with screening runs while exploring (its energy
    /// and time are for runs of this many inferences: not a final figure); absent for full runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screened_inferences: Option<u32>,
}

/// A point of the measured energy-latency Pareto front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParetoPoint {
    /// Its row in `measurements`.
    pub n: usize,
    /// Its knobs.
    #[serde(flatten)]
    pub config: Config,
    /// Energy for the workload.
    pub energy_j: f64,
    /// Time for the workload.
    pub time_s: f64,
    /// Energy per inference, mJ.
    pub energy_per_inference_mj: f64,
    /// Time of one batch, ms.
    pub latency_ms: f64,
}

/// Everything a tune found (report.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// edgetune version.
    pub edgetune_version: String,
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Backend that measured (`sim` is the digital twin).
    pub backend: crate::device::BackendKind,
    /// Strategy.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Inferences per run.
    pub inferences: u32,
    /// Protocol: CV target, min and max runs, warm-up.
    pub protocol: crate::measure::ProtocolSettings,
    /// Configurations in the search space.
    pub grid_size: usize,
    /// Configurations measured.
    pub measured_configs: usize,
    /// Measurement budget.
    pub budget: usize,
    /// Why the search stopped.
    pub stop_reason: String,
    /// Measurements reused from the journal of an earlier run.
    pub resumed_configs: usize,
    /// Time spent measuring, baseline included (simulated time on the twin).
    pub tuning_time_s: f64,
    /// The recommendation (absent when nothing was measured).
    pub best: Option<Best>,
    /// DVFS at the baseline batch size.
    pub baseline: Baseline,
    /// DVFS at the recommended batch size.
    pub baseline_same_batch: Option<Baseline>,
    /// Saving of the recommendation against DVFS at the baseline batch (frequency + batch size).
    pub saving_pct: Option<f64>,
    /// Saving against DVFS at the recommended batch size (frequency only, as in the paper).
    pub saving_same_batch_pct: Option<f64>,
    /// Every measured configuration.
    pub measurements: Vec<Row>,
    /// Plot files written beside the report.
    #[serde(default)]
    pub plots: Vec<String>,
    /// What the device noted while measuring (clocks that did not read back as set, stale
    /// sensors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What was minimised: energy, edp or time.
    #[serde(default = "energy_name")]
    pub objective: String,
    /// The constraints, when there were any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<crate::objective::LimitInfo>,
    /// Whether the recommendation meets the constraints; absent without constraints. When no
    /// measured configuration met them, the least infeasible one is recommended and this is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_feasible: Option<bool>,
    /// The measured energy-latency Pareto front (with `--pareto`), by latency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pareto: Vec<ParetoPoint>,
    /// Configurations at which the workload failed, with its error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
    /// Racing and screening runs while exploring (absent: every configuration at the full
    /// protocol).
    #[serde(default, skip_serializing_if = "is_plain")]
    pub exploration: crate::study::Exploration,
    /// What the search knew before it measured: `none`, the twin, an earlier study.
    #[serde(default)]
    pub prior: String,
    /// Whether the recommendation's figure meets the full protocol (false only when a signal
    /// stopped the study before the recommendation was confirmed).
    #[serde(default = "yes")]
    pub best_confirmed: bool,
    /// With an objective other than energy: its value at the recommendation, at the baseline,
    /// and the saving (what was minimised, shown beside the energy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_value: Option<ObjectiveValue>,
    /// Full-length measurements (their `n`) whose reading of the objective is lower than the
    /// recommendation's: a model-based strategy recommends its lowest estimate, which pools
    /// neighbouring readings against run-to-run noise, not the lowest single reading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lower_readings: Vec<usize>,
    /// How the recommendation was decided: the measurements compared at the full protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_choice: Option<FinalChoiceReport>,
    /// How well the strategy's surrogate describes the measurements (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surrogate: Option<crate::strategy::ModelCheck>,
    /// Measured on edgetune's virtual Jetson (`emulate`): the twin behind real sysfs files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emulated: bool,
    /// A study measured by several boards (`worker`): each board, what it measured, and its
    /// offset. Absent for one board.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boards: Vec<BoardShare>,
    /// The spread between the boards' DVFS baselines, percent (highest over lowest, minus 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_spread_pct: Option<f64>,
}

/// How the recommendation was decided (report.json's `final_choice`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalChoiceReport {
    /// The measurements (their `n`) compared at the full protocol, the recommendation among
    /// them: the strategy's recommendation and its rivals (on a table, also its lowest readings).
    pub candidates: Vec<usize>,
    /// Full-protocol readings that beat the recommendation by more than two standard errors,
    /// and why they could not take its place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
}

/// One board's part in a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardShare {
    /// Its identity (`--board-id`, serial number or machine id).
    pub board: String,
    /// The backend it measured with.
    pub backend: String,
    /// Its DVFS baseline at the study's baseline batch, J (none yet: 0).
    pub baseline_energy_j: f64,
    /// Its offset against the boards' geometric mean, percent: what its values were divided
    /// by before the search saw them.
    pub offset_pct: f64,
    /// The configurations it measured.
    pub configs: Vec<Config>,
}

/// Each board of a stored study with what it measured.
pub fn boards(view: &crate::study::storage::StudyView, batch: u32) -> Vec<BoardShare> {
    use crate::study::JournalRecord;
    let offsets = crate::study::fleet::board_offsets(&view.records, batch);
    let mut out: Vec<BoardShare> = Vec::new();
    for r in &view.records {
        let i = match out.iter().position(|b| b.board == r.origin.board) {
            Some(i) => i,
            None => {
                out.push(BoardShare {
                    board: r.origin.board.clone(),
                    backend: r.origin.backend.clone(),
                    baseline_energy_j: 0.0,
                    offset_pct: offsets
                        .get(&r.origin.board)
                        .map_or(0.0, |o| (o.exp() - 1.0) * 100.0),
                    configs: Vec::new(),
                });
                out.len() - 1
            }
        };
        match &r.record {
            JournalRecord::Baseline { measurement }
                if measurement.batch_size == batch && out[i].baseline_energy_j == 0.0 =>
            {
                out[i].baseline_energy_j = measurement.energy_j;
            }
            JournalRecord::Measurement { config, .. } => out[i].configs.push(*config),
            _ => {}
        }
    }
    out
}

/// Highest baseline over lowest, minus one, percent; `None` with fewer than two baselines.
pub fn spread_pct(boards: &[BoardShare]) -> Option<f64> {
    let e: Vec<f64> = boards
        .iter()
        .map(|b| b.baseline_energy_j)
        .filter(|e| *e > 0.0)
        .collect();
    (e.len() >= 2).then(|| {
        let (lo, hi) = e.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
        (hi / lo - 1.0) * 100.0
    })
}

/// The objective's value where energy is not what was minimised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveValue {
    /// At the recommendation (edp: J x s per inference squared; time: s for the workload).
    pub best: f64,
    /// At the baseline (its batch size).
    pub baseline: f64,
    /// Saving of the recommendation against the baseline, percent.
    pub saving_pct: f64,
}

fn is_plain(e: &crate::study::Exploration) -> bool {
    *e == crate::study::Exploration::default()
}

fn yes() -> bool {
    true
}

/// A configuration at which the workload failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    /// The configuration.
    #[serde(flatten)]
    pub config: Config,
    /// What went wrong, with the workload's last stderr lines.
    pub error: String,
}

fn energy_name() -> String {
    "energy".into()
}

/// " at batch N", or nothing where the batch size is not a knob (0: a table without that
/// column).
pub fn at_batch(batch_size: u32) -> String {
    match batch_size {
        0 => String::new(),
        b => format!(" at batch {b}"),
    }
}

impl Report {
    /// Which boards measured the study, in words (none for one board).
    pub fn boards_words(&self) -> Option<String> {
        if self.boards.len() < 2 {
            return None;
        }
        let each: Vec<String> = self
            .boards
            .iter()
            .map(|b| format!("{} {} ({:+.1} %)", b.board, b.configs.len(), b.offset_pct))
            .collect();
        Some(format!(
            "measured by {} boards (configurations each, offset against their mean): {}; their DVFS baselines spread {:.1} %, and every value was divided by its board's offset before the search saw it",
            self.boards.len(),
            each.join(", "),
            self.board_spread_pct.unwrap_or(0.0)
        ))
    }

    /// Why measurements that read lower than the recommendation were not recommended, when
    /// there are any: each is within the noise of a full-protocol comparison, or a reading of
    /// fewer runs than the protocol's.
    pub fn lower_readings_words(&self) -> Option<String> {
        let best = self.best.as_ref()?;
        if self.lower_readings.is_empty() {
            return None;
        }
        let rows: Vec<&Row> = self
            .lower_readings
            .iter()
            .filter_map(|n| self.measurements.get(n - 1))
            .collect();
        let full = |r: &Row| self.meets_protocol(r);
        let list = |rs: Vec<&&Row>| {
            rs.iter()
                .map(|r| {
                    format!(
                        "#{} ({:.1} % lower)",
                        r.n,
                        (1.0 - r.energy.energy_j / best.energy.energy_j) * 100.0
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        let (within, short): (Vec<&&Row>, Vec<&&Row>) = rows.iter().partition(|r| full(r));
        if !within.is_empty() {
            parts.push(format!(
                "{} at the full protocol, within two standard errors of the recommendation's figure (run-to-run noise can order them either way)",
                list(within)
            ));
        }
        if !short.is_empty() {
            parts.push(format!(
                "{} of fewer runs than the protocol's {} (single readings{}), which {} weighs against the readings around them; {}",
                list(short),
                self.protocol.min_runs,
                if self.backend == crate::device::BackendKind::Replay { " a table cannot repeat" } else { " or racing's two" },
                self.strategy,
                if self.backend == crate::device::BackendKind::Replay {
                    "the final choice compared the table's lowest readings and the surrogate's best"
                } else {
                    "the final choice measured the candidates it found likely to beat the recommendation at the full protocol, and these were not"
                }
            ));
        }
        Some(format!(
            "measurements reading lower on the objective ({}) than the recommendation: {}",
            self.objective,
            parts.join("; ")
        ))
    }

    /// Whether a row meets the full protocol (its length, at least the fewest runs, converged or
    /// out of runs).
    pub fn meets_protocol(&self, r: &Row) -> bool {
        let p = &self.protocol;
        r.screened_inferences.is_none()
            && r.runs as u32 >= p.min_runs
            && (r.cv < p.cv_target || r.runs as u32 >= p.max_runs)
    }

    /// What the surrogate's own check says when it describes the measurements poorly.
    pub fn surrogate_words(&self) -> Option<String> {
        let c = self.surrogate.as_ref().filter(|c| c.poor)?;
        Some(format!(
            "the surrogate describes the measurements poorly (its leave-one-out errors are {:.1} times their expected size; structure fitted {:.1} %, noise {:.1} % per run from {:.0} degrees of freedom): its estimates are uncertain, and the recommendation rests on the full-protocol comparison of the final choice",
            c.loo_rms, c.structure_pct, c.noise_pct, c.noise_df
        ))
    }

    /// Whether the saving against the baseline at the recommended batch is the only one: the
    /// batch size is not a knob, or the recommendation is at the baseline's batch.
    pub fn one_saving(&self) -> bool {
        self.baseline_same_batch
            .as_ref()
            .is_some_and(|b| b.batch_size == self.baseline.batch_size)
    }

    /// The knobs of the study's configurations, in [`Knob::EVERY`] order: a knob at 0 (or
    /// absent) in every configuration is not one (see [`Config`]), and no output shows it.
    pub fn knobs(&self) -> Vec<Knob> {
        let configs: Vec<&Config> = self
            .measurements
            .iter()
            .map(|m| &m.config)
            .chain(self.best.iter().map(|b| &b.config))
            .collect();
        Knob::EVERY
            .into_iter()
            .filter(|k| configs.iter().any(|c| c.get(*k).is_some_and(|v| v != 0)))
            .collect()
    }

    /// Warnings about figures that did not converge (the baselines' runs above the CV target),
    /// one sentence each; the savings against such a baseline are uncertain.
    pub fn convergence_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let min_runs = self.protocol.min_runs as usize;
        let mut check = |name: &str, b: &Baseline| {
            if !b.converged && b.runs < min_runs && b.cv < self.protocol.cv_target {
                // A table's few readings: not a spread seen, a spread not known.
                w.push(format!(
                    "the {name}{} rests on {} reading{} (the protocol takes {min_runs}): its spread is unknown, so the savings against it are uncertain",
                    at_batch(b.batch_size),
                    b.runs,
                    if b.runs == 1 { "" } else { "s" },
                ));
            } else if !b.converged {
                w.push(format!(
                    "the {name}{} did not converge (CV {:.1} % after {} run{}, target {:.1} %): the savings against it are uncertain",
                    at_batch(b.batch_size),
                    b.cv * 100.0,
                    b.runs,
                    if b.runs == 1 { "" } else { "s" },
                    self.protocol.cv_target * 100.0
                ));
            }
        };
        check("baseline", &self.baseline);
        if let Some(s) = &self.baseline_same_batch {
            if s.batch_size != self.baseline.batch_size {
                check("baseline", s);
            }
        }
        w
    }

    /// How the search spent board time, in one sentence: racing, screening runs, the prior,
    /// and whether the recommendation was confirmed at the full protocol.
    pub fn exploration_words(&self) -> String {
        let e = &self.exploration;
        let mut parts = Vec::new();
        if e.race && crate::strategy::pools_readings(&self.strategy) {
            parts.push(
                "one exploring run a configuration (two for the first four: the noise of one run, measured)"
                    .to_string(),
            );
        } else if e.race {
            parts.push(
                "racing (one run first, a second only while a configuration could still be the best)"
                    .to_string(),
            );
        }
        if let Some(n) = e.screen_inferences {
            parts.push(format!(
                "screening runs of at least {n} inferences (whole batches, at least 20 s at the baseline's pace)"
            ));
        }
        let how = if parts.is_empty() {
            "every configuration measured at the full protocol".to_string()
        } else {
            parts.join(", ")
        };
        let prior = match self.prior.as_str() {
            "" | "none" => String::new(),
            p => format!("; prior: {p}"),
        };
        let compared = match self.final_choice.as_ref().map(|c| &c.candidates[..]) {
            Some(c) if c.len() > 1 => Some(
                c.iter()
                    .map(|n| format!("#{n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => None,
        };
        let replay = self.backend == crate::device::BackendKind::Replay;
        let confirmed = match (self.best.is_some(), self.best_confirmed, compared) {
            (false, _, _) => String::new(),
            (true, full, Some(c)) if replay => format!(
                "; final choice: {c} compared by their readings (a table cannot be measured again), the lowest recommended{}",
                if full { "" } else { "; its figure rests on fewer readings than the protocol's runs" }
            ),
            (true, true, Some(c)) => format!(
                "; final choice: {c} measured at the full protocol, one run of each in turn, the lowest confirmed figure recommended"
            ),
            (true, _, _) if self.exploration == Default::default() && self.best_confirmed => {
                String::new()
            }
            (true, true, None) => "; the recommendation was confirmed at the full protocol".into(),
            (true, false, _) if replay => "; the recommendation does NOT meet the full protocol: the table holds fewer readings of it than the protocol's runs (or their CV is above the target)".into(),
            (true, false, _) => format!(
                "; the recommendation is NOT confirmed at the full protocol: {}, so its figure comes from exploring runs",
                // Only a signal should leave it unconfirmed; anything else is said as it was.
                if self.stop_reason == StopReason::Interrupted.to_string() {
                    "a signal stopped the study first".to_string()
                } else {
                    format!("its confirmation did not finish (the study: {})", self.stop_reason)
                }
            ),
        };
        format!("{how}{prior}{confirmed}")
    }

    /// The constraints as people write them (`max_slowdown 1.2 x, max_power_w 10 W`).
    pub fn constraint_list(&self) -> String {
        self.constraints
            .iter()
            .map(|c| {
                // A slowdown is against the baseline at its batch size: say which.
                let at = if c.name == "max_slowdown" {
                    at_batch(self.baseline.batch_size)
                } else {
                    String::new()
                };
                format!("{} {} {}{at}", c.name, c.limit, c.unit)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// pareto.csv: the front's points, one per row.
pub fn pareto_csv(points: &[ParetoPoint]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // The csv crate cannot serialise flattened structs: the same columns, written out.
    let emc = points.iter().any(|p| p.config.emc_freq_hz.is_some());
    let mut header = vec!["n", "cpu_freq_khz", "gpu_freq_hz"];
    header.extend(emc.then_some("emc_freq_hz"));
    header.extend([
        "batch_size",
        "energy_j",
        "time_s",
        "energy_per_inference_mj",
        "latency_ms",
    ]);
    w.write_record(&header)?;
    for p in points {
        let c = &p.config;
        let mut r = vec![p.n.to_string(), c.cpu_freq_khz.to_string()];
        r.push(c.gpu_freq_hz.to_string());
        r.extend(emc.then(|| c.emc_freq_hz.map_or(String::new(), |f| f.to_string())));
        r.push(c.batch_size.to_string());
        for v in [
            p.energy_j,
            p.time_s,
            p.energy_per_inference_mj,
            p.latency_ms,
        ] {
            // Shortest round-trip digits, as csv's own serialiser writes them (1.0, not 1).
            r.push(serde_json::to_string(&v)?);
        }
        w.write_record(&r)?;
    }
    Ok(String::from_utf8(
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
    )?)
}

/// Saving of `e` against `base`, percent.
pub fn saving_pct(base: f64, e: f64) -> f64 {
    (1.0 - e / base) * 100.0
}

/// Context a report needs besides the outcome.
pub struct ReportContext<'a> {
    /// Model id.
    pub model: &'a str,
    /// Board id.
    pub device: &'a str,
    /// Backend.
    pub backend: crate::device::BackendKind,
    /// Strategy name.
    pub strategy: &'a str,
    /// Seed.
    pub seed: u64,
    /// Protocol.
    pub protocol: crate::measure::ProtocolSettings,
    /// Grid size.
    pub grid_size: usize,
    /// Budget.
    pub budget: usize,
    /// What the baseline is ("dvfs", or what stands in for it on the device).
    pub baseline_kind: crate::device::BaselineKind,
    /// Objective and constraints.
    pub goal: crate::objective::Goal,
    /// Racing and screening.
    pub exploration: crate::study::Exploration,
    /// The prior, in words.
    pub prior: &'a str,
}

impl Report {
    /// Builds the report of a study.
    pub fn build(ctx: &ReportContext<'_>, o: &Outcome) -> Report {
        // A recommendation not yet confirmed (a signal) is stated at full length, and flagged.
        let best = o
            .best()
            .map(|b| best_of(&b.config, &b.measurement.at_length(o.inferences)));
        let limits = ctx.goal.limits_info();
        // Every row once, with its feasibility; the recommendation's and the front are read
        // off the rows.
        let rows: Vec<Row> = o
            .measured
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut r = row(i + 1, &m.config, &m.measurement);
                r.screened_inferences =
                    (m.measurement.inferences != o.inferences).then_some(m.measurement.inferences);
                if !limits.is_empty() {
                    let full = m.measurement.at_length(o.inferences);
                    let g = ctx.goal.measured_constraints(&full, &o.baseline);
                    r.feasible = Some(crate::objective::violation(&g) <= 0.0);
                }
                r
            })
            .collect();
        let best_feasible = o.best.and_then(|i| rows[i].feasible);
        let lower_readings = o.best().map_or(Vec::new(), |b| {
            let at_best = Quantities::of(&b.measurement.at_length(o.inferences));
            lower_readings(&ctx.goal, &rows, &at_best)
        });
        let pareto = if ctx.goal.pareto {
            let q: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (r.latency_ms, r.energy.energy_per_inference_mj))
                .collect();
            crate::objective::pareto_front(&q)
                .into_iter()
                .map(|i| {
                    let r = &rows[i];
                    ParetoPoint {
                        n: r.n,
                        config: r.config,
                        energy_j: r.energy.energy_j,
                        time_s: r.energy.time_s,
                        energy_per_inference_mj: r.energy.energy_per_inference_mj,
                        latency_ms: r.latency_ms,
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let same = o
            .baseline_same_batch
            .as_ref()
            .map(|m| Baseline::of(m, ctx.baseline_kind));
        Report {
            edgetune_version: env!("CARGO_PKG_VERSION").into(),
            model: ctx.model.into(),
            device: ctx.device.into(),
            backend: ctx.backend,
            strategy: ctx.strategy.into(),
            seed: ctx.seed,
            inferences: ctx.protocol.inferences,
            protocol: ctx.protocol,
            grid_size: ctx.grid_size,
            measured_configs: o.measured.len(),
            budget: ctx.budget,
            stop_reason: o.stop_reason.to_string(),
            resumed_configs: o.resumed,
            tuning_time_s: o.tuning_time_s(),
            saving_pct: best
                .as_ref()
                .map(|b| saving_pct(o.baseline.energy_j, b.energy.energy_j)),
            saving_same_batch_pct: best
                .as_ref()
                .zip(same.as_ref())
                .map(|(b, s)| saving_pct(s.energy_j, b.energy.energy_j)),
            best,
            baseline: Baseline::of(&o.baseline, ctx.baseline_kind),
            baseline_same_batch: same,
            measurements: rows,
            plots: Vec::new(),
            notes: Vec::new(),
            objective: ctx.goal.objective.name().into(),
            constraints: limits,
            best_feasible,
            pareto,
            failed: o
                .failed
                .iter()
                .map(|(config, error)| Failed {
                    config: *config,
                    error: error.clone(),
                })
                .collect(),
            exploration: ctx.exploration,
            prior: ctx.prior.into(),
            best_confirmed: o.best_full,
            objective_value: objective_value(ctx, o),
            lower_readings,
            final_choice: o.best().map(|_| FinalChoiceReport {
                candidates: o.choice.candidates.iter().map(|i| i + 1).collect(),
                unresolved: o.choice.unresolved.clone(),
            }),
            surrogate: o.surrogate,
            emulated: false,
            boards: Vec::new(),
            board_spread_pct: None,
        }
    }
}

/// The full-length rows that meet the limits and read lower on the objective than `best`.
pub(crate) fn lower_readings(
    goal: &crate::objective::Goal,
    rows: &[Row],
    best: &Quantities,
) -> Vec<usize> {
    let at_best = goal.value(best);
    rows.iter()
        .filter(|r| r.screened_inferences.is_none() && r.feasible != Some(false))
        .filter(|r| {
            let q = Quantities {
                energy_j: r.energy.energy_j,
                time_s: r.energy.time_s,
                inferences: best.inferences,
                batch_size: r.config.batch_size,
            };
            goal.value(&q) < at_best
        })
        .map(|r| r.n)
        .collect()
}

/// The objective's value at the recommendation and the baseline, when it is not energy.
fn objective_value(ctx: &ReportContext<'_>, o: &Outcome) -> Option<ObjectiveValue> {
    if ctx.goal.objective == crate::objective::Objective::Energy {
        return None;
    }
    let best = o.best()?.measurement.at_length(o.inferences);
    let (b, base) = (
        ctx.goal.value(&Quantities::of(&best)),
        ctx.goal.value(&Quantities::of(&o.baseline)),
    );
    Some(ObjectiveValue {
        best: b,
        baseline: base,
        saving_pct: saving_pct(base, b),
    })
}

/// The `best` block for a configuration.
pub fn best_of(c: &Config, m: &Measurement) -> Best {
    Best {
        config: *c,
        energy: Energy::of(m),
    }
}

/// A table row for a configuration.
pub fn row(n: usize, c: &Config, m: &Measurement) -> Row {
    Row {
        n,
        config: *c,
        energy: Energy::of(m),
        runs: m.runs.len(),
        cv: m.cv,
        run_energies_j: m.runs.iter().map(|r| r.energy_j).collect(),
        rail_energy_j: m.rail_energy_j.clone(),
        window_repeats: m.window_repeats,
        latency_ms: Quantities::of(m).latency_ms(),
        feasible: None,
        screened_inferences: None,
    }
}

/// Human duration: `42 s`, `12.5 min`, `3.2 h`.
pub fn human_duration(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}
