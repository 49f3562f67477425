//! `journal:DIR`: the journal.jsonl of one `tune` folder as a [`Storage`]. It holds one study
//! for one process: it can be created, read, appended to and listed, never claimed from.

use super::base::{Choice, ClaimKey, Origin, Storage, StorageError, StudyListing, StudyView};
use crate::study::journal::{read_records, Journal, JournalRecord, StudyHeader};
use std::io::Write;
use std::path::PathBuf;

/// A folder holding (or about to hold) one study's journal.jsonl.
pub struct JournalDir {
    dir: PathBuf,
    url: String,
}

impl JournalDir {
    /// The folder `dir`.
    pub fn new(dir: PathBuf) -> JournalDir {
        let url = format!("journal:{}", dir.display());
        JournalDir { dir, url }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }
}

impl Storage for JournalDir {
    fn url(&self) -> &str {
        &self.url
    }

    fn create_study(&mut self, name: &str, header: &StudyHeader) -> Result<(), StorageError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StorageError::Db {
            url: self.url.clone(),
            message: e.to_string(),
        })?;
        match Journal::create(&self.path(), header) {
            Ok(_) => Ok(()),
            Err(crate::study::journal::JournalError::Exists(_)) => Err(StorageError::Exists {
                url: self.url.clone(),
                name: name.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn study(&mut self, name: &str) -> Result<StudyView, StorageError> {
        let (header, records) = read_records(&self.path())?;
        crate::study::journal::Prior::check_stored(&header, &records).map_err(|(i, message)| {
            StorageError::Corrupt {
                url: self.url.clone(),
                name: name.to_string(),
                // Line 1 is the header.
                message: match i {
                    Some(i) => format!("record {} (line {}): {message}", i + 1, i + 2),
                    None => message,
                },
            }
        })?;
        let origin = Origin {
            backend: header.backend.to_string(),
            ..Origin::default()
        };
        Ok(StudyView {
            name: name.to_string(),
            header,
            records: records
                .into_iter()
                .map(|record| super::base::StoredRecord {
                    record,
                    origin: origin.clone(),
                })
                .collect(),
            claims: Vec::new(),
            expired: Vec::new(),
        })
    }

    fn names(&mut self) -> Result<Vec<String>, StorageError> {
        Ok(match self.path().exists() {
            true => vec![self.dir.display().to_string()],
            false => Vec::new(),
        })
    }

    fn list(&mut self) -> Result<Vec<StudyListing>, StorageError> {
        // Its one study: a journal that cannot be read is the command's error.
        let mut out = Vec::new();
        for name in self.names()? {
            out.push(StudyListing::of(&self.study(&name)?));
        }
        Ok(out)
    }

    fn append(&mut self, _name: &str, r: &JournalRecord, _by: &Origin) -> Result<(), StorageError> {
        let io = |source| {
            StorageError::Journal(crate::study::journal::JournalError::Io {
                file: self.path(),
                source,
            })
        };
        let mut f = crate::files::open_own(std::fs::OpenOptions::new().append(true), &self.path())
            .map_err(io)?;
        let line = serde_json::to_string(r).expect("journal records serialise") + "\n";
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)
    }

    fn claim(
        &mut self,
        _: &str,
        _: &Origin,
        _: f64,
        _: &mut dyn FnMut(&StudyView) -> Choice,
    ) -> Result<Choice, StorageError> {
        Err(StorageError::NoClaims(self.url.clone()))
    }

    fn heartbeat(
        &mut self,
        _: &str,
        _: &ClaimKey,
        _: &Origin,
        _: f64,
    ) -> Result<bool, StorageError> {
        Err(StorageError::NoClaims(self.url.clone()))
    }

    fn complete(
        &mut self,
        _: &str,
        _: &ClaimKey,
        _: &JournalRecord,
        _: &Origin,
    ) -> Result<bool, StorageError> {
        Err(StorageError::NoClaims(self.url.clone()))
    }

    fn release(&mut self, _: &str, _: &ClaimKey, _: &Origin) -> Result<(), StorageError> {
        Err(StorageError::NoClaims(self.url.clone()))
    }
}
