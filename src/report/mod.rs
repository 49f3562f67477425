//! Reports: `report.json` (the machine-readable result), `report.md`, the summary `tune` prints,
//! `profile.toml`, the nvpmodel `POWER_MODEL` block, and what `sweep` writes and prints.

pub mod bench;
pub mod build;
pub mod dashboard;
pub mod listing;
pub mod markdown;
pub mod measure;
pub mod plot;
pub mod profile;
pub mod rate;
pub mod source;
pub mod summary;
pub mod sweep;
pub mod words;

use crate::measure::Measurement;
use crate::objective::Quantities;
use crate::space::{Config, Knob};
use crate::study::StopReason;
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
    /// Power while idle at the same setting (a study at a rate measures it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_power_w: Option<f64>,
}

impl Energy {
    /// A measurement's.
    pub fn of(m: &Measurement) -> Energy {
        Energy {
            energy_j: m.energy_j,
            time_s: m.time_s,
            avg_power_w: m.avg_power_w,
            energy_per_inference_mj: m.energy_per_inference_mj,
            idle_power_w: m.idle_power_w,
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
    /// Power while idle under the governors (a study at a rate measures it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_power_w: Option<f64>,
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
            idle_power_w: m.idle_power_w,
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
    /// The board whose runs these are, in a study measured by several (`study report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
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
    /// 95 % interval of `saving_pct` from both sides' runs, low and high; absent where a side
    /// has one run (its spread is not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saving_interval_pct: Option<[f64; 2]>,
    /// 95 % interval of `saving_same_batch_pct`, as `saving_interval_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saving_same_batch_interval_pct: Option<[f64; 2]>,
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
    /// A study at a rate: the energies at that rate, which its savings compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_rate: Option<rate::AtRate>,
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
pub fn boards(
    view: &crate::study::storage::StudyView,
    batch: u32,
    space: &crate::space::Space,
    protocol: &crate::measure::ProtocolSettings,
) -> Vec<BoardShare> {
    use crate::study::JournalRecord;
    let offsets = crate::study::fleet::board_offsets(&view.records, batch, space, protocol);
    let baselines = crate::study::fleet::board_baselines(&view.records, batch, protocol);
    let mut out: Vec<BoardShare> = Vec::new();
    for r in &view.records {
        let i = match out.iter().position(|b| b.board == r.origin.board) {
            Some(i) => i,
            None => {
                out.push(BoardShare {
                    board: r.origin.board.clone(),
                    backend: r.origin.backend.clone(),
                    baseline_energy_j: baselines.get(&r.origin.board).map_or(0.0, |m| m.energy_j),
                    offset_pct: offsets
                        .get(&r.origin.board)
                        .map_or(0.0, |o| (o.exp() - 1.0) * 100.0),
                    configs: Vec::new(),
                });
                out.len() - 1
            }
        };
        if let JournalRecord::Measurement { config, .. } = &r.record {
            out[i].configs.push(*config);
        }
    }
    out
}

/// The boards whose figure each row of a stored study shows, in the rows' order (as the
/// fleet's replay makes them): the board that measured the configuration, or the boards whose
/// runs at the full protocol were pooled into its confirmation (joined by ` + `), whose figure
/// replaces the exploring one. Configurations outside `space` make no row.
pub fn row_boards(
    view: &crate::study::storage::StudyView,
    space: &crate::space::Space,
) -> Vec<String> {
    use crate::study::JournalRecord;
    // Each row: its configuration, its boards, and the length of its exploring runs.
    let mut rows: Vec<(Config, Vec<String>, u32)> = Vec::new();
    for r in &view.records {
        let board = r.origin.board.clone();
        match &r.record {
            JournalRecord::Measurement {
                config,
                measurement,
            } if space.point_of(config).is_some() => {
                rows.push((*config, vec![board], measurement.inferences));
            }
            JournalRecord::Confirmed { config, .. } => {
                if let Some(row) = rows.iter_mut().rev().find(|(c, ..)| c == config) {
                    row.1 = vec![board];
                }
            }
            JournalRecord::Share {
                config,
                measurement,
            } => {
                if let Some(row) = rows.iter_mut().rev().find(|(c, ..)| c == config) {
                    // Screened exploring runs are not in the pool: the shares' boards replace it.
                    if row.2 != measurement.inferences {
                        row.1.clear();
                        row.2 = measurement.inferences;
                    }
                    if !row.1.contains(&board) {
                        row.1.push(board);
                    }
                }
            }
            _ => {}
        }
    }
    rows.into_iter().map(|(_, b, _)| b.join(" + ")).collect()
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

/// A mean of runs: its value, the runs' coefficient of variation, how many runs.
#[derive(Debug, Clone, Copy)]
pub struct MeanOf {
    /// The mean.
    pub value: f64,
    /// The runs' CV.
    pub cv: f64,
    /// Runs.
    pub runs: usize,
}

impl MeanOf {
    /// A measurement's energy.
    pub fn energy(m: &Measurement) -> MeanOf {
        MeanOf {
            value: m.energy_j,
            cv: m.cv,
            runs: m.runs.len(),
        }
    }

    /// A measurement's energy as `goal` compares it (at its rate, where it has one): the idle
    /// part is one window's reading, so the runs' spread applies to the busy part alone.
    pub fn compared(goal: &crate::objective::Goal, m: &Measurement) -> MeanOf {
        let value = rate::compared_energy_j(goal, m);
        MeanOf {
            value,
            cv: m.cv * m.energy_j / value.max(f64::MIN_POSITIVE),
            runs: m.runs.len(),
        }
    }
}

/// A 95 % interval of the saving of `e` against `base`, percent, low then high: the log of
/// their ratio has the variance cv^2 / runs of each side's mean (delta method), with a
/// Student-t quantile on Welch's degrees of freedom. `None` where a side has one run (its
/// spread is not known) or a value is not positive.
pub fn saving_interval_pct(base: MeanOf, e: MeanOf) -> Option<[f64; 2]> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if base.runs < 2 || e.runs < 2 || base.value <= 0.0 || e.value <= 0.0 {
        return None;
    }
    let var = |m: MeanOf| m.cv * m.cv / m.runs as f64;
    let (vb, ve) = (var(base), var(e));
    let spread = (vb + ve).sqrt();
    let df = match vb * vb / (base.runs - 1) as f64 + ve * ve / (e.runs - 1) as f64 {
        d if d > 0.0 => (vb + ve).powi(2) / d,
        _ => (base.runs + e.runs - 2) as f64,
    };
    let t = StudentsT::new(0.0, 1.0, df.max(1.0))
        .map(|t| t.inverse_cdf(0.975))
        .unwrap_or(1.96);
    let ratio = e.value / base.value;
    let at = |z: f64| (1.0 - ratio * z.exp()) * 100.0;
    Some([at(t * spread), at(-t * spread)])
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
        board: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(value: f64, cv: f64, runs: usize) -> MeanOf {
        MeanOf { value, cv, runs }
    }

    #[test]
    fn a_savings_interval_comes_from_both_sides_runs() {
        // No spread: the interval is the saving itself.
        let [lo, hi] = saving_interval_pct(mean(100.0, 0.0, 3), mean(90.0, 0.0, 3)).unwrap();
        assert!((lo - 10.0).abs() < 1e-9 && (hi - 10.0).abs() < 1e-9);
        // 2 % runs on both sides, three each: about +-4.5 points around 10 %.
        let [lo, hi] = saving_interval_pct(mean(100.0, 0.02, 3), mean(90.0, 0.02, 3)).unwrap();
        assert!(
            lo < 10.0 && hi > 10.0 && hi - lo > 5.0 && hi - lo < 15.0,
            "{lo} {hi}"
        );
        // More runs, a narrower interval.
        let [lo10, hi10] =
            saving_interval_pct(mean(100.0, 0.02, 10), mean(90.0, 0.02, 10)).unwrap();
        assert!(hi10 - lo10 < (hi - lo) / 2.0);
        // One reading on a side (a table's): its spread is unknown, so no interval.
        assert!(saving_interval_pct(mean(100.0, 0.0, 1), mean(90.0, 0.02, 3)).is_none());
    }
}
