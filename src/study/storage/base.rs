//! What every storage shares: the [`Storage`] trait, its records, claims, listings and
//! errors, and its URLs. A leaf: the storages import it and [`super`] re-exports it.

use crate::opt::Opt;
use crate::space::Config;
use crate::study::journal::{JournalError, JournalRecord, StudyHeader};
use std::path::PathBuf;
use thiserror::Error;

/// The schema version this build writes and reads. A database at a newer version is refused.
pub const SCHEMA_VERSION: i64 = 1;

/// Problems with a storage that a user can fix.
#[derive(Debug, Error)]
pub enum StorageError {
    /// A `--storage` value that is not a storage.
    #[error("{storage} {0}: not a storage; give sqlite:PATH (a file; `study create` makes it), postgresql://USER@HOST/DB, or journal:DIR", storage = Opt::Storage)]
    BadUrl(String),
    /// This build lacks the client.
    #[error("{storage} {url}: this edgetune was built without the `{feature}` feature; build it with `cargo install edgetune --features {feature}`", storage = Opt::Storage)]
    NotBuilt {
        /// The URL.
        url: String,
        /// The cargo feature.
        feature: &'static str,
    },
    /// The database could not be reached or a statement failed.
    #[error("{url}: {message}")]
    Db {
        /// The storage.
        url: String,
        /// What failed.
        message: String,
    },
    /// The database was written by a newer edgetune.
    #[error("{url} holds edgetune's schema version {found}, newer than this build's {supported}: upgrade edgetune (the database is left as it is)")]
    SchemaTooNew {
        /// The storage.
        url: String,
        /// Version in the database.
        found: i64,
        /// Latest version this build knows.
        supported: i64,
    },
    /// No study of that name.
    #[error("{url} has no study named `{name}`; `edgetune study list {storage} {url}` lists them, `edgetune study create` makes one", storage = Opt::Storage)]
    NoStudy {
        /// The storage.
        url: String,
        /// Study name.
        name: String,
    },
    /// A study of that name is already there (never overwritten).
    #[error(
        "{url} already has a study named `{name}`; continue it with {}, or choose another {}",
        Opt::Resume,
        Opt::Study
    )]
    Exists {
        /// The storage.
        url: String,
        /// Study name.
        name: String,
    },
    /// A study name that cannot be one.
    #[error("{study} `{0}`: a study name is 1-64 of letters, digits, `.`, `_`, `-`", study = Opt::Study)]
    BadName(String),
    /// The storage cannot hold claims (a journal folder is one process's).
    #[error(
        "{0} keeps one process's study; workers share a study through sqlite:PATH or postgresql://"
    )]
    NoClaims(String),
    /// A database edgetune must not write: not a plain file, missing, or another program's.
    #[error("{url}: {message}")]
    NotOurs {
        /// The storage.
        url: String,
        /// Why.
        message: String,
    },
    /// A schema version no edgetune writes (below 1): another program's table, or an edit.
    #[error("{url}: edgetune_schema holds version {found}, which no edgetune writes: this is not a database edgetune made, or it was changed outside edgetune (it is left as it is)")]
    SchemaUnknown {
        /// The storage.
        url: String,
        /// The version found, as stored.
        found: String,
    },
    /// A record in the storage that is not one.
    #[error("{url}: study `{name}`: a stored record is not one: {message}")]
    Corrupt {
        /// The storage.
        url: String,
        /// Study name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The journal file failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl StorageError {
    /// Whether the user can fix it by what they give (exit code 2); a database that fails
    /// while running is not.
    pub fn is_usage(&self) -> bool {
        !matches!(self, StorageError::Db { .. })
    }
}

/// Who measured a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// The board's identity: `--board-id`, else its serial number or machine id.
    pub board: String,
    /// This worker process (host, process id, start time): tells two workers of one board apart.
    pub worker: String,
    /// The backend that measured (`sim`, `jetson`, ...).
    pub backend: String,
}

/// A record with the board that measured it.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// The record.
    pub record: JournalRecord,
    /// Who wrote it.
    pub origin: Origin,
}

/// What a claim is for. A fleet spreads full-protocol figures over its boards: each claim of a
/// share or a baseline run is one full-length run, and the runs of every board are pooled after
/// the boards' offsets ([`crate::study::pool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// Exploring a configuration (screened and raced as `tune` would).
    Explore,
    /// Run `n` towards confirming a measured configuration at the full protocol.
    Share(u32),
    /// Run `n` of the DVFS baseline at the configuration's batch size (its clocks are 0).
    Baseline(u32),
}

/// A claim: what it is for, and the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimKey {
    /// The configuration (for a baseline, only its batch size counts).
    pub config: Config,
    /// What the claim is for.
    pub kind: ClaimKind,
}

impl ClaimKey {
    /// Exploring `config`.
    pub fn explore(config: Config) -> ClaimKey {
        ClaimKey {
            config,
            kind: ClaimKind::Explore,
        }
    }

    /// Whether the claim is part of a full-protocol figure (a share or a baseline run).
    pub fn is_full_protocol(&self) -> bool {
        self.kind != ClaimKind::Explore
    }

    /// What the claim measures, in words.
    pub fn describe(&self) -> String {
        match self.kind {
            ClaimKind::Explore => self.config.to_string(),
            ClaimKind::Share(n) => format!("{} (confirming, run {})", self.config, n + 1),
            ClaimKind::Baseline(n) => format!(
                "DVFS baseline at batch {} (run {})",
                self.config.batch_size,
                n + 1
            ),
        }
    }

    /// The key as stored.
    pub fn text(&self) -> String {
        let c = serde_json::to_string(&self.config).expect("configurations serialise");
        match self.kind {
            ClaimKind::Explore => c,
            ClaimKind::Share(n) => format!("share{n}:{c}"),
            ClaimKind::Baseline(n) => format!("baseline{n}:{c}"),
        }
    }

    /// From its stored text (`confirm:` is an earlier version's whole confirmation, read as a
    /// share so that its lease still holds its configuration).
    pub fn parse(s: &str) -> Option<ClaimKey> {
        let slot = |rest: &str, tag: &str| -> Option<(u32, String)> {
            let rest = rest.strip_prefix(tag)?;
            let (n, c) = rest.split_once(':')?;
            Some((n.parse().ok()?, c.to_string()))
        };
        let (kind, c) = if let Some(c) = s.strip_prefix("confirm:") {
            (ClaimKind::Share(0), c.to_string())
        } else if let Some((n, c)) = slot(s, "share") {
            (ClaimKind::Share(n), c)
        } else if let Some((n, c)) = slot(s, "baseline") {
            (ClaimKind::Baseline(n), c)
        } else {
            (ClaimKind::Explore, s.to_string())
        };
        Some(ClaimKey {
            config: serde_json::from_str(&c).ok()?,
            kind,
        })
    }
}

/// A claim another worker holds, its lease not yet run out.
#[derive(Debug, Clone)]
pub struct ActiveClaim {
    /// What is being measured.
    pub key: ClaimKey,
    /// Who holds it.
    pub origin: Origin,
    /// Seconds of the database's clock until its lease runs out unless renewed (0 once expired).
    pub lease_left_s: f64,
}

/// A study as a worker sees it inside its claiming transaction.
#[derive(Debug, Clone)]
pub struct StudyView {
    /// Study name.
    pub name: String,
    /// What the study is.
    pub header: StudyHeader,
    /// Everything recorded, in the order it was written.
    pub records: Vec<StoredRecord>,
    /// Configurations being measured now (leases not run out).
    pub claims: Vec<ActiveClaim>,
    /// Claims whose lease ran out without a result (a worker killed, a board unplugged): back
    /// in the pool, and the next worker measures them first.
    pub expired: Vec<ActiveClaim>,
}

/// A worker's decision inside a claiming transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// Claim this and measure it.
    Measure(ClaimKey),
    /// Nothing to claim now, but other workers' claims may free some or finish the study.
    Wait,
    /// The study is finished.
    Done,
}

/// One line of `study list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StudyListing {
    /// Study name.
    pub name: String,
    /// Model id.
    pub model: String,
    /// Board kind.
    pub device: String,
    /// Strategy.
    pub strategy: String,
    /// Measurement budget.
    pub budget: usize,
    /// Configurations measured (or failed).
    pub measured: usize,
    /// Claims being measured now.
    pub in_progress: usize,
    /// Boards that recorded something.
    pub boards: usize,
    /// Why the study could not be read (its other fields are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl StudyListing {
    /// A study's line in `study list`.
    pub fn of(v: &StudyView) -> StudyListing {
        let mut measured = std::collections::HashSet::new();
        let mut boards = std::collections::HashSet::new();
        for r in &v.records {
            boards.insert(r.origin.board.clone());
            match &r.record {
                JournalRecord::Measurement { config, .. }
                | JournalRecord::Failed { config, .. } => {
                    measured.insert(*config);
                }
                _ => {}
            }
        }
        StudyListing {
            name: v.name.clone(),
            model: v.header.model.clone(),
            device: v.header.device.clone(),
            strategy: v.header.strategy.clone(),
            budget: v.header.budget,
            measured: measured.len(),
            in_progress: v.claims.len(),
            boards: boards.len(),
            unreadable: None,
        }
    }

    /// The listing of a study that could not be read, and why.
    pub fn unreadable(name: &str, e: &StorageError) -> StudyListing {
        StudyListing {
            name: name.to_string(),
            model: String::new(),
            device: String::new(),
            strategy: String::new(),
            budget: 0,
            measured: 0,
            in_progress: 0,
            boards: 0,
            unreadable: Some(e.to_string()),
        }
    }
}

/// The longest claim lease a worker may ask for, seconds (`--lease-s`'s bound): a stored lease
/// beyond it counts as expired.
pub const MAX_LEASE_S: f64 = 86_400.0;

/// A storage of studies.
pub trait Storage: Send {
    /// The storage as the user named it (for messages).
    fn url(&self) -> &str;
    /// Creates a study; one of that name is never overwritten ([`StorageError::Exists`]).
    fn create_study(&mut self, name: &str, header: &StudyHeader) -> Result<(), StorageError>;
    /// A study's header, records and live claims.
    fn study(&mut self, name: &str) -> Result<StudyView, StorageError>;
    /// The names of its studies, oldest first.
    fn names(&mut self) -> Result<Vec<String>, StorageError>;
    /// Every study, with its progress. One unreadable study is listed as such; it does not
    /// hide the others.
    fn list(&mut self) -> Result<Vec<StudyListing>, StorageError> {
        let mut out = Vec::new();
        for name in self.names()? {
            out.push(match self.study(&name) {
                Ok(v) => StudyListing::of(&v),
                Err(e) => StudyListing::unreadable(&name, &e),
            });
        }
        Ok(out)
    }
    /// Appends a record (baselines; a single process's measurements).
    fn append(&mut self, name: &str, r: &JournalRecord, by: &Origin) -> Result<(), StorageError>;
    /// In one transaction: reads the study, lets `choose` decide, and claims what it chose with
    /// a lease of `lease_s` seconds of the database's clock.
    fn claim(
        &mut self,
        name: &str,
        by: &Origin,
        lease_s: f64,
        choose: &mut dyn FnMut(&StudyView) -> Choice,
    ) -> Result<Choice, StorageError>;
    /// Extends a claim's lease; `false` when it is no longer this worker's.
    fn heartbeat(
        &mut self,
        name: &str,
        key: &ClaimKey,
        by: &Origin,
        lease_s: f64,
    ) -> Result<bool, StorageError>;
    /// Writes a claim's result and releases it, in one transaction. `false` (and nothing
    /// written) when another worker wrote this configuration's result first.
    fn complete(
        &mut self,
        name: &str,
        key: &ClaimKey,
        r: &JournalRecord,
        by: &Origin,
    ) -> Result<bool, StorageError>;
    /// Gives a claim back unmeasured (an interrupted worker).
    fn release(&mut self, name: &str, key: &ClaimKey, by: &Origin) -> Result<(), StorageError>;
}

/// A `--storage` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// `journal:DIR`: the journal.jsonl in a folder (one study, one process).
    Journal(PathBuf),
    /// `sqlite:PATH`.
    Sqlite(PathBuf),
    /// `postgresql://...` or `postgres://...`.
    Postgres(String),
}

impl StorageUrl {
    /// Parses a `--storage` value.
    pub fn parse(s: &str) -> Result<StorageUrl, StorageError> {
        let s = s.trim();
        let rest = s
            .strip_prefix("postgresql://")
            .or_else(|| s.strip_prefix("postgres://"));
        if let Some(rest) = rest {
            // Nothing after the scheme names no server: bad input, not a failed connection.
            if rest.trim().is_empty() {
                return Err(StorageError::BadUrl(redact(s)));
            }
            return Ok(StorageUrl::Postgres(s.to_string()));
        }
        let path = |p: &str| {
            let p = p.strip_prefix("//").unwrap_or(p);
            (!p.is_empty()).then(|| PathBuf::from(p))
        };
        if let Some(p) = s.strip_prefix("sqlite:").and_then(path) {
            return Ok(StorageUrl::Sqlite(p));
        }
        if let Some(p) = s.strip_prefix("journal:").and_then(path) {
            return Ok(StorageUrl::Journal(p));
        }
        Err(StorageError::BadUrl(redact(s)))
    }

    /// Whether several workers can share it.
    pub fn shared(&self) -> bool {
        !matches!(self, StorageUrl::Journal(_))
    }
}

/// Checks a study name: 1-64 of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn check_name(name: &str) -> Result<(), StorageError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::BadName(name.to_string()))
    }
}

/// `url` as it may be printed or logged: a password (`user:PASSWORD@host`, `password=...` in
/// a query or in key=value pairs) becomes `***`. Every message that names a storage goes
/// through it.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    // user:password@ of a URL: the authority is what follows `://` up to the path.
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i) {
            if let Some(colon) = out[start..at].find(':').map(|i| start + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    // password=VALUE, up to `&`, whitespace, or the closing quote of a quoted value.
    let mut from = 0;
    while let Some(i) = out[from..].to_ascii_lowercase().find("password=") {
        let v = from + i + "password=".len();
        let rest = &out[v..];
        let len = match rest.strip_prefix('\'') {
            Some(q) => q.find('\'').map_or(rest.len(), |j| j + 2),
            None => rest.find(['&', ' ', '\t', '\n']).unwrap_or(rest.len()),
        };
        out.replace_range(v..v + len, "***");
        from = v + 3;
    }
    out
}
