//! The `replay` backend: a device that answers from a recorded table, so anyone with a recorded
//! sweep can tune on it or compare strategies on it.
//!
//! Format (CSV with a header): one column per knob that varies (`cpu_freq_khz`, `gpu_freq_hz`,
//! `emc_freq_hz`, `cpu_cores`, `batch_size`), then `energy_j`, or `power_w` and `time_s`
//! (`time_s` is optional beside `energy_j`). Optional: `inferences` (what the row's energy is
//! for; it is scaled to the protocol's count), and `setting` = `dvfs` for rows measured under the
//! default governors (their clock cells empty). A row with `runs` and `cv` (as `edgetune sweep`
//! writes them) is the mean of that many runs: it replays as that many readings with its mean and
//! CV; `avg_power_w` is not read. Repeated rows of one configuration are repeated measurements,
//! each replayed once, so the protocol sees the real spread (one row is one run of unknown
//! spread). With a `power_mode` column the clock and core columns are each mode's caps; columns
//! edgetune does not read are named in a note. A combination of the knobs' values without a row
//! is a hole: a study records it as not measured, as it records a configuration its workload
//! failed at.

pub mod rig;
mod rows;

use rows::{fold_power_modes, readings};
pub use rows::{PowerMode, Row};

use crate::device::BaselineKind;
use crate::device::{Device, DeviceError, EnergyWindow, FreqSetting, VirtualMeter};
use crate::space::{Axis, Config, Knob, Space};
use crate::workload::{Meter, Workload, WorkloadRun};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// What can be wrong with a replay table.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("cannot read the replay table {path}: {message}")]
    Io {
        /// Table path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A bad cell or row.
    #[error("{path}:{line}: {message}")]
    Row {
        /// Table path.
        path: PathBuf,
        /// 1-based line in the file.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A problem with the table as a whole.
    #[error("{path}: {message}")]
    Table {
        /// Table path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Largest energy a row may hold, J (a terajoule: far beyond any run, far below overflow when
/// scaled to `--inferences`).
const MAX_ENERGY_J: f64 = 1e12;
/// Largest time a row may hold, s.
const MAX_TIME_S: f64 = 1e9;
/// Largest knob value: frequencies up to 10^15 (kHz or Hz), exactly representable.
const MAX_KNOB: f64 = 1e15;

/// Columns accepted besides the knobs.
const VALUE_COLUMNS: [&str; 9] = [
    "energy_j",
    "power_w",
    "time_s",
    "inferences",
    "setting",
    "avg_power_w",
    "cv",
    "runs",
    "mode_name",
];

/// A loaded and checked replay table.
#[derive(Debug, Clone)]
pub struct ReplayTable {
    /// Where it came from.
    pub path: PathBuf,
    /// The knobs its columns vary, in [`Knob::EVERY`] order.
    pub knobs: Vec<Knob>,
    /// Runs per configuration (key: the knob values in `knobs` order).
    pub rows: HashMap<Vec<u64>, Vec<Row>>,
    /// Runs under the default governors, by batch size (0 when the table has no batch column).
    pub dvfs: HashMap<u64, Vec<Row>>,
    /// The search space the table defines.
    pub space: Space,
    /// Combinations of the knobs' values without a row.
    pub holes: usize,
    /// Its power modes by id, where it has a `power_mode` column.
    pub modes: BTreeMap<u64, PowerMode>,
    /// Columns it has that edgetune does not read (for information, such as a throughput).
    pub ignored: Vec<String>,
}

fn io_err(path: &Path, message: String) -> ReplayError {
    ReplayError::Io {
        path: path.to_path_buf(),
        message,
    }
}

fn row_err(path: &Path, line: u64, message: String) -> ReplayError {
    ReplayError::Row {
        path: path.to_path_buf(),
        line,
        message,
    }
}

fn table_err(path: &Path, message: String) -> ReplayError {
    ReplayError::Table {
        path: path.to_path_buf(),
        message,
    }
}

/// Where a table's columns are.
struct Columns {
    headers: Vec<String>,
    /// Columns read for nothing.
    ignored: Vec<String>,
    mode_name: Option<usize>,
    /// Knob columns, in [`Knob::EVERY`] order.
    knobs: Vec<(Knob, usize)>,
    energy: EnergyColumns,
    time: Option<usize>,
    inferences: Option<usize>,
    setting: Option<usize>,
    /// `runs` and `cv` (as `edgetune sweep` writes them): a row that is the mean of its runs.
    summary: Option<(usize, usize)>,
}

/// Where a row's energy comes from.
enum EnergyColumns {
    Energy(usize),
    PowerTimesTime(usize, usize),
}

/// One row of a table: a run under the default governors, or at a configuration.
enum Recorded {
    Dvfs {
        batch: u64,
        rows: Vec<Row>,
    },
    Pinned {
        key: Vec<u64>,
        rows: Vec<Row>,
        mode_name: Option<String>,
    },
}

impl Columns {
    /// Checks the header line: known columns, a knob, and energy (or power and time).
    fn of(path: &Path, headers: Vec<String>) -> Result<Columns, ReplayError> {
        let knob_names = || Knob::EVERY.map(|k| k.name()).join(", ");
        // Other columns (a throughput, a latency) are the recorder's information: read for
        // nothing, and named in a note and in the errors below.
        let ignored: Vec<String> = headers
            .iter()
            .filter(|h| Knob::from_column(h).is_none() && !VALUE_COLUMNS.contains(&h.as_str()))
            .cloned()
            .collect();
        let besides = || match ignored.len() {
            0 => String::new(),
            _ => format!(
                " (knob columns: {}; value columns: {}; not read: {})",
                knob_names(),
                VALUE_COLUMNS.join(", "),
                ignored.join(", ")
            ),
        };
        if let Some((_, h)) = headers
            .iter()
            .enumerate()
            .find(|(i, h)| headers[..*i].contains(h))
        {
            return Err(row_err(path, 1, format!("column `{h}` appears twice")));
        }
        let col = |name: &str| headers.iter().position(|h| h == name);
        let knobs: Vec<(Knob, usize)> = Knob::EVERY
            .into_iter()
            .filter_map(|k| col(k.name()).map(|i| (k, i)))
            .collect();
        if knobs.is_empty() {
            let message = format!(
                "no knob column; name at least one of {}{}",
                knob_names(),
                besides()
            );
            return Err(row_err(path, 1, message));
        }
        let time = col("time_s");
        let energy = match (col("energy_j"), col("power_w"), time) {
            (Some(e), _, _) => EnergyColumns::Energy(e),
            (None, Some(p), Some(t)) => EnergyColumns::PowerTimesTime(p, t),
            _ => {
                return Err(row_err(
                    path,
                    1,
                    format!(
                        "missing columns: give `energy_j`, or `power_w` and `time_s`{}",
                        besides()
                    ),
                ))
            }
        };
        Ok(Columns {
            summary: col("runs").zip(col("cv")),
            mode_name: col("mode_name"),
            ignored,
            inferences: col("inferences"),
            setting: col("setting"),
            headers,
            knobs,
            energy,
            time,
        })
    }

    /// A row's `runs` and `cv`, where it says it is the mean of its runs.
    fn summary_of(&self, rec: &csv::StringRecord) -> Result<Option<(usize, f64)>, String> {
        let Some((r, c)) = self.summary else {
            return Ok(None);
        };
        let (r, c) = (rec.get(r).unwrap_or(""), rec.get(c).unwrap_or(""));
        if r.is_empty() || c.is_empty() {
            return Ok(None);
        }
        match (r.parse::<f64>(), c.parse::<f64>()) {
            (Ok(runs), Ok(cv))
                if runs >= 1.0 && runs.fract() == 0.0 && runs <= 1000.0 && (0.0..0.5).contains(&cv) =>
            {
                Ok(Some((runs as usize, cv)))
            }
            _ => Err(format!(
                "columns `runs` and `cv`: `{r}` runs at CV `{c}`; runs is a whole number from 1 to 1000 and cv a fraction below 0.5"
            )),
        }
    }

    /// Reads one record.
    fn record(&self, path: &Path, rec: &csv::StringRecord) -> Result<Recorded, ReplayError> {
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let err = |message: String| row_err(path, line, message);
        if rec.len() > self.headers.len() {
            return Err(err(format!(
                "{} cells, but the header names {} columns",
                rec.len(),
                self.headers.len()
            )));
        }
        let cell = |i: usize| rec.get(i).unwrap_or("");
        let number = |i: usize| -> Result<f64, ReplayError> {
            cell(i)
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    err(format!(
                        "column `{}`: `{}` is not a number",
                        self.headers[i],
                        cell(i)
                    ))
                })
        };
        let is_dvfs = match self.setting.map(cell).unwrap_or("") {
            "" | "pinned" => false,
            "dvfs" => true,
            other => {
                return Err(err(format!(
                    "column `setting`: `{other}` is neither `pinned` nor `dvfs`"
                )))
            }
        };
        let energy_j = match self.energy {
            EnergyColumns::Energy(i) => number(i)?,
            EnergyColumns::PowerTimesTime(p, t) => number(p)? * number(t)?,
        };
        if !(energy_j > 0.0 && energy_j <= MAX_ENERGY_J) {
            return Err(err(format!(
                "energy must be positive and at most {MAX_ENERGY_J} J, got {energy_j} J"
            )));
        }
        let time_s = match self.time {
            Some(i) if !cell(i).is_empty() => Some(number(i)?).filter(|t| *t > 0.0),
            _ => None,
        };
        if time_s.is_some_and(|t| t > MAX_TIME_S) {
            return Err(err(format!("time must be at most {MAX_TIME_S} s")));
        }
        let inferences = match self.inferences {
            Some(i) if !cell(i).is_empty() => {
                let n = number(i)?;
                if n < 1.0 || n.fract() != 0.0 || n > u32::MAX as f64 {
                    return Err(err(format!(
                        "column `inferences`: `{}` is not a whole number from 1 to 4294967295",
                        cell(i)
                    )));
                }
                Some(n as u32)
            }
            _ => None,
        };
        let row = Row {
            energy_j,
            time_s,
            inferences,
        };
        let rows = readings(row, self.summary_of(rec).map_err(err)?);
        let value = |i: usize| -> Result<u64, ReplayError> {
            let knob = Knob::from_column(&self.headers[i]).expect("a knob column");
            knob_value(number(i)?, knob, path, line)
        };
        if is_dvfs {
            let batch = match self.knobs.iter().find(|(k, _)| *k == Knob::BatchSize) {
                Some((_, i)) => value(*i)?,
                None => 0,
            };
            return Ok(Recorded::Dvfs { batch, rows });
        }
        let key = self
            .knobs
            .iter()
            .map(|(_, i)| value(*i))
            .collect::<Result<Vec<u64>, _>>()?;
        let mode_name = self
            .mode_name
            .map(|i| cell(i).to_string())
            .filter(|n| !n.is_empty());
        Ok(Recorded::Pinned {
            key,
            rows,
            mode_name,
        })
    }
}

/// The space a table's rows define: every knob column with two values or more is an axis (a
/// column with one value is a fixed knob, as in a single-batch sweep); combinations without a
/// row are holes, which a study treats as configurations the workload failed at. At least half
/// of the combinations must be there. Returns the space and the number of holes.
fn grid_space(
    path: &Path,
    knobs: &[Knob],
    rows: &HashMap<Vec<u64>, Vec<Row>>,
    mut base: Config,
) -> Result<(Space, usize), ReplayError> {
    if rows.is_empty() {
        return Err(table_err(path, "no measured rows".into()));
    }
    let mut axes = Vec::new();
    for (j, k) in knobs.iter().enumerate() {
        let values: Vec<u64> = rows
            .keys()
            .map(|key| key[j])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match values.len() {
            1 => base.set(*k, values[0]),
            _ => axes.push(Axis { knob: *k, values }),
        }
    }
    if axes.is_empty() {
        return Err(table_err(
            path,
            "every knob column has one value only: the table holds one configuration, so there is nothing to search".into(),
        ));
    }
    let space = Space::from_axes(axes, base);
    let total = space.size();
    let holes = total - rows.len().min(total);
    if 2 * holes > total {
        let missing = space
            .points()
            .map(|p| space.config(&p))
            .find(|c| !rows.contains_key(&key_of(knobs, c)))
            .expect("holes were counted");
        return Err(table_err(path, format!(
            "the table is mostly holes: {holes} of {total} combinations of its knob values have no row, for example {}; add rows for them or narrow the table",
            knobs
                .iter()
                .map(|k| format!("{k}={}", missing.get(*k).unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((space, holes))
}

impl ReplayTable {
    /// Whether every row has a time (a `time_s` column, filled in).
    pub fn has_times(&self) -> bool {
        self.rows
            .values()
            .chain(self.dvfs.values())
            .flatten()
            .all(|r| r.time_s.is_some())
    }

    /// Loads a table. A knob without a column is not a knob of the table: its configurations
    /// leave it at 0, which every output leaves out (see [`Config`]).
    pub fn load(path: &Path) -> Result<ReplayTable, ReplayError> {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            // Rows may leave trailing optional cells (such as `setting`) out.
            .flexible(true)
            .from_path(path)
            .map_err(|e| io_err(path, e.to_string()))?;
        let headers: Vec<String> = rdr
            .headers()
            .map_err(|e| io_err(path, e.to_string()))?
            .iter()
            .map(|h| h.to_string())
            .collect();
        let cols = Columns::of(path, headers)?;
        let mut rows: HashMap<Vec<u64>, Vec<Row>> = HashMap::new();
        let mut dvfs: HashMap<u64, Vec<Row>> = HashMap::new();
        let mut names: Vec<(Vec<u64>, Option<String>)> = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                row_err(path, line, e.to_string())
            })?;
            match cols.record(path, &rec)? {
                Recorded::Dvfs { batch, rows: r } => dvfs.entry(batch).or_default().extend(r),
                Recorded::Pinned {
                    key,
                    rows: r,
                    mode_name,
                } => {
                    names.push((key.clone(), mode_name));
                    rows.entry(key).or_default().extend(r)
                }
            }
        }
        let knobs: Vec<Knob> = cols.knobs.iter().map(|(k, _)| *k).collect();
        let (knobs, rows, modes) =
            fold_power_modes(knobs, rows, &names).map_err(|m| table_err(path, m))?;
        let (space, holes) = grid_space(path, &knobs, &rows, Config::new(0, 0, 0))?;
        Ok(ReplayTable {
            path: path.to_path_buf(),
            knobs,
            rows,
            dvfs,
            space,
            holes,
            modes,
            ignored: cols.ignored,
        })
    }

    /// Mean energy of each configuration's rows, for `inferences` inferences, in the space's
    /// flat-index order (the table's ground truth; infinite at a hole).
    pub fn mean_energies(&self, inferences: u32) -> Vec<f64> {
        self.mean_energy_time(inferences)
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }

    /// Mean energy and time (0 where the table has none) of each configuration's rows; a hole
    /// has infinite energy and no time.
    pub fn mean_energy_time(&self, inferences: u32) -> Vec<(f64, f64)> {
        self.space
            .points()
            .map(|p| {
                let c = self.space.config(&p);
                let Some(rows) = self.rows.get(&key_of(&self.knobs, &c)) else {
                    return (f64::INFINITY, 0.0);
                };
                let n = rows.len() as f64;
                let (e, t) = rows.iter().fold((0.0, 0.0), |(e, t), r| {
                    let (re, rt) = scaled(r, inferences);
                    (e + re, t + rt)
                });
                (e / n, t / n)
            })
            .collect()
    }
}

fn knob_value(v: f64, knob: Knob, path: &Path, line: u64) -> Result<u64, ReplayError> {
    // Batch sizes and core counts are 32-bit; frequencies are capped where f64 is still exact.
    let max = match knob {
        Knob::BatchSize | Knob::CpuCores | Knob::PowerMode => u32::MAX as f64,
        _ => MAX_KNOB,
    };
    // A power mode's id may be 0; every other knob is positive.
    let min = if knob == Knob::PowerMode { 0.0 } else { 1.0 };
    if v >= min && v.fract() == 0.0 && v <= max {
        Ok(v as u64)
    } else {
        Err(row_err(
            path,
            line,
            format!("column `{knob}`: {v} is not a whole number from {min} to {max}"),
        ))
    }
}

fn key_of(knobs: &[Knob], c: &Config) -> Vec<u64> {
    knobs.iter().map(|k| c.get(*k).unwrap_or(0)).collect()
}

/// A row's energy and time for `inferences` inferences.
fn scaled(r: &Row, inferences: u32) -> (f64, f64) {
    let f = r.inferences.map_or(1.0, |n| inferences as f64 / n as f64);
    (r.energy_j * f, r.time_s.unwrap_or(0.0) * f)
}

struct State {
    setting: FreqSetting,
    meter: VirtualMeter,
    next_row: HashMap<(Vec<u64>, bool), usize>,
}

/// The table as a board shared by the replay device and workload.
#[derive(Clone)]
pub struct ReplayBoard {
    table: Arc<ReplayTable>,
    state: Arc<Mutex<State>>,
}

impl ReplayBoard {
    /// A board answering from `table`.
    pub fn new(table: ReplayTable) -> ReplayBoard {
        ReplayBoard {
            table: Arc::new(table),
            state: Arc::new(Mutex::new(State {
                setting: FreqSetting::Dvfs,
                meter: VirtualMeter::default(),
                next_row: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device handle.
    pub fn device(&self) -> ReplayDevice {
        ReplayDevice {
            board: self.clone(),
        }
    }

    /// The workload handle.
    pub fn workload(&self, model: &str) -> ReplayWorkload {
        ReplayWorkload {
            board: self.clone(),
            model: model.to_string(),
        }
    }

    /// The config the table's max-clock corner stands for at a batch size.
    fn max_corner(&self, batch: u32) -> Config {
        let s = &self.table.space;
        let mut p: Vec<usize> = s.dims().iter().map(|d| d - 1).collect();
        if let Some(i) = s.axes.iter().position(|a| a.knob == Knob::BatchSize) {
            p[i] = s.axes[i]
                .values
                .iter()
                .position(|v| *v == batch as u64)
                .unwrap_or(0);
        }
        s.config(&p)
    }

    /// Rows for a setting at a batch size, and whether they are read as the baseline's.
    fn rows_for(
        &self,
        setting: &FreqSetting,
        batch: u32,
    ) -> Result<(Vec<u64>, bool, &[Row]), DeviceError> {
        let t = &self.table;
        if *setting == FreqSetting::Dvfs {
            let b = if t.knobs.contains(&Knob::BatchSize) {
                batch as u64
            } else {
                0
            };
            if let Some(r) = t.dvfs.get(&b) {
                return Ok((vec![b], true, r));
            }
            let c = self.max_corner(batch);
            let key = key_of(&t.knobs, &c);
            // The corner's rows as the baseline's: read in a stream of their own, so measuring
            // the corner itself later replays them again.
            return t
                .rows
                .get(&key)
                .map(|r| (key, true, r.as_slice()))
                .ok_or_else(|| {
                    DeviceError::NotRecorded(format!(
                        "{}: no DVFS rows and no row at the all-max corner at batch {batch}",
                        t.path.display()
                    ))
                });
        }
        let FreqSetting::Pinned {
            cpu_freq_khz,
            gpu_freq_hz,
            emc_freq_hz,
            cpu_cores,
            power_mode,
        } = *setting
        else {
            unreachable!("Dvfs handled above")
        };
        let c = Config {
            cpu_freq_khz,
            gpu_freq_hz,
            batch_size: batch,
            emc_freq_hz,
            cpu_cores,
            power_mode,
        };
        let key = key_of(&t.knobs, &c);
        t.rows
            .get(&key)
            .map(|r| (key, false, r.as_slice()))
            .ok_or_else(|| {
                DeviceError::NotRecorded(format!(
                    "{} has no row for {c} (a hole in the table)",
                    t.path.display()
                ))
            })
    }
}

/// The table as a device.
pub struct ReplayDevice {
    board: ReplayBoard,
}

impl Device for ReplayDevice {
    fn backend(&self) -> crate::device::BackendKind {
        crate::device::BackendKind::Replay
    }
    fn apply(&mut self, setting: &FreqSetting) -> Result<(), DeviceError> {
        self.board.lock().setting = *setting;
        Ok(())
    }
    fn window_begin(&mut self) -> Result<(), DeviceError> {
        self.board.lock().meter.begin();
        Ok(())
    }
    fn window_end(&mut self) -> Result<EnergyWindow, DeviceError> {
        self.board.lock().meter.end()
    }
    fn restore(&mut self) -> Result<(), DeviceError> {
        self.board.lock().setting = FreqSetting::Dvfs;
        Ok(())
    }
    fn idle(&mut self, _time_s: f64) -> Result<(), DeviceError> {
        Err(DeviceError::Unsupported(
            "a recorded table has no idle power readings".into(),
        ))
    }
    fn baseline_kind(&self) -> BaselineKind {
        if self.board.table.dvfs.is_empty() {
            match self.board.table.modes.is_empty() {
                true => BaselineKind::MaxClocks,
                false => BaselineKind::HighestMode,
            }
        } else {
            BaselineKind::Dvfs
        }
    }
}

/// Runs "inferences" by replaying the table's rows in turn.
pub struct ReplayWorkload {
    board: ReplayBoard,
    model: String,
}

impl Workload for ReplayWorkload {
    fn name(&self) -> String {
        self.model.clone()
    }
    fn run(
        &mut self,
        batch_size: u32,
        inferences: u32,
        meter: &mut dyn Meter,
    ) -> Result<WorkloadRun, DeviceError> {
        let setting = self.board.lock().setting;
        let (key, is_dvfs, rows) = self.board.rows_for(&setting, batch_size)?;
        let mut s = self.board.lock();
        let k = s.next_row.entry((key, is_dvfs)).or_insert(0);
        // Each recorded row is one reading: once every row was replayed there is no more.
        let Some(row) = rows.get(*k).copied() else {
            return Err(DeviceError::NoMoreReadings);
        };
        *k += 1;
        let (e, t) = scaled(&row, inferences);
        drop(s);
        meter.begin()?;
        self.board.lock().meter.advance(t, e);
        meter.end()?;
        Ok(WorkloadRun { time_s: Some(t) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{measure, ProtocolSettings};

    fn write(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("t.csv");
        std::fs::write(&p, body).unwrap();
        p
    }

    fn grid_csv() -> String {
        let mut s = String::from("gpu_freq_hz,batch_size,energy_j,time_s\n");
        for (g, b, e) in [(1, 4, 10.0), (1, 8, 8.0), (2, 4, 12.0), (2, 8, 7.0)] {
            s += &format!("{g}00000000,{b},{e},2.0\n");
        }
        // A repeated row: a second measurement of one configuration.
        s += "200000000,8,7.4,2.0\n";
        s
    }

    #[test]
    fn a_full_grid_defines_the_space_and_replays_each_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let t = ReplayTable::load(&write(dir.path(), &grid_csv())).unwrap();
        assert_eq!(t.knobs, vec![Knob::GpuFreqHz, Knob::BatchSize]);
        assert_eq!(t.space.dims(), vec![2, 2]);
        // The CPU is not a knob of the table: it is left at 0, out of every output.
        assert_eq!(t.space.config(&[1, 1]).cpu_freq_khz, 0);
        let m = t.mean_energies(3200);
        assert!((m[3] - 7.2).abs() < 1e-9, "{m:?}");
        let board = ReplayBoard::new(t);
        let (mut d, mut w) = (board.device(), board.workload("m"));
        let c = Config::new(0, 200_000_000, 8);
        let s = ProtocolSettings {
            warmup_inferences: 0,
            min_runs: 4,
            ..Default::default()
        };
        let r = measure(&mut d, &mut w, &c.setting(), 8, &s).unwrap();
        let e: Vec<f64> = r.runs.iter().map(|x| x.energy_j).collect();
        // Two recorded readings are two runs, not four made of repeats; short of the protocol's
        // four, the measurement does not count as converged.
        assert_eq!(e, vec![7.0, 7.4]);
        assert!(r.cv > 0.0 && !r.converged);
        // A single reading is one run of unknown spread.
        let one = measure(
            &mut d,
            &mut w,
            &Config::new(0, 100_000_000, 4).setting(),
            4,
            &s,
        )
        .unwrap();
        assert_eq!(one.runs.len(), 1);
        assert_eq!(d.baseline_kind(), BaselineKind::MaxClocks);
    }

    #[test]
    fn holes_and_one_value_columns_are_a_smaller_table_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // cpu_cores has one value (a fixed knob); GPU 2 at batch 8 has no row (a hole).
        let body = "cpu_cores,gpu_freq_hz,batch_size,energy_j\n4,100000000,4,10\n4,100000000,8,8\n4,200000000,4,12\n";
        let t = ReplayTable::load(&write(dir.path(), body)).unwrap();
        assert_eq!(t.space.dims(), vec![2, 2]);
        assert_eq!(t.holes, 1);
        assert_eq!(t.space.config(&[0, 0]).cpu_cores, Some(4));
        let m = t.mean_energies(3200);
        assert!(m[3].is_infinite(), "{m:?}");
        let board = ReplayBoard::new(t);
        let (mut d, mut w) = (board.device(), board.workload("m"));
        let mut hole = Config::new(0, 200_000_000, 8);
        hole.cpu_cores = Some(4);
        let e = measure(
            &mut d,
            &mut w,
            &hole.setting(),
            8,
            &ProtocolSettings::default(),
        );
        assert!(matches!(e, Err(DeviceError::NotRecorded(_))), "{e:?}");
    }

    #[test]
    fn power_and_time_give_energy_and_inferences_scale_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "cpu_freq_khz,power_w,time_s,inferences\n102000,2.0,10.0,320\n204000,3.0,5.0,320\n",
        );
        let t = ReplayTable::load(&p).unwrap();
        let m = t.mean_energies(3200);
        assert_eq!(m, vec![200.0, 150.0]);
    }

    #[test]
    fn dvfs_rows_are_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let body = grid_csv().replace("energy_j,time_s\n", "energy_j,time_s,setting\n")
            + ",4,11.0,2.0,dvfs\n,8,9.0,2.0,dvfs\n";
        let t = ReplayTable::load(&write(dir.path(), &body)).unwrap();
        let board = ReplayBoard::new(t);
        let (mut d, mut w) = (board.device(), board.workload("m"));
        assert_eq!(d.baseline_kind(), BaselineKind::Dvfs);
        let s = ProtocolSettings {
            warmup_inferences: 0,
            ..Default::default()
        };
        let r = measure(&mut d, &mut w, &FreqSetting::Dvfs, 8, &s).unwrap();
        assert!((r.energy_j - 9.0).abs() < 1e-9);
    }

    #[test]
    fn bad_tables_are_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &str); 10] = [
            ("gpu_freq_hz,batch_size\n1,4\n", "missing columns"),
            (
                "gpu_freq_hz,batch_size,energy\n1,4,2\n",
                "missing columns: give `energy_j`, or `power_w` and `time_s` (knob columns",
            ),
            ("gpu_freq,energy_j\n1,2\n", "no knob column; name at least one of cpu_freq_khz"),
            (
                "power_mode,gpu_freq_hz,batch_size,energy_j\n0,100,1,1.0\n0,200,2,1.0\n1,100,1,1.0\n",
                "power mode 0 has rows with different caps",
            ),
            (
                "gpu_freq_hz,energy_j\n100,1.0\n200,fast\n",
                ":3: column `energy_j`: `fast` is not a number",
            ),
            (
                "gpu_freq_hz,energy_j\n100,1.0\n200,-3\n",
                ":3: energy must be positive",
            ),
            (
                "gpu_freq_hz,energy_j\n100,1.0\n200,0\n",
                ":3: energy must be positive",
            ),
            (
                "gpu_freq_hz,batch_size,energy_j\n100,4,1.0\n",
                "every knob column has one value only",
            ),
            (
                "gpu_freq_hz,batch_size,energy_j\n100,4,1.0\n200,8,2.0\n300,12,2.0\n",
                "mostly holes: 6 of 9",
            ),
            (
                "gpu_freq_hz,energy_j\n100.5,1.0\n200,2\n",
                ":2: column `gpu_freq_hz`",
            ),
        ];
        for (body, want) in cases {
            let e = ReplayTable::load(&write(dir.path(), body))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{body:?}: {e}");
        }
        let e = ReplayTable::load(&dir.path().join("none.csv")).unwrap_err();
        assert!(matches!(e, ReplayError::Io { .. }));
    }

    #[test]
    fn a_row_of_a_mean_of_runs_replays_as_that_many_readings_with_its_cv() {
        let row = Row {
            energy_j: 500.0,
            time_s: Some(80.0),
            inferences: None,
        };
        for k in [2, 3, 5] {
            let r = readings(row, Some((k, 0.02)));
            let e: Vec<f64> = r.iter().map(|x| x.energy_j).collect();
            assert_eq!(e.len(), k);
            assert!((crate::measure::stats::mean(&e) - 500.0).abs() < 1e-9);
            assert!(
                (crate::measure::stats::cv(&e) - 0.02).abs() < 1e-12,
                "{e:?}"
            );
        }
        assert_eq!(readings(row, Some((1, 0.0))), [row]);
        assert_eq!(readings(row, None), [row]);
    }

    #[test]
    fn a_power_mode_column_makes_the_clock_columns_its_caps() {
        let dir = tempfile::tempdir().unwrap();
        let body =
            "power_mode,cpu_cores,gpu_freq_hz,batch_size,energy_j,throughput_ips,mode_name\n\
                    0,2,1109250000,1,0.5,20,MODE_15W_2CORE\n\
                    0,2,1109250000,8,0.3,35,MODE_15W_2CORE\n\
                    3,2,803250000,1,0.4,19,MODE_10W_2CORE\n\
                    3,2,803250000,8,0.25,30,MODE_10W_2CORE\n";
        let t = ReplayTable::load(&write(dir.path(), body)).unwrap();
        // Two modes (0 among them) x two batch sizes: a full grid, not 2 x 2 x 2 x 2 with holes.
        assert_eq!(t.knobs, [Knob::PowerMode, Knob::BatchSize]);
        assert_eq!(t.space.size(), 4);
        assert_eq!(t.holes, 0);
        assert_eq!(t.ignored, ["throughput_ips"]);
        let m3 = &t.modes[&3];
        assert_eq!(m3.name.as_deref(), Some("MODE_10W_2CORE"));
        assert_eq!(
            (m3.caps.gpu_freq_hz, m3.caps.cpu_cores),
            (803_250_000, Some(2))
        );
        // A mode and a batch size replay their row; the baseline is the highest mode.
        let b = ReplayBoard::new(t);
        let (mut d, mut w) = (b.device(), b.workload("m"));
        let mut c = Config::new(0, 0, 8);
        c.power_mode = Some(0);
        let s = ProtocolSettings {
            warmup_inferences: 0,
            ..Default::default()
        };
        let m = measure(&mut d, &mut w, &c.setting(), 8, &s).unwrap();
        assert!((m.energy_j - 0.3).abs() < 1e-12);
        let m = measure(&mut d, &mut w, &FreqSetting::Dvfs, 8, &s).unwrap();
        assert!((m.energy_j - 0.25).abs() < 1e-12);
        assert_eq!(d.baseline_kind(), BaselineKind::HighestMode);
    }
}
