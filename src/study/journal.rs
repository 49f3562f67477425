//! The journal: one JSON line per finished measurement, appended, flushed and synced before the
//! next starts; a study resumes from it without re-measuring.

use crate::measure::{Measurement, ProtocolSettings};
use crate::objective::Goal;
use crate::space::{Config, Space};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Problems with a journal given to `--resume`.
#[derive(Debug, Error)]
pub enum JournalError {
    /// No journal where one was expected.
    #[error("no journal at {0}; --resume takes the output folder of an earlier tune")]
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
    #[error("the journal in {file} is for a different study: {field} is {journal} there but {now} now; rerun without --resume or with the same options")]
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
    /// Creates (or truncates) a journal and writes its header.
    pub fn create(path: &Path, header: &StudyHeader) -> Result<Journal, JournalError> {
        let file = File::create(path).map_err(|source| JournalError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
        };
        j.append(&JournalRecord::Study(header.clone()))?;
        Ok(j)
    }

    /// Opens a journal for appending after checking that it belongs to `header`'s study.
    pub fn resume(path: &Path, header: &StudyHeader) -> Result<(Journal, Prior), JournalError> {
        let prior = Prior::read(path, header)?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|source| JournalError::Io {
                file: path.to_path_buf(),
                source,
            })?;
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            prior,
        ))
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
    /// Configurations measured.
    pub measurements: HashMap<Config, Measurement>,
}

impl Prior {
    /// Reads a journal and checks its header against `header`.
    pub fn read(path: &Path, header: &StudyHeader) -> Result<Prior, JournalError> {
        let f = File::open(path).map_err(|_| JournalError::Missing(path.to_path_buf()))?;
        let mut prior = Prior::default();
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|source| JournalError::Io {
                file: path.to_path_buf(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: JournalRecord =
                serde_json::from_str(&line).map_err(|e| JournalError::Corrupt {
                    file: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                })?;
            match rec {
                JournalRecord::Study(h) => check_header(path, &h, header)?,
                JournalRecord::Baseline { measurement } => {
                    prior.baselines.insert(measurement.batch_size, measurement);
                }
                JournalRecord::Measurement {
                    config,
                    measurement,
                } => {
                    prior.measurements.insert(config, measurement);
                }
                JournalRecord::Failed { .. } => {}
            }
        }
        Ok(prior)
    }
}

fn check_header(path: &Path, old: &StudyHeader, new: &StudyHeader) -> Result<(), JournalError> {
    let fields: [(&str, String, String); 9] = [
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
