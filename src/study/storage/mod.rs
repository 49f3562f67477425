//! Where a study's state lives. A study is its header plus its records (baselines, measurements,
//! confirmations, failures), each with the board that measured it. The JSONL journal keeps one
//! study for one process ([`super::Journal`]); a database ([`open`]: SQLite, or PostgreSQL for
//! boards on a network) keeps many, and lets several workers measure one study at once: asking
//! is a transaction that claims a configuration with a lease, a result is written once, and a
//! claim whose lease ran out goes back to the pool (Optuna's RDB storage is the model: no
//! central process, workers never talk to each other).
//!
//! Every backend is one [`Storage`]; what the study loop writes through is the smaller
//! [`StudyLog`] (a journal file, or a study in a database).

mod journal_dir;
#[cfg(feature = "postgres")]
mod postgres;
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

mod base;
pub use base::*;
pub use journal_dir::JournalDir;

use super::journal::JournalRecord;

/// Opens (and migrates to [`SCHEMA_VERSION`]) the existing storage at `url`: a SQLite file that
/// is not there is an error (a worker whose database was deleted does not make a new one).
pub fn open(url: &str) -> Result<Box<dyn Storage>, StorageError> {
    open_with(url, false)
}

/// [`open`], making a SQLite file that is not there yet (a new study).
pub fn create_or_open(url: &str) -> Result<Box<dyn Storage>, StorageError> {
    open_with(url, true)
}

#[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
fn open_with(url: &str, create: bool) -> Result<Box<dyn Storage>, StorageError> {
    // What messages name: the URL without its password (the connection gets the whole URL).
    let shown = redact(url);
    match StorageUrl::parse(url)? {
        StorageUrl::Journal(dir) => Ok(Box::new(JournalDir::new(dir))),
        #[cfg(feature = "sqlite")]
        StorageUrl::Sqlite(path) => Ok(Box::new(sql::SqlStorage::new(
            &shown,
            Box::new(sqlite::Sqlite::open(&shown, &path, create)?),
        )?)),
        #[cfg(not(feature = "sqlite"))]
        StorageUrl::Sqlite(_) => Err(StorageError::NotBuilt {
            url: shown,
            feature: "sqlite",
        }),
        #[cfg(feature = "postgres")]
        StorageUrl::Postgres(u) => Ok(Box::new(sql::SqlStorage::new(
            &shown,
            Box::new(postgres::Postgres::connect(&u)?),
        )?)),
        #[cfg(not(feature = "postgres"))]
        StorageUrl::Postgres(_) => Err(StorageError::NotBuilt {
            url: shown,
            feature: "postgres",
        }),
    }
}

/// A stored study read once for a command: the connection, and the study as it was read.
/// `tune --resume` and `worker` read it to merge its recorded arguments, then hand it to the
/// command, which measures on through the same connection.
pub struct OpenedStudy {
    /// The connection.
    pub storage: Box<dyn Storage>,
    /// The study when it was read.
    pub view: StudyView,
}

impl OpenedStudy {
    /// Opens the existing storage at `url` and reads study `name` from it.
    pub fn open(url: &str, name: &str) -> Result<OpenedStudy, StorageError> {
        let mut storage = open(url)?;
        let view = storage.study(name)?;
        Ok(OpenedStudy { storage, view })
    }
}

/// What the study loop writes each record through.
pub trait StudyLog: Send {
    /// Records one line of the study, durably, before the next measurement starts.
    fn record(&mut self, r: &JournalRecord) -> Result<(), StorageError>;
    /// Where the records go, for messages.
    fn place(&self) -> String;
}

impl StudyLog for super::journal::Journal {
    fn record(&mut self, r: &JournalRecord) -> Result<(), StorageError> {
        Ok(self.append(r)?)
    }
    fn place(&self) -> String {
        self.path().display().to_string()
    }
}

/// A study in a [`Storage`], written by one process.
pub struct StoredLog {
    /// The storage.
    pub storage: Box<dyn Storage>,
    /// Study name.
    pub name: String,
    /// Who measures.
    pub origin: Origin,
}

impl StudyLog for StoredLog {
    fn record(&mut self, r: &JournalRecord) -> Result<(), StorageError> {
        self.storage.append(&self.name, r, &self.origin)
    }
    fn place(&self) -> String {
        format!("study `{}` in {}", self.name, self.storage.url())
    }
}

/// This machine's identity for [`Origin::board`]: a Jetson's serial number, else the machine id,
/// else the host name.
pub fn machine_identity(root: &std::path::Path) -> String {
    let read = |p: &str| {
        std::fs::read_to_string(root.join(p))
            .ok()
            .map(|s| {
                s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                    .to_string()
            })
            .filter(|s| !s.is_empty())
    };
    read("proc/device-tree/serial-number")
        .or_else(|| read("etc/machine-id"))
        .or_else(|| read("etc/hostname"))
        .unwrap_or_else(|| "unknown-board".into())
}

/// This process, told apart from every other worker: host, process id, start time.
pub fn process_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}/{}/{t:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Config;

    #[test]
    fn storage_urls_parse_and_bad_ones_say_what_to_give() {
        assert_eq!(
            StorageUrl::parse("sqlite:s.db").unwrap(),
            StorageUrl::Sqlite("s.db".into())
        );
        assert_eq!(
            StorageUrl::parse("sqlite:///tmp/s.db").unwrap(),
            StorageUrl::Sqlite("/tmp/s.db".into())
        );
        assert!(matches!(
            StorageUrl::parse("postgresql://u@h/db").unwrap(),
            StorageUrl::Postgres(_)
        ));
        let e = StorageUrl::parse("mysql://x").unwrap_err().to_string();
        assert!(e.contains("sqlite:PATH"), "{e}");
        assert!(StorageUrl::parse("sqlite:").is_err());
    }

    #[test]
    fn claim_keys_round_trip() {
        let config = Config::new(1_479_000, 921_600_000, 8);
        let kinds = [
            ClaimKind::Explore,
            ClaimKind::Share(0),
            ClaimKind::Share(12),
            ClaimKind::Baseline(3),
        ];
        let texts: std::collections::HashSet<String> = kinds
            .iter()
            .map(|&kind| {
                let k = ClaimKey { config, kind };
                assert_eq!(ClaimKey::parse(&k.text()), Some(k));
                k.text()
            })
            .collect();
        assert_eq!(texts.len(), kinds.len());
        // An earlier version's confirmation claim is still read.
        let old = format!("confirm:{}", serde_json::to_string(&config).unwrap());
        assert_eq!(
            ClaimKey::parse(&old).map(|k| k.kind),
            Some(ClaimKind::Share(0))
        );
        assert_eq!(ClaimKey::parse("share:x"), None);
    }

    #[test]
    fn study_names_are_file_name_parts() {
        assert!(check_name("nano-yolo.1").is_ok());
        for bad in ["", ".x", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
