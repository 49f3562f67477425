//! The journal: one JSON line per finished measurement, appended, flushed and synced before the
//! next starts; a study resumes from it without re-measuring.

use crate::measure::{Measurement, ProtocolSettings};
use crate::objective::Goal;
use crate::opt::Opt;
use crate::space::{Config, Space};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Problems with a journal given to `--resume`.
#[derive(Debug, Error)]
pub enum JournalError {
    /// No journal where one was expected.
    #[error("no journal at {0}; {flag} takes the output folder of an earlier tune", flag = Opt::Resume)]
    Missing(PathBuf),
    /// A line that is not a journal record.
    #[error("{file}:{line}: not a journal record: {message}")]
    Corrupt {
        /// Journal path.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// Parser message.
        message: String,
    },
    /// The journal belongs to a different study.
    #[error("the records in {file} are for a different study: {field} is {journal} there but {now} now; rerun without {resume} or with the same options", resume = Opt::Resume)]
    Mismatch {
        /// Journal path.
        file: PathBuf,
        /// Field that differs.
        field: String,
        /// Value in the journal.
        journal: String,
        /// Value asked for now.
        now: String,
    },
    /// A journal is already there (a fresh study never overwrites one).
    #[error("{} already holds a study's journal; continue it with {} {}, or choose another {}", .0.display(), Opt::Resume, .0.parent().map_or(String::new(), |d| d.display().to_string()), Opt::Out)]
    Exists(PathBuf),
    /// Reading or writing failed.
    #[error("journal {file}: {source}")]
    Io {
        /// Journal path.
        file: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// What identifies a study: a resume must match it in everything but the budget (a larger budget
/// continues the same study).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyHeader {
    /// Model id.
    pub model: String,
    /// Board id.
    pub device: String,
    /// Backend.
    pub backend: crate::device::BackendKind,
    /// Strategy name.
    pub strategy: String,
    /// Seed.
    pub seed: u64,
    /// Measurement budget.
    pub budget: usize,
    /// Batch size of the DVFS baseline.
    pub baseline_batch: u32,
    /// Protocol settings.
    pub protocol: ProtocolSettings,
    /// The search space.
    pub space: Space,
    /// Objective and constraints (absent in journals of plain energy studies).
    #[serde(default, skip_serializing_if = "Goal::is_plain")]
    pub goal: Goal,
    /// The search's prior, in words (absent: none).
    #[serde(default, skip_serializing_if = "prior_is_none")]
    pub prior: String,
    /// An earlier study's prior, as the search got it (`--prior DIR`): stored with the study,
    /// so a worker or a resume takes it from here, never from a folder a header names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_grid: Option<crate::strategy::GridPrior>,
    /// Racing and screening (absent: neither, as before they existed).
    #[serde(default, skip_serializing_if = "is_plain_exploration")]
    pub exploration: super::budget::Exploration,
    /// The `tune` arguments that started the study (without `--out`, `--resume`, `--json`,
    /// `--quiet`): `--resume DIR` alone takes them from here. Absent in older journals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// The header of the journal in `dir`, read from its first line alone (`None` when there is
/// no journal to read); a first line that is not a header is refused.
pub fn recorded_header(dir: &Path) -> Result<Option<StudyHeader>, JournalError> {
    use std::io::BufRead;
    let path = dir.join("journal.jsonl");
    let Ok(file) = File::open(&path) else {
        return Ok(None);
    };
    let first = std::io::BufReader::new(file).lines().next();
    let first = first.and_then(Result::ok).unwrap_or_default();
    match serde_json::from_str::<JournalRecord>(&first) {
        Ok(JournalRecord::Study(h)) => Ok(Some(h)),
        _ => Err(JournalError::Corrupt {
            file: path,
            line: 1,
            message: "no study header: the first line of a journal says what the study is, and this one does not, so it cannot be resumed".into(),
        }),
    }
}

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JournalRecord {
    /// First line: what the study is.
    Study(StudyHeader),
    /// A DVFS baseline measurement.
    Baseline {
        /// The measurement.
        measurement: Measurement,
    },
    /// A measured configuration.
    Measurement {
        /// The configuration.
        config: Config,
        /// The measurement.
        measurement: Measurement,
    },
    /// The recommendation measured again at the full protocol: it replaces the configuration's
    /// earlier (raced or screened) measurement.
    Confirmed {
        /// The configuration.
        config: Config,
        /// The full measurement.
        measurement: Measurement,
    },
    /// One board's full-length runs of a measured configuration towards its confirmation in a
    /// fleet: the runs of every board's shares are pooled after the boards' offsets, and the
    /// pool is the confirmation once it meets the protocol ([`super::pool`]).
    Share {
        /// The configuration.
        config: Config,
        /// This board's runs, at the full protocol's length.
        measurement: Measurement,
    },
    /// A configuration at which the workload failed (tried again when the study resumes).
    Failed {
        /// The configuration.
        config: Config,
        /// What went wrong, with the workload's last stderr lines.
        error: String,
    },
}

/// An append-only journal, flushed and synced after each line.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Creates a journal that does not exist yet and writes its header; an existing one is
    /// never truncated ([`JournalError::Exists`]).
    pub fn create(path: &Path, header: &StudyHeader) -> Result<Journal, JournalError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => JournalError::Exists(path.to_path_buf()),
                _ => JournalError::Io {
                    file: path.to_path_buf(),
                    source,
                },
            })?;
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
        };
        j.append(&JournalRecord::Study(header.clone()))?;
        Ok(j)
    }

    /// Opens a journal for appending after checking that it belongs to `header`'s study and
    /// reading what it holds. A torn last line (a crash mid-write) is cut off, with a warning
    /// in the prior; a last line without its newline gets one, so the next record starts on a
    /// line of its own.
    pub fn resume(path: &Path, header: &StudyHeader) -> Result<(Journal, Prior), JournalError> {
        let prior = Prior::read(path, header)?;
        let io = |source| JournalError::Io {
            file: path.to_path_buf(),
            source,
        };
        let mut file =
            crate::files::open_own(OpenOptions::new().read(true).write(true), path).map_err(io)?;
        file.set_len(prior.valid_len).map_err(io)?;
        file.seek(SeekFrom::End(0)).map_err(io)?;
        if prior.needs_newline {
            file.write_all(b"\n").map_err(io)?;
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            prior,
        ))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and makes it durable before returning.
    pub fn append(&mut self, r: &JournalRecord) -> Result<(), JournalError> {
        let io = |source| JournalError::Io {
            file: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(r).expect("journal records serialise");
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Measurements recovered from a journal.
#[derive(Debug, Clone, Default)]
pub struct Prior {
    /// DVFS baselines by batch size.
    pub baselines: HashMap<u32, Measurement>,
    /// Configurations measured, as first measured (a screened figure stays screened: a resume
    /// tells the strategy what the first run told it, so it asks what it asked then).
    pub measurements: HashMap<Config, Measurement>,
    /// Configurations in the order they were first measured.
    pub order: Vec<Config>,
    /// The last confirmation of each confirmed configuration, at the full protocol.
    pub confirmed: HashMap<Config, Measurement>,
    /// What the user should know about the journal (a torn last line that was dropped).
    pub warnings: Vec<String>,
    /// Bytes of the journal that hold whole records.
    valid_len: u64,
    /// Whether the last whole record lacks its newline.
    needs_newline: bool,
}

impl Prior {
    /// Reads a journal and checks its header against `header` and every record as input.
    pub fn read(path: &Path, header: &StudyHeader) -> Result<Prior, JournalError> {
        let mut text = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut text))
            .map_err(|_| JournalError::Missing(path.to_path_buf()))?;
        Prior::parse(&text, path, header)
    }

    /// Reads a journal's bytes (`path` names it in errors).
    pub fn parse(text: &[u8], path: &Path, header: &StudyHeader) -> Result<Prior, JournalError> {
        let corrupt = |line: usize, message: String| JournalError::Corrupt {
            file: path.to_path_buf(),
            line,
            message,
        };
        let mut prior = Prior::default();
        let mut offset = 0usize;
        let mut seen_header = false;
        let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        for (i, raw) in lines.iter().enumerate() {
            let n = i + 1;
            let complete = raw.ends_with(b"\n");
            let parsed = std::str::from_utf8(raw)
                .map_err(|e| e.to_string())
                .and_then(|l| match l.trim() {
                    "" => Ok(None),
                    l => serde_json::from_str::<JournalRecord>(l)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                });
            let rec = match parsed {
                Ok(r) => r,
                // What a kill in the middle of a write leaves: drop it, say so.
                Err(e) if !complete && i + 1 == lines.len() && seen_header => {
                    prior.warnings.push(format!(
                        "{}:{n}: the last line is cut short (a run killed while writing it?); it is dropped: {e}",
                        path.display()
                    ));
                    break;
                }
                Err(e) => return Err(corrupt(n, e)),
            };
            offset += raw.len();
            prior.needs_newline = !complete;
            let Some(rec) = rec else { continue };
            match (rec, seen_header) {
                (JournalRecord::Study(h), false) => {
                    check_study(&h).map_err(|m| corrupt(n, m))?;
                    check_header(path, &h, header)?;
                    seen_header = true;
                }
                (_, false) => {
                    return Err(corrupt(
                        n,
                        "the study header must be the first line; this journal has none before its records".into(),
                    ))
                }
                (rec, true) => prior.add(rec, header).map_err(|m| corrupt(n, m))?,
            }
        }
        if !seen_header {
            return Err(corrupt(
                1,
                "no study header: this is not an edgetune journal".into(),
            ));
        }
        prior.valid_len = offset as u64;
        prior.needs_newline &= offset > 0;
        Ok(prior)
    }

    /// The measurements of a study kept elsewhere (a database): `stored` is its header, checked
    /// against `header` as a journal's is; `place` names it in errors.
    pub fn from_records<'r>(
        place: &Path,
        stored: &StudyHeader,
        records: impl IntoIterator<Item = &'r JournalRecord>,
        header: &StudyHeader,
    ) -> Result<Prior, JournalError> {
        check_header(place, stored, header)?;
        let mut prior = Prior::default();
        for (i, r) in records.into_iter().enumerate() {
            prior
                .add(r.clone(), header)
                .map_err(|message| JournalError::Corrupt {
                    file: place.to_path_buf(),
                    line: i + 2,
                    message,
                })?;
        }
        Ok(prior)
    }

    /// Checks a stored study as input: its header, then every record in order, as a resume
    /// checks a journal's. The one check every reader of stored records goes through (a
    /// journal's resume, a storage's view of a study for a worker, a report or a listing, a
    /// prior from an earlier tune). On a bad record: its index in `records` and what is wrong.
    pub fn check_stored<'r>(
        header: &StudyHeader,
        records: impl IntoIterator<Item = &'r JournalRecord>,
    ) -> Result<(), (Option<usize>, String)> {
        check_study(header).map_err(|m| (None, m))?;
        let mut prior = Prior::default();
        for (i, r) in records.into_iter().enumerate() {
            prior.add(r.clone(), header).map_err(|m| (Some(i), m))?;
        }
        Ok(())
    }

    /// Checks `what` (a confirmation, a fleet's share) of `config`: its measurement, at the full
    /// protocol's length and the configuration's batch, after `config` was measured.
    fn check_full(
        &self,
        config: &Config,
        m: &Measurement,
        header: &StudyHeader,
        what: &str,
    ) -> Result<(), String> {
        check_measurement(m, header)?;
        if m.inferences != header.protocol.inferences || m.batch_size != config.batch_size {
            return Err(format!("{what} of {config} is not at the full protocol"));
        }
        if !self.measurements.contains_key(config) {
            return Err(format!("{what} of {config} comes before it was measured"));
        }
        Ok(())
    }

    /// Takes one record after checking it as input.
    fn add(&mut self, rec: JournalRecord, header: &StudyHeader) -> Result<(), String> {
        match rec {
            JournalRecord::Study(_) => return Err("a second study header".into()),
            JournalRecord::Baseline { measurement } => {
                check_measurement(&measurement, header)?;
                self.baselines.insert(measurement.batch_size, measurement);
            }
            JournalRecord::Measurement {
                config,
                measurement,
            } => {
                check_measurement(&measurement, header)?;
                if header.space.point_of(&config).is_none() {
                    return Err(format!("{config} is not in the study's search space"));
                }
                if measurement.batch_size != config.batch_size {
                    return Err(format!(
                        "the measurement is for batch {}, the configuration has {}",
                        measurement.batch_size, config.batch_size
                    ));
                }
                if self.measurements.contains_key(&config) {
                    return Err(format!("{config} is measured twice"));
                }
                self.order.push(config);
                self.measurements.insert(config, measurement);
            }
            JournalRecord::Confirmed {
                config,
                measurement,
            } => {
                self.check_full(&config, &measurement, header, "the confirmation")?;
                self.confirmed.insert(config, measurement);
            }
            JournalRecord::Share {
                config,
                measurement,
            } => self.check_full(&config, &measurement, header, "a share")?,
            JournalRecord::Failed { .. } => {}
        }
        Ok(())
    }
}

/// A journal's header and records as they are, unchecked (a torn last line left out): what
/// `journal:DIR` storage shows of it.
pub fn read_records(path: &Path) -> Result<(StudyHeader, Vec<JournalRecord>), JournalError> {
    let text =
        std::fs::read_to_string(path).map_err(|_| JournalError::Missing(path.to_path_buf()))?;
    let mut header = None;
    let mut records = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let rec = match serde_json::from_str::<JournalRecord>(l.trim()) {
            Ok(r) => r,
            Err(_) if i + 1 == lines.len() && !l.ends_with('\n') => break,
            Err(e) => {
                return Err(JournalError::Corrupt {
                    file: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        };
        match (rec, header.is_none()) {
            (JournalRecord::Study(h), true) => header = Some(h),
            (r, false) => records.push(r),
            (_, true) => {
                return Err(JournalError::Corrupt {
                    file: path.to_path_buf(),
                    line: i + 1,
                    message: "the study header must be the first line".into(),
                })
            }
        }
    }
    let header = header.ok_or_else(|| JournalError::Corrupt {
        file: path.to_path_buf(),
        line: 1,
        message: "no study header: this is not an edgetune journal".into(),
    })?;
    Ok((header, records))
}

/// A header's prior, "none" for none.
fn prior_words(p: &str) -> String {
    if prior_is_none(&p.to_string()) {
        "none".into()
    } else {
        p.to_string()
    }
}

/// Whether a header's prior is none (left out of the header).
fn prior_is_none(p: &String) -> bool {
    p.is_empty() || p == "none"
}

/// Whether a header's exploration is the plain protocol (left out of the header).
fn is_plain_exploration(e: &super::budget::Exploration) -> bool {
    *e == super::budget::Exploration::default()
}

/// Largest energy (J) or time (s) a stored run may hold: a 3200-inference run on a Nano is about
/// 1000 J and a few minutes; 1e308 is finite, and turns every saving it enters into nonsense.
const MAX_STORED: f64 = 1e9;

/// Checks a journaled measurement as input: positive energy and times no larger than
/// [`MAX_STORED`], runs that agree with it, the study's inferences.
fn check_measurement(m: &Measurement, header: &StudyHeader) -> Result<(), String> {
    let finite_pos = |x: f64| x.is_finite() && x > 0.0 && x <= MAX_STORED;
    let finite_nonneg = |x: f64| x.is_finite() && (0.0..=MAX_STORED).contains(&x);
    if !finite_pos(m.energy_j) {
        return Err(format!(
            "energy must be positive and at most {MAX_STORED:e} J, got {} J",
            m.energy_j
        ));
    }
    if !(finite_nonneg(m.time_s) && finite_nonneg(m.cv) && finite_nonneg(m.wall_s)) {
        return Err(format!(
            "time, CV and wall time must be zero or more and at most {MAX_STORED:e}"
        ));
    }
    if m.runs.is_empty()
        || m.runs
            .iter()
            .any(|r| !finite_pos(r.energy_j) || !finite_nonneg(r.time_s))
    {
        return Err("every measurement needs runs with positive energies".into());
    }
    // Screening runs are whole batches at least --screen-inferences long, at most the full run.
    let screened = header.exploration.screen_inferences.is_some()
        && m.inferences < header.protocol.inferences
        && m.inferences.is_multiple_of(m.batch_size.max(1));
    if m.inferences != header.protocol.inferences && !screened {
        return Err(format!(
            "the measurement is for {} inferences, the study for {}",
            m.inferences, header.protocol.inferences
        ));
    }
    Ok(())
}

/// Checks a stored header on its own: a budget, a protocol the protocol accepts, a space.
fn check_study(h: &StudyHeader) -> Result<(), String> {
    if h.budget == 0 {
        return Err("the study's budget is 0 measurements".into());
    }
    h.protocol
        .validate()
        .map_err(|e| format!("the study's protocol: {e}"))?;
    if h.space.size() == 0 {
        return Err("the study's search space is empty".into());
    }
    Ok(())
}

fn check_header(path: &Path, old: &StudyHeader, new: &StudyHeader) -> Result<(), JournalError> {
    let racing = format!(
        "racing and screening ({}, {})",
        Opt::NoRace,
        Opt::ScreenInferences
    );
    let prior = format!("prior ({})", Opt::Prior);
    let fields: [(&str, String, String); 11] = [
        ("model", old.model.clone(), new.model.clone()),
        ("device", old.device.clone(), new.device.clone()),
        ("backend", old.backend.to_string(), new.backend.to_string()),
        ("strategy", old.strategy.clone(), new.strategy.clone()),
        ("seed", old.seed.to_string(), new.seed.to_string()),
        (
            "baseline batch",
            old.baseline_batch.to_string(),
            new.baseline_batch.to_string(),
        ),
        (
            "protocol",
            format!("{:?}", old.protocol),
            format!("{:?}", new.protocol),
        ),
        (
            "objective and constraints",
            format!("{:?}", old.goal),
            format!("{:?}", new.goal),
        ),
        (
            &racing,
            format!("{:?}", old.exploration),
            format!("{:?}", new.exploration),
        ),
        // "none" is left out of a header, and reads back empty.
        (&prior, prior_words(&old.prior), prior_words(&new.prior)),
        (
            "search space",
            serde_json::to_string(&old.space).unwrap_or_default(),
            serde_json::to_string(&new.space).unwrap_or_default(),
        ),
    ];
    for (field, journal, now) in fields {
        if journal != now {
            return Err(JournalError::Mismatch {
                file: path.to_path_buf(),
                field: field.to_string(),
                journal,
                now,
            });
        }
    }
    Ok(())
}
