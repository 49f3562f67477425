//! What `sweep` writes and prints: sweep.json, sweep.csv (through `csv::Writer`) and the text
//! tables.

use super::saving_pct;
use super::source::Source;
use crate::device::BackendKind;
use crate::measure::Measurement;
use crate::space::Config;
use crate::units::gpu_cell;
use serde::Serialize;

/// One grid entry of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Its knobs.
    #[serde(flatten)]
    pub config: Config,
    /// Energy for `inferences` inferences.
    pub energy_j: f64,
    /// Time.
    pub time_s: f64,
    /// Average power.
    pub avg_power_w: f64,
    /// CV of the runs.
    pub cv: f64,
    /// Runs.
    pub runs: usize,
}

/// A DVFS entry of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepBaseline {
    /// Batch size.
    pub batch_size: u32,
    /// Energy.
    pub energy_j: f64,
    /// Time.
    pub time_s: f64,
    /// Coefficient of variation of its runs.
    pub cv: f64,
    /// Runs.
    pub runs: usize,
}

impl SweepRow {
    /// The row of a measured configuration.
    pub fn of(c: &Config, m: &Measurement) -> SweepRow {
        SweepRow {
            config: *c,
            energy_j: m.energy_j,
            time_s: m.time_s,
            avg_power_w: m.avg_power_w,
            cv: m.cv,
            runs: m.runs.len(),
        }
    }
}

impl SweepBaseline {
    /// The entry of a DVFS measurement.
    pub fn of(m: &Measurement) -> SweepBaseline {
        SweepBaseline {
            batch_size: m.batch_size,
            energy_j: m.energy_j,
            time_s: m.time_s,
            cv: m.cv,
            runs: m.runs.len(),
        }
    }
}

/// sweep.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Backend.
    pub backend: BackendKind,
    /// Inferences per run.
    pub inferences: u32,
    /// Whether the twin's noise was on.
    pub noise: bool,
    /// Every configuration.
    pub grid: Vec<SweepRow>,
    /// The grid's best entry.
    pub min: SweepRow,
    /// DVFS per batch size.
    pub baseline: Vec<SweepBaseline>,
}

/// Six decimals in the CSV, as the tables edgetune replays expect. A DVFS row leaves its clock
/// cells, CV and runs empty and says `dvfs` in `setting`, as a replay table's baseline rows do.
#[derive(Serialize)]
struct CsvRow {
    cpu_freq_khz: String,
    gpu_freq_hz: String,
    batch_size: u32,
    energy_j: String,
    time_s: String,
    avg_power_w: String,
    cv: String,
    runs: String,
    setting: &'static str,
}

/// sweep.csv: the grid rows, one per configuration, then the DVFS rows (one per batch size), so
/// the file replays with its own baseline.
pub fn csv(rep: &SweepReport) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let six = |x: f64| format!("{x:.6}");
    for r in &rep.grid {
        w.serialize(CsvRow {
            cpu_freq_khz: r.config.cpu_freq_khz.to_string(),
            gpu_freq_hz: r.config.gpu_freq_hz.to_string(),
            batch_size: r.config.batch_size,
            energy_j: six(r.energy_j),
            time_s: six(r.time_s),
            avg_power_w: six(r.avg_power_w),
            cv: six(r.cv),
            runs: r.runs.to_string(),
            setting: "pinned",
        })?;
    }
    for b in &rep.baseline {
        w.serialize(CsvRow {
            cpu_freq_khz: String::new(),
            gpu_freq_hz: String::new(),
            batch_size: b.batch_size,
            energy_j: six(b.energy_j),
            time_s: six(b.time_s),
            avg_power_w: if b.time_s > 0.0 {
                six(b.energy_j / b.time_s)
            } else {
                String::new()
            },
            cv: six(b.cv),
            runs: b.runs.to_string(),
            setting: "dvfs",
        })?;
    }
    Ok(String::from_utf8(
        w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
    )?)
}

/// The text `sweep` prints: the minimum, every row when measured on hardware, and the saving of
/// the best pinned clocks per batch size when the clocks were a knob.
pub fn text(rep: &SweepReport) -> String {
    let mut s = format!(
        "edgetune sweep: {} on {} ({}), {} configurations{}\n",
        rep.model,
        rep.device,
        rep.backend.words(),
        rep.grid.len(),
        if rep.backend.is_simulated() {
            format!(", noise {}", if rep.noise { "on" } else { "off" })
        } else {
            String::new()
        }
    );
    s += &format!("minimum: {:.1} J at {}\n", rep.min.energy_j, rep.min.config);
    if !rep.backend.is_simulated() {
        // Measured on hardware: every row, as measured.
        // The clock columns the device has (a GPU's CPU clock, a host's GPU clock are not knobs).
        let cpu = rep.grid.iter().any(|r| r.config.cpu_freq_khz != 0);
        let gpu = rep.grid.iter().any(|r| r.config.gpu_freq_hz != 0) || !cpu;
        s += "batch";
        s += if cpu { " | CPU clock" } else { "" };
        s += if gpu { " | GPU clock" } else { "" };
        s += " | energy (J) | time (s) | power (W) | CV (%) | runs\n";
        for r in &rep.grid {
            s += &format!("{:>5}", r.config.batch_size);
            if cpu {
                let mhz = crate::units::khz_to_mhz(r.config.cpu_freq_khz);
                s += &format!(" | {:>9}", format!("{mhz:.0} MHz"));
            }
            if gpu {
                let clock = match r.config.gpu_freq_hz {
                    0 => gpu_cell(0),
                    hz => format!("{:.0} MHz", crate::units::hz_to_mhz(hz)),
                };
                s += &format!(" | {clock:>9}");
            }
            s += &format!(
                " | {:>10.2} | {:>8.3} | {:>9.1} | {:>6.1} | {:>4}\n",
                r.energy_j,
                r.time_s,
                r.avg_power_w,
                100.0 * r.cv,
                r.runs
            );
        }
    }
    if rep.grid.iter().all(|r| !r.config.pins_a_clock()) {
        // The grid ran at the baseline's clocks: the table above is all there is.
        return s;
    }
    s += "batch | DVFS (J) | best pinned (J) | saving (%)\n";
    for b in &rep.baseline {
        let best = rep
            .grid
            .iter()
            .filter(|r| r.config.batch_size == b.batch_size)
            .map(|r| r.energy_j)
            .fold(f64::INFINITY, f64::min);
        s += &format!(
            "{:>5} | {:>8.1} | {:>15.1} | {:>10.1}\n",
            b.batch_size,
            b.energy_j,
            best,
            saving_pct(b.energy_j, best)
        );
    }
    s
}
