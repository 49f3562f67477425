//! The search space: knobs, configurations, grid enumeration, normalisation to [0, 1].
//!
//! Strategies see only axis sizes and index points ([`Point`]); the space maps points to
//! [`Config`]s in sysfs units.

use crate::catalog::{Board, Model};
use crate::opt::Opt;
use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// What can be wrong with a requested search space.
#[derive(Debug, Error)]
pub enum SpaceError {
    /// `--fix` names a knob that does not exist.
    #[error("unknown knob `{0}` in {fix}; knobs: cpu_freq_khz (cpu), gpu_freq_hz (gpu), batch_size (batch)", fix = Opt::Fix)]
    UnknownKnob(String),
    /// `--fix` is not `knob=value`.
    #[error(
        "{fix} expects knob=value (for example gpu_freq_hz=614400000 or gpu=614.4MHz), got `{0}`",
        fix = Opt::Fix
    )]
    Malformed(String),
    /// A value that is not a number (with an optional unit).
    #[error("cannot read `{value}` as a {what}")]
    BadNumber {
        /// Text given.
        value: String,
        /// What was expected.
        what: String,
    },
    /// A frequency not in the board's table.
    #[error("{knob} {value} is not in the {board} table; valid values: {valid}")]
    NotInTable {
        /// Knob name.
        knob: Knob,
        /// Value asked for (sysfs units).
        value: u64,
        /// Board id.
        board: String,
        /// Valid values.
        valid: String,
    },
    /// A batch size the model does not allow.
    #[error("batch size {value} is not allowed for {model}; allowed: {valid}")]
    BadBatch {
        /// Batch size asked for.
        value: u64,
        /// Model id.
        model: String,
        /// Allowed batch sizes.
        valid: String,
    },
    /// Nothing left to search.
    #[error("the search space is empty after {0}")]
    Empty(String),
}

/// A knob of the search space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Knob {
    /// CPU frequency, kHz (cpufreq's unit).
    CpuFreqKhz,
    /// GPU frequency, Hz (devfreq's unit).
    GpuFreqHz,
    /// Memory (EMC) frequency, Hz (replay tables only).
    EmcFreqHz,
    /// Online CPU cores (replay tables only).
    CpuCores,
    /// An nvpmodel power mode's id (`nvpmodel -m N`): its caps set the clocks and cores, whose
    /// governors stay active (replay tables with a `power_mode` column).
    PowerMode,
    /// Inferences per batch.
    BatchSize,
}

impl Knob {
    /// The knobs of a board's space, in axis order.
    pub const ALL: [Knob; 3] = [Knob::CpuFreqKhz, Knob::GpuFreqHz, Knob::BatchSize];
    /// Every knob, in the order axes are kept.
    pub const EVERY: [Knob; 6] = [
        Knob::CpuFreqKhz,
        Knob::GpuFreqHz,
        Knob::EmcFreqHz,
        Knob::CpuCores,
        Knob::PowerMode,
        Knob::BatchSize,
    ];

    /// Field name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Knob::CpuFreqKhz => "cpu_freq_khz",
            Knob::GpuFreqHz => "gpu_freq_hz",
            Knob::EmcFreqHz => "emc_freq_hz",
            Knob::CpuCores => "cpu_cores",
            Knob::PowerMode => "power_mode",
            Knob::BatchSize => "batch_size",
        }
    }

    /// The knob a file column names, if any.
    pub fn from_column(s: &str) -> Option<Knob> {
        Knob::EVERY.into_iter().find(|k| k.name() == s)
    }

    /// Search priority for coordinate-wise strategies: clocks with the most effect first.
    pub fn priority(self) -> usize {
        match self {
            Knob::PowerMode => 0,
            Knob::GpuFreqHz => 1,
            Knob::CpuFreqKhz => 2,
            Knob::EmcFreqHz => 3,
            Knob::CpuCores => 4,
            Knob::BatchSize => 5,
        }
    }

    /// Parses a knob name or its short form.
    pub fn parse(s: &str) -> Result<Knob, SpaceError> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "cpu_freq_khz" | "cpu" | "cpu_freq" => Ok(Knob::CpuFreqKhz),
            "gpu_freq_hz" | "gpu" | "gpu_freq" => Ok(Knob::GpuFreqHz),
            "batch_size" | "batch" | "bs" => Ok(Knob::BatchSize),
            "power_mode" | "mode" | "nvpmodel" => Ok(Knob::PowerMode),
            _ => Err(SpaceError::UnknownKnob(s.to_string())),
        }
    }

    /// Parses a value for this knob, in its sysfs unit unless a unit is given
    /// (`614.4MHz`, `1.479GHz`, `1479000` for kHz on the CPU).
    pub fn parse_value(self, s: &str) -> Result<u64, SpaceError> {
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let bad = || SpaceError::BadNumber {
            value: s.to_string(),
            what: match self {
                Knob::CpuFreqKhz => "CPU frequency (kHz, or with a unit: 1479MHz)".into(),
                Knob::GpuFreqHz => "GPU frequency (Hz, or with a unit: 921.6MHz)".into(),
                Knob::EmcFreqHz => "memory frequency (Hz, or with a unit: 1600MHz)".into(),
                Knob::CpuCores => "number of CPU cores".into(),
                Knob::PowerMode => "power mode id (nvpmodel -m N)".into(),
                Knob::BatchSize => "batch size".into(),
            },
        };
        if matches!(self, Knob::BatchSize | Knob::CpuCores | Knob::PowerMode) {
            return t.parse::<u64>().map_err(|_| bad());
        }
        let base_hz = match self {
            Knob::CpuFreqKhz => 1e3,
            _ => 1.0,
        };
        let (num, hz_per_unit) = [("ghz", 1e9), ("mhz", 1e6), ("khz", 1e3), ("hz", 1.0)]
            .iter()
            .find_map(|(u, f)| lower.strip_suffix(u).map(|n| (n.trim().to_string(), *f)))
            .unwrap_or((lower.clone(), base_hz));
        let v: f64 = num.parse().map_err(|_| bad())?;
        if !(v.is_finite() && v > 0.0) {
            return Err(bad());
        }
        Ok((v * hz_per_unit / base_hz).round() as u64)
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One configuration, in sysfs units. A 0 in one of the three board knobs says that it is not a
/// knob of the study (an NVIDIA GPU's CPU clock or unlocked GPU clock, a replay table without
/// that column): it is left out of every output, never written to a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// CPU frequency, kHz.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cpu_freq_khz: u64,
    /// GPU frequency, Hz.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpu_freq_hz: u64,
    /// Batch size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub batch_size: u32,
    /// Memory frequency, Hz, when it is a knob (replay tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emc_freq_hz: Option<u64>,
    /// Online CPU cores, when it is a knob (replay tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<u32>,
    /// The nvpmodel power mode, when it is a knob (its id; 0 is a mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mode: Option<u32>,
}

impl Config {
    /// A configuration of the three board knobs.
    pub fn new(cpu_freq_khz: u64, gpu_freq_hz: u64, batch_size: u32) -> Config {
        Config {
            cpu_freq_khz,
            gpu_freq_hz,
            batch_size,
            emc_freq_hz: None,
            cpu_cores: None,
            power_mode: None,
        }
    }

    /// Whether it pins a clock (a GPU without clock control, a table without clock columns:
    /// every clock 0, the device's defaults).
    pub fn pins_a_clock(&self) -> bool {
        self.cpu_freq_khz != 0
            || self.gpu_freq_hz != 0
            || self.emc_freq_hz.is_some_and(|e| e != 0)
            || self.power_mode.is_some()
    }

    /// The clock setting of this configuration (everything but the batch size).
    pub fn setting(&self) -> crate::device::FreqSetting {
        crate::device::FreqSetting::Pinned {
            cpu_freq_khz: self.cpu_freq_khz,
            gpu_freq_hz: self.gpu_freq_hz,
            emc_freq_hz: self.emc_freq_hz,
            cpu_cores: self.cpu_cores,
            power_mode: self.power_mode,
        }
    }

    /// Value of a knob.
    pub fn get(&self, k: Knob) -> Option<u64> {
        match k {
            Knob::CpuFreqKhz => Some(self.cpu_freq_khz),
            Knob::GpuFreqHz => Some(self.gpu_freq_hz),
            Knob::EmcFreqHz => self.emc_freq_hz,
            Knob::CpuCores => self.cpu_cores.map(u64::from),
            Knob::PowerMode => self.power_mode.map(u64::from),
            Knob::BatchSize => Some(self.batch_size as u64),
        }
    }

    /// Sets a knob.
    pub fn set(&mut self, k: Knob, v: u64) {
        match k {
            Knob::CpuFreqKhz => self.cpu_freq_khz = v,
            Knob::GpuFreqHz => self.gpu_freq_hz = v,
            Knob::EmcFreqHz => self.emc_freq_hz = Some(v),
            Knob::CpuCores => self.cpu_cores = Some(v as u32),
            Knob::PowerMode => self.power_mode = Some(v as u32),
            Knob::BatchSize => self.batch_size = v as u32,
        }
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A knob at 0 is not a knob of the study (see [`Config`]).
        let mut parts = Vec::new();
        if let Some(m) = self.power_mode {
            parts.push(format!("power mode {m}"));
        }
        if self.cpu_freq_khz != 0 {
            parts.push(format!(
                "CPU {} MHz",
                crate::units::cpu_mhz(self.cpu_freq_khz)
            ));
        }
        if self.gpu_freq_hz != 0 {
            parts.push(format!(
                "GPU {} MHz",
                crate::units::gpu_mhz(self.gpu_freq_hz)
            ));
        }
        if let Some(e) = self.emc_freq_hz {
            parts.push(format!("EMC {} MHz", crate::units::gpu_mhz(e)));
        }
        if let Some(c) = self.cpu_cores {
            parts.push(format!("{c} cores"));
        }
        if self.batch_size != 0 {
            parts.push(format!("batch {}", self.batch_size));
        }
        if parts.is_empty() {
            // An NVIDIA GPU at its default clocks and a fixed batch.
            return write!(f, "default clocks");
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// Whether a knob's value says it is not a knob (serde's `skip_serializing_if`).
fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A point of the space: one index per axis, in the space's axis order.
pub type Point = Vec<usize>;

/// One axis: a knob and its allowed values in ascending order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The knob.
    pub knob: Knob,
    /// Allowed values (sysfs units), ascending.
    pub values: Vec<u64>,
}

/// The clock values a device offers, as the space and `--fix` see them: a catalogue board's
/// tables, or an NVIDIA GPU's (see [`crate::backend::nvml::GpuSpec`]).
#[derive(Debug, Clone, Copy)]
pub struct ClockTables<'a> {
    /// The device's id, for messages.
    pub device: &'a str,
    /// CPU frequencies, kHz (`[0]` where the CPU clock is not a knob).
    pub cpu_freq_khz: &'a [u64],
    /// GPU frequencies, Hz.
    pub gpu_freq_hz: &'a [u64],
}

impl<'a> From<&'a Board> for ClockTables<'a> {
    fn from(b: &'a Board) -> ClockTables<'a> {
        ClockTables {
            device: &b.board.id,
            cpu_freq_khz: &b.cpu.frequencies_khz,
            gpu_freq_hz: &b.gpu.frequencies_hz,
        }
    }
}

/// The search space: CPU frequency x GPU frequency x batch size for a board; for a replay
/// table, the knobs its columns name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Space {
    /// Axes in [`Knob::EVERY`] order; a fixed knob has one value.
    pub axes: Vec<Axis>,
    /// Values of the knobs that have no axis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Config>,
}

impl Space {
    /// The board's full frequency tables times the model's batch sizes, narrowed by
    /// `batch_sizes` (a subset of the model's) and `fixes`.
    pub fn new(
        board: &Board,
        model: &Model,
        batch_sizes: Option<&[u64]>,
        fixes: &[(Knob, u64)],
    ) -> Result<Space, SpaceError> {
        let allowed: Vec<u64> = model.paper.batch_sizes.iter().map(|b| *b as u64).collect();
        Space::with_batches(board.into(), model.id(), &allowed, batch_sizes, fixes)
    }

    /// A space over a device that runs any positive batch size (a GPU, a host CPU): its clock
    /// tables x the batch sizes asked for, or the model's, narrowed by `fixes`.
    pub fn with_any_batches(
        tables: ClockTables<'_>,
        model: &Model,
        batch_sizes: Option<&[u64]>,
        fixes: &[(Knob, u64)],
    ) -> Result<Space, SpaceError> {
        let allowed: Vec<u64> = match batch_sizes {
            Some(b) => b.to_vec(),
            None => model.paper.batch_sizes.iter().map(|b| *b as u64).collect(),
        };
        Space::with_batches(tables, model.id(), &allowed, Some(&allowed), fixes)
    }

    /// As [`Space::new`], for any device's clock tables and with the batch sizes `allowed` given
    /// instead of taken from the model (`model` names it in errors): a GPU is not limited to the
    /// paper's batch sizes.
    pub fn with_batches(
        tables: ClockTables<'_>,
        model: &str,
        allowed: &[u64],
        batch_sizes: Option<&[u64]>,
        fixes: &[(Knob, u64)],
    ) -> Result<Space, SpaceError> {
        let batches = match batch_sizes {
            Some(bs) => {
                for b in bs {
                    check_batch(*b, allowed, model)?;
                }
                let mut v = bs.to_vec();
                v.sort_unstable();
                v.dedup();
                v
            }
            None => allowed.to_vec(),
        };
        let mut axes = vec![
            Axis {
                knob: Knob::CpuFreqKhz,
                values: tables.cpu_freq_khz.to_vec(),
            },
            Axis {
                knob: Knob::GpuFreqHz,
                values: tables.gpu_freq_hz.to_vec(),
            },
            Axis {
                knob: Knob::BatchSize,
                values: batches,
            },
        ];
        for (knob, value) in fixes {
            let Some(i) = Knob::ALL.iter().position(|k| k == knob) else {
                return Err(SpaceError::Empty(format!(
                    "{} {knob}={value} (not a knob of this space: {knob} is a knob of a power-mode study, {})",
                    Opt::Fix,
                    Opt::PowerModes
                )));
            };
            let axis = &mut axes[i];
            if *knob == Knob::BatchSize {
                check_batch(*value, allowed, model)?;
            } else {
                check_freq(*knob, *value, tables)?;
            }
            if !axis.values.contains(value) {
                return Err(SpaceError::Empty(format!(
                    "{} {knob}={value} (not among the values still allowed: {})",
                    Opt::Fix,
                    join(&axis.values)
                )));
            }
            axis.values = vec![*value];
        }
        if axes.iter().any(|a| a.values.is_empty()) {
            return Err(SpaceError::Empty(Opt::BatchSizes.to_string()));
        }
        Ok(Space { axes, base: None })
    }

    /// A space of the given axes (sorted into [`Knob::EVERY`] order); knobs without an axis take
    /// their value from `base`.
    pub fn from_axes(mut axes: Vec<Axis>, base: Config) -> Space {
        axes.sort_by_key(|a| Knob::EVERY.iter().position(|k| *k == a.knob));
        Space {
            axes,
            base: Some(base),
        }
    }

    /// Axis indices in the order coordinate-wise strategies should search them.
    pub fn axis_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.axes.len()).collect();
        order.sort_by_key(|i| self.axes[*i].knob.priority());
        order
    }

    /// Number of values on each axis.
    pub fn dims(&self) -> Vec<usize> {
        self.axes.iter().map(|a| a.values.len()).collect()
    }

    /// Its batch sizes, ascending: the batch axis, else the one fixed batch (0 where the batch
    /// is not a knob).
    pub fn batch_sizes(&self) -> Vec<u32> {
        match self.axis(Knob::BatchSize) {
            Some(a) => a.values.iter().map(|b| *b as u32).collect(),
            None => vec![self.config(&vec![0; self.dims().len()]).batch_size],
        }
    }

    /// Number of configurations.
    pub fn size(&self) -> usize {
        self.dims().iter().product()
    }

    /// The configuration at a point.
    pub fn config(&self, p: &[usize]) -> Config {
        let mut c = self.base.unwrap_or(Config::new(0, 0, 0));
        for (a, i) in self.axes.iter().zip(p) {
            c.set(a.knob, a.values[*i]);
        }
        c
    }

    /// The point of a configuration, if it lies in the space.
    pub fn point_of(&self, c: &Config) -> Option<Point> {
        self.axes
            .iter()
            .map(|a| {
                let v = c.get(a.knob)?;
                a.values.iter().position(|x| *x == v)
            })
            .collect()
    }

    /// The axis of a knob, if it has one.
    pub fn axis(&self, k: Knob) -> Option<&Axis> {
        self.axes.iter().find(|a| a.knob == k)
    }

    /// Flat index of a point (row-major, last axis fastest).
    pub fn index(&self, p: &[usize]) -> usize {
        p.iter().zip(self.dims()).fold(0, |acc, (i, n)| acc * n + i)
    }

    /// Point of a flat index.
    pub fn point(&self, index: usize) -> Point {
        point_at(&self.dims(), index)
    }

    /// Every point, in flat-index order.
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        (0..self.size()).map(|i| self.point(i))
    }

    /// Each axis's values mapped to [0, 1] on a log scale (a fixed axis maps to 0.5). Energy
    /// goes roughly as 1/f where static power dominates, so it is smoother in log frequency;
    /// batch sizes are powers of two. A power mode's id names a mode, not an amount (and may be
    /// 0): its modes are evenly spaced in id order.
    pub fn log_coords(&self) -> Vec<Vec<f64>> {
        self.axes
            .iter()
            .map(|a| {
                if a.knob == Knob::PowerMode {
                    let n = a.values.len();
                    return (0..n)
                        .map(|i| {
                            if n > 1 {
                                i as f64 / (n - 1) as f64
                            } else {
                                0.5
                            }
                        })
                        .collect();
                }
                let (lo, hi) = (
                    (a.values[0] as f64).ln(),
                    (a.values[a.values.len() - 1] as f64).ln(),
                );
                a.values
                    .iter()
                    .map(|v| {
                        if hi > lo {
                            ((*v as f64).ln() - lo) / (hi - lo)
                        } else {
                            0.5
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

fn join(v: &[u64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Point of flat index `i` in a grid of `dims` (row-major, last axis fastest).
pub fn point_at(dims: &[usize], mut i: usize) -> Point {
    let mut p = vec![0; dims.len()];
    for (k, n) in dims.iter().enumerate().rev() {
        p[k] = i % n;
        i /= n;
    }
    p
}

/// Checks that a batch size is one the model allows.
pub fn check_model_batch(model: &Model, b: u64) -> Result<(), SpaceError> {
    let allowed: Vec<u64> = model.paper.batch_sizes.iter().map(|b| *b as u64).collect();
    check_batch(b, &allowed, model.id())
}

fn check_batch(b: u64, allowed: &[u64], model: &str) -> Result<(), SpaceError> {
    if allowed.contains(&b) {
        Ok(())
    } else {
        Err(SpaceError::BadBatch {
            value: b,
            model: model.to_string(),
            valid: join(allowed),
        })
    }
}

/// `--power-modes`: `all` (`None`: every mode the board defines) or ids `0,3,4`.
pub fn parse_mode_list(s: &str) -> Result<Option<Vec<u32>>, SpaceError> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let mut ids = s
        .split(',')
        .map(|w| {
            w.trim().parse::<u32>().map_err(|_| SpaceError::BadNumber {
                value: w.trim().to_string(),
                what: format!("power mode id in {} (`all` or ids: 0,3,4)", Opt::PowerModes),
            })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// Values of knobs a space does not vary: where the governors spend most of their time (the top
/// clocks), and the model's smallest batch size.
pub fn top_corner(board: &Board, model: &Model) -> Config {
    Config::new(
        *board
            .cpu
            .frequencies_khz
            .last()
            .expect("validated non-empty"),
        *board
            .gpu
            .frequencies_hz
            .last()
            .expect("validated non-empty"),
        model.paper.batch_sizes[0],
    )
}

/// Checks that a frequency is in the device's table for that knob.
pub fn check_freq(knob: Knob, value: u64, tables: ClockTables<'_>) -> Result<(), SpaceError> {
    let table = match knob {
        Knob::CpuFreqKhz => tables.cpu_freq_khz,
        Knob::GpuFreqHz => tables.gpu_freq_hz,
        _ => return Ok(()),
    };
    if table.contains(&value) {
        Ok(())
    } else {
        Err(SpaceError::NotInTable {
            knob,
            value,
            board: tables.device.to_string(),
            valid: join(table),
        })
    }
}

/// Parses `knob=value`.
pub fn parse_fix(s: &str) -> Result<(Knob, u64), SpaceError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| SpaceError::Malformed(s.to_string()))?;
    let knob = Knob::parse(k)?;
    Ok((knob, knob.parse_value(v)?))
}

/// Parses a comma-separated batch-size list.
pub fn parse_batch_list(s: &str) -> Result<Vec<u64>, SpaceError> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| Knob::BatchSize.parse_value(x))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn nano() -> (Board, Model) {
        let c = Catalog::load(None).unwrap();
        (
            c.board("nano").unwrap().clone(),
            c.model("yolov4-tiny").unwrap().clone(),
        )
    }

    #[test]
    fn full_space_has_the_papers_grid_size() {
        let (b, m) = nano();
        let s = Space::new(&b, &m, None, &[]).unwrap();
        assert_eq!(s.dims(), vec![15, 12, 5]);
        assert_eq!(s.size(), 900);
    }

    #[test]
    fn index_and_point_round_trip() {
        let (b, m) = nano();
        let s = Space::new(&b, &m, None, &[]).unwrap();
        for i in [0, 1, 59, 437, 899] {
            assert_eq!(s.index(&s.point(i)), i);
            let c = s.config(&s.point(i));
            assert_eq!(s.point_of(&c).unwrap(), s.point(i));
        }
        assert_eq!(s.points().count(), 900);
        let c = s.log_coords();
        assert_eq!((c[1][0], c[1][11]), (0.0, 1.0));
        assert!(
            (c[2][2] - 0.5).abs() < 1e-12,
            "batch 16 sits halfway between 4 and 64 in log"
        );
    }

    #[test]
    fn power_modes_are_evenly_spaced_names_and_mode_0_is_one() {
        let s = Space::from_axes(
            vec![
                Axis {
                    knob: Knob::BatchSize,
                    values: vec![1, 2, 4],
                },
                Axis {
                    knob: Knob::PowerMode,
                    values: vec![0, 3, 8],
                },
            ],
            Config::new(0, 0, 0),
        );
        assert_eq!(s.axes[0].knob, Knob::PowerMode);
        assert_eq!(s.log_coords()[0], [0.0, 0.5, 1.0]);
        let c = s.config(&[0, 2]);
        assert_eq!((c.power_mode, c.batch_size), (Some(0), 4));
        assert_eq!(c.to_string(), "power mode 0, batch 4");
        assert_eq!(Knob::parse("mode").unwrap(), Knob::PowerMode);
        assert_eq!(Knob::PowerMode.parse_value("0").unwrap(), 0);
    }

    #[test]
    fn fixes_and_batch_lists_narrow_the_space() {
        let (b, m) = nano();
        let fixes = [parse_fix("gpu=614.4MHz").unwrap()];
        let bs = parse_batch_list("8,4").unwrap();
        let s = Space::new(&b, &m, Some(&bs), &fixes).unwrap();
        assert_eq!(s.dims(), vec![15, 1, 2]);
        assert_eq!(s.axes[1].values, vec![614_400_000]);
        assert_eq!(s.axes[2].values, vec![4, 8]);
    }

    #[test]
    fn units_convert_to_sysfs_units() {
        assert_eq!(Knob::CpuFreqKhz.parse_value("1479000").unwrap(), 1_479_000);
        assert_eq!(Knob::CpuFreqKhz.parse_value("1.479GHz").unwrap(), 1_479_000);
        assert_eq!(Knob::CpuFreqKhz.parse_value("1479 MHz").unwrap(), 1_479_000);
        assert_eq!(
            Knob::GpuFreqHz.parse_value("921.6MHz").unwrap(),
            921_600_000
        );
        assert!(Knob::GpuFreqHz.parse_value("fast").is_err());
        assert!(Knob::BatchSize.parse_value("-3").is_err());
    }

    #[test]
    fn bad_values_are_refused_with_the_valid_ones() {
        let (b, m) = nano();
        let e = Space::new(&b, &m, None, &[parse_fix("gpu=600MHz").unwrap()]).unwrap_err();
        assert!(e.to_string().contains("921600000"), "{e}");
        let e = Space::new(&b, &m, Some(&[7]), &[]).unwrap_err();
        assert!(e.to_string().contains("4, 8, 16, 32, 64"), "{e}");
        let e = Space::new(&b, &m, Some(&[4]), &[(Knob::BatchSize, 8)]).unwrap_err();
        assert!(matches!(e, SpaceError::Empty(_)), "{e}");
        assert!(matches!(
            parse_fix("memory=3"),
            Err(SpaceError::UnknownKnob(_))
        ));
        assert!(matches!(parse_fix("gpu"), Err(SpaceError::Malformed(_))));
    }
}
