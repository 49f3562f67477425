//! The database storage, written once for SQLite and PostgreSQL over a small [`Conn`]: the
//! schema and its versioned migrations, and every transaction (create, append, claim, heartbeat,
//! complete). Writes are serialised per database (SQLite's `BEGIN IMMEDIATE`, a PostgreSQL
//! transaction-level advisory lock), so a claim sees every result and claim committed before it.
//! Times are the database's clock, so boards with unsynchronised clocks agree on leases.

use super::base::{
    ActiveClaim, Choice, ClaimKey, Origin, Storage, StorageError, StoredRecord, StudyView,
    SCHEMA_VERSION,
};
use crate::study::journal::{JournalRecord, StudyHeader};

/// A value bound to, or read from, a statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    /// An integer (BIGINT).
    I(i64),
    /// A double.
    F(f64),
    /// Text.
    T(String),
}

impl Val {
    fn int(&self) -> i64 {
        match self {
            Val::I(i) => *i,
            Val::F(f) => *f as i64,
            Val::T(t) => t.parse().unwrap_or(0),
        }
    }
    fn text(&self) -> String {
        match self {
            Val::T(t) => t.clone(),
            Val::I(i) => i.to_string(),
            Val::F(f) => f.to_string(),
        }
    }
}

/// Which SQL a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// One database connection. Statements use `$1, $2, ...` placeholders.
pub(super) trait Conn: Send {
    /// Its dialect.
    fn dialect(&self) -> Dialect;
    /// Runs statements without parameters or results.
    fn batch(&mut self, sql: &str) -> Result<(), String>;
    /// Runs one statement; the rows it changed.
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, String>;
    /// Runs one query; its rows.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String>;
    /// Whether the database is still the one opened (a file removed under it is not).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The schema, one entry per version; `{id}` is the dialect's auto-increment key.
const MIGRATIONS: [&str; 1] = ["
CREATE TABLE edgetune_studies (
    id {id},
    name TEXT NOT NULL UNIQUE,
    header TEXT NOT NULL,
    created_s DOUBLE PRECISION NOT NULL
);
CREATE TABLE edgetune_records (
    id {id},
    study_id BIGINT NOT NULL REFERENCES edgetune_studies (id),
    kind TEXT NOT NULL,
    config TEXT NOT NULL,
    record TEXT NOT NULL,
    board TEXT NOT NULL,
    worker TEXT NOT NULL,
    backend TEXT NOT NULL,
    created_s DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX edgetune_records_once ON edgetune_records (study_id, kind, config)
    WHERE kind IN ('measurement', 'confirmed');
CREATE TABLE edgetune_claims (
    study_id BIGINT NOT NULL REFERENCES edgetune_studies (id),
    config TEXT NOT NULL,
    board TEXT NOT NULL,
    worker TEXT NOT NULL,
    backend TEXT NOT NULL,
    lease_until_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (study_id, config)
);
"];

/// A database storage.
pub(super) struct SqlStorage {
    url: String,
    conn: Box<dyn Conn>,
}

impl SqlStorage {
    /// Wraps a connection and brings its schema to [`SCHEMA_VERSION`] (refusing a newer one).
    pub fn new(url: &str, conn: Box<dyn Conn>) -> Result<SqlStorage, StorageError> {
        let mut s = SqlStorage {
            url: url.to_string(),
            conn,
        };
        s.write(|s| s.migrate())?;
        Ok(s)
    }

    fn err(&self, message: impl std::fmt::Display) -> StorageError {
        StorageError::Db {
            url: self.url.clone(),
            message: message.to_string(),
        }
    }

    fn sql(&self, sql: &str) -> String {
        match self.conn.dialect() {
            // SQLite numbers its parameters ?1, ?2.
            Dialect::Sqlite => sql.replace('$', "?"),
            Dialect::Postgres => sql.to_string(),
        }
    }

    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StorageError> {
        let q = self.sql(sql);
        self.conn.exec(&q, params).map_err(|e| self.err(e))
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, StorageError> {
        let q = self.sql(sql);
        self.conn.query(&q, params).map_err(|e| self.err(e))
    }

    /// The database's clock, seconds since the epoch.
    fn now_sql(&self) -> &'static str {
        match self.conn.dialect() {
            Dialect::Sqlite => "((julianday('now') - 2440587.5) * 86400.0)",
            Dialect::Postgres => "(extract(epoch from clock_timestamp())::float8)",
        }
    }

    /// Runs `f` in a write transaction (serialised with every other writer of the database),
    /// committed when it returns `Ok`, rolled back otherwise.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut SqlStorage) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.conn.check().map_err(|e| self.err(e))?;
        let begin = match self.conn.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN; SELECT pg_advisory_xact_lock(7343236504)",
        };
        self.conn.batch(begin).map_err(|e| self.err(e))?;
        match f(self) {
            Ok(v) => {
                self.conn.batch("COMMIT").map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn migrate(&mut self) -> Result<(), StorageError> {
        self.conn
            .batch("CREATE TABLE IF NOT EXISTS edgetune_schema (version BIGINT NOT NULL)")
            .map_err(|e| self.err(e))?;
        // Every row an integer: another program's `edgetune_schema` ('abc') is not read as 0.
        let rows = self.query("SELECT CAST(version AS TEXT) FROM edgetune_schema", &[])?;
        let versions: Option<Vec<i64>> = rows
            .iter()
            .map(|r| r[0].text().trim().parse().ok())
            .collect();
        let Some(versions) = versions else {
            let found = rows
                .iter()
                .map(|r| r[0].text())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(StorageError::SchemaUnknown {
                url: self.url.clone(),
                found: format!("`{found}`"),
            });
        };
        let found = versions.into_iter().max().unwrap_or(0);
        if found < 0 {
            return Err(StorageError::SchemaUnknown {
                url: self.url.clone(),
                found: found.to_string(),
            });
        }
        if found > SCHEMA_VERSION {
            return Err(StorageError::SchemaTooNew {
                url: self.url.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let id = match self.conn.dialect() {
            Dialect::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        for v in found + 1..=SCHEMA_VERSION {
            let ddl = MIGRATIONS[(v - 1) as usize].replace("{id}", id);
            self.conn.batch(&ddl).map_err(|e| self.err(e))?;
            self.exec(
                "INSERT INTO edgetune_schema (version) VALUES ($1)",
                &[Val::I(v)],
            )?;
        }
        Ok(())
    }

    /// The study's id, if there is one of that name.
    fn find_id(&mut self, name: &str) -> Result<Option<i64>, StorageError> {
        let rows = self.query(
            "SELECT id FROM edgetune_studies WHERE name = $1",
            &[Val::T(name.into())],
        )?;
        Ok(rows.first().map(|r| r[0].int()))
    }

    fn study_id(&mut self, name: &str) -> Result<i64, StorageError> {
        self.find_id(name)?.ok_or_else(|| StorageError::NoStudy {
            url: self.url.clone(),
            name: name.into(),
        })
    }

    fn corrupt(&self, name: &str, e: impl std::fmt::Display) -> StorageError {
        StorageError::Corrupt {
            url: self.url.clone(),
            name: name.into(),
            message: e.to_string(),
        }
    }

    /// A study's id and what it holds.
    fn view(&mut self, name: &str) -> Result<(i64, StudyView), StorageError> {
        let rows = self.query(
            "SELECT id, header FROM edgetune_studies WHERE name = $1",
            &[Val::T(name.into())],
        )?;
        let Some(row) = rows.first() else {
            return Err(StorageError::NoStudy {
                url: self.url.clone(),
                name: name.into(),
            });
        };
        let id = row[0].int();
        let header = serde_json::from_str(&row[1].text()).map_err(|e| self.corrupt(name, e))?;
        let rows = self.query(
            "SELECT record, board, worker, backend, id FROM edgetune_records WHERE study_id = $1 ORDER BY id",
            &[Val::I(id)],
        )?;
        let mut records = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for r in rows {
            let record = serde_json::from_str(&r[0].text())
                .map_err(|e| self.corrupt(name, format!("record {}: {e}", r[4].int())))?;
            records.push(StoredRecord {
                record,
                origin: origin_of(&r[1..4]),
            });
            ids.push(r[4].int());
        }
        // What a worker, a report, a listing and a resume read is checked here, once.
        crate::study::journal::Prior::check_stored(&header, records.iter().map(|r| &r.record))
            .map_err(|(i, m)| match i {
                Some(i) => self.corrupt(name, format!("record {}: {m}", ids[i])),
                None => self.corrupt(name, m),
            })?;
        let now = self.now_sql();
        // A lease longer than any worker asks for (`--lease-s` is at most a day) was not
        // written by one: it counts as expired rather than holding its configuration forever.
        let rows = self.query(
            &format!("SELECT config, board, worker, backend, CASE WHEN lease_until_s > {now} AND lease_until_s <= {now} + $2 THEN 1 ELSE 0 END, lease_until_s - {now} FROM edgetune_claims WHERE study_id = $1 ORDER BY config"),
            &[Val::I(id), Val::F(super::base::MAX_LEASE_S)],
        )?;
        let (mut claims, mut expired) = (Vec::new(), Vec::new());
        for r in rows {
            let key = ClaimKey::parse(&r[0].text())
                .ok_or_else(|| self.corrupt(name, format!("claim {}", r[0].text())))?;
            let left_s = match &r[5] {
                Val::F(f) => *f,
                v => v.text().parse().unwrap_or(0.0),
            };
            let c = ActiveClaim {
                key,
                origin: origin_of(&r[1..4]),
                lease_left_s: left_s.clamp(0.0, super::base::MAX_LEASE_S),
            };
            if r[4].int() == 1 {
                claims.push(c);
            } else {
                expired.push(c);
            }
        }
        Ok((
            id,
            StudyView {
                name: name.into(),
                header,
                records,
                claims,
                expired,
            },
        ))
    }

    fn insert(&mut self, id: i64, r: &JournalRecord, by: &Origin) -> Result<(), StorageError> {
        let (kind, config) = match r {
            JournalRecord::Study(_) => return Err(self.err("a study header is not a record")),
            JournalRecord::Baseline { measurement } => {
                ("baseline", measurement.batch_size.to_string())
            }
            JournalRecord::Measurement { config, .. } => ("measurement", config_key(config)),
            JournalRecord::Confirmed { config, .. } => ("confirmed", config_key(config)),
            JournalRecord::Share { config, .. } => ("share", config_key(config)),
            JournalRecord::Failed { config, .. } => ("failed", config_key(config)),
        };
        let record = serde_json::to_string(r).expect("journal records serialise");
        let now = self.now_sql();
        self.exec(
            &format!("INSERT INTO edgetune_records (study_id, kind, config, record, board, worker, backend, created_s) VALUES ($1, $2, $3, $4, $5, $6, $7, {now})"),
            &[
                Val::I(id),
                Val::T(kind.into()),
                Val::T(config),
                Val::T(record),
                Val::T(by.board.clone()),
                Val::T(by.worker.clone()),
                Val::T(by.backend.clone()),
            ],
        )?;
        Ok(())
    }
}

/// Deletes `by`'s claim of `key` (run inside a write transaction).
fn drop_claim(
    s: &mut SqlStorage,
    id: i64,
    key: &ClaimKey,
    by: &Origin,
) -> Result<(), StorageError> {
    s.exec(
        "DELETE FROM edgetune_claims WHERE study_id = $1 AND config = $2 AND worker = $3",
        &[Val::I(id), Val::T(key.text()), Val::T(by.worker.clone())],
    )?;
    Ok(())
}

fn config_key(c: &crate::space::Config) -> String {
    ClaimKey::explore(*c).text()
}

fn origin_of(cols: &[Val]) -> Origin {
    Origin {
        board: cols[0].text(),
        worker: cols[1].text(),
        backend: cols[2].text(),
    }
}

impl Storage for SqlStorage {
    fn url(&self) -> &str {
        &self.url
    }

    fn create_study(&mut self, name: &str, header: &StudyHeader) -> Result<(), StorageError> {
        super::base::check_name(name)?;
        let text = serde_json::to_string(header).expect("headers serialise");
        self.write(|s| {
            if s.find_id(name)?.is_some() {
                return Err(StorageError::Exists {
                    url: s.url.clone(),
                    name: name.into(),
                });
            }
            let now = s.now_sql();
            s.exec(
                &format!(
                    "INSERT INTO edgetune_studies (name, header, created_s) VALUES ($1, $2, {now})"
                ),
                &[Val::T(name.into()), Val::T(text)],
            )?;
            Ok(())
        })
    }

    fn study(&mut self, name: &str) -> Result<StudyView, StorageError> {
        Ok(self.view(name)?.1)
    }

    fn names(&mut self) -> Result<Vec<String>, StorageError> {
        let names = self.query("SELECT name FROM edgetune_studies ORDER BY id", &[])?;
        Ok(names.iter().map(|n| n[0].text()).collect())
    }

    fn append(&mut self, name: &str, r: &JournalRecord, by: &Origin) -> Result<(), StorageError> {
        self.write(|s| {
            let id = s.study_id(name)?;
            s.insert(id, r, by)
        })
    }

    fn claim(
        &mut self,
        name: &str,
        by: &Origin,
        lease_s: f64,
        choose: &mut dyn FnMut(&StudyView) -> Choice,
    ) -> Result<Choice, StorageError> {
        self.write(|s| {
            let (id, view) = s.view(name)?;
            let choice = choose(&view);
            if let Choice::Measure(key) = choice {
                let now = s.now_sql();
                // An expired claim of this configuration goes: its worker is gone.
                s.exec(
                    "DELETE FROM edgetune_claims WHERE study_id = $1 AND config = $2",
                    &[Val::I(id), Val::T(key.text())],
                )?;
                s.exec(
                    &format!("INSERT INTO edgetune_claims (study_id, config, board, worker, backend, lease_until_s) VALUES ($1, $2, $3, $4, $5, {now} + $6)"),
                    &[
                        Val::I(id),
                        Val::T(key.text()),
                        Val::T(by.board.clone()),
                        Val::T(by.worker.clone()),
                        Val::T(by.backend.clone()),
                        Val::F(lease_s),
                    ],
                )?;
            }
            Ok(choice)
        })
    }

    fn heartbeat(
        &mut self,
        name: &str,
        key: &ClaimKey,
        by: &Origin,
        lease_s: f64,
    ) -> Result<bool, StorageError> {
        self.write(|s| {
            let id = s.study_id(name)?;
            let now = s.now_sql();
            let n = s.exec(
                &format!("UPDATE edgetune_claims SET lease_until_s = {now} + $1 WHERE study_id = $2 AND config = $3 AND worker = $4"),
                &[Val::F(lease_s), Val::I(id), Val::T(key.text()), Val::T(by.worker.clone())],
            )?;
            Ok(n > 0)
        })
    }

    fn complete(
        &mut self,
        name: &str,
        key: &ClaimKey,
        r: &JournalRecord,
        by: &Origin,
    ) -> Result<bool, StorageError> {
        self.write(|s| {
            let id = s.study_id(name)?;
            drop_claim(s, id, key, by)?;
            let kind = match r {
                JournalRecord::Measurement { .. } => Some("measurement"),
                JournalRecord::Confirmed { .. } => Some("confirmed"),
                // A failure where another worker has measured (this one's lease ran out while
                // it was stopped) is not the configuration's result.
                JournalRecord::Failed { .. } => Some("measurement"),
                _ => None,
            };
            if let Some(kind) = kind {
                let done = s.query(
                    "SELECT id FROM edgetune_records WHERE study_id = $1 AND kind = $2 AND config = $3",
                    &[Val::I(id), Val::T(kind.into()), Val::T(config_key(&key.config))],
                )?;
                if !done.is_empty() {
                    // Another worker measured it after this one's lease ran out: written once.
                    return Ok(false);
                }
            }
            s.insert(id, r, by)?;
            Ok(true)
        })
    }

    fn release(&mut self, name: &str, key: &ClaimKey, by: &Origin) -> Result<(), StorageError> {
        self.write(|s| {
            let id = s.study_id(name)?;
            drop_claim(s, id, key, by)
        })
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::space::Config;
    use crate::study::storage::{create_or_open, open};

    fn header() -> StudyHeader {
        let cat = crate::catalog::Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        StudyHeader {
            model: "resnet18".into(),
            device: "nano".into(),
            backend: crate::device::BackendKind::Sim,
            strategy: "random".into(),
            seed: 1,
            budget: 3,
            baseline_batch: 4,
            protocol: Default::default(),
            space: crate::space::Space::new(b, m, None, &[]).unwrap(),
            goal: Default::default(),
            exploration: Default::default(),
            prior: String::new(),
            prior_grid: None,
            args: vec!["--model".into(), "resnet18".into()],
        }
    }

    fn origin(w: &str) -> Origin {
        Origin {
            board: format!("board-{w}"),
            worker: w.into(),
            backend: "sim".into(),
        }
    }

    fn measurement() -> crate::measure::Measurement {
        use crate::backend::sim::{Noise, SimBoard};
        let cat = crate::catalog::Catalog::load(None).unwrap();
        let (b, m) = (cat.board("nano").unwrap(), cat.model("resnet18").unwrap());
        let sim = SimBoard::new(b, Noise::Off);
        let (mut d, mut w) = (sim.device(), sim.workload(m).unwrap());
        // At the study's length: a stored measurement of another length is refused on reading.
        let p = crate::measure::ProtocolSettings {
            inferences: header().protocol.inferences,
            ..Default::default()
        };
        crate::measure::measure(&mut d, &mut w, &crate::device::FreqSetting::Dvfs, 4, &p).unwrap()
    }

    fn failed(c: Config) -> JournalRecord {
        JournalRecord::Failed {
            config: c,
            error: "x".into(),
        }
    }

    #[test]
    fn a_study_is_created_once_listed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("s.db").display());
        let mut s = create_or_open(&url).unwrap();
        s.create_study("a", &header()).unwrap();
        let e = s.create_study("a", &header()).unwrap_err();
        assert!(matches!(e, StorageError::Exists { .. }), "{e}");
        let c = Config::new(102_000, 76_800_000, 4);
        s.append("a", &failed(c), &origin("w1")).unwrap();
        let v = s.study("a").unwrap();
        assert_eq!(v.header, header());
        assert_eq!(v.records.len(), 1);
        assert_eq!(v.records[0].origin, origin("w1"));
        let l = s.list().unwrap();
        assert_eq!((l.len(), l[0].measured, l[0].boards), (1, 1, 1));
        assert!(matches!(s.study("b"), Err(StorageError::NoStudy { .. })));
    }

    #[test]
    fn a_claim_is_exclusive_until_its_lease_runs_out_and_a_result_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("s.db").display());
        let (mut a, mut b) = (create_or_open(&url).unwrap(), open(&url).unwrap());
        a.create_study("s", &header()).unwrap();
        let key = ClaimKey::explore(Config::new(102_000, 76_800_000, 4));
        let got = a
            .claim("s", &origin("a"), 0.4, &mut |v| {
                assert!(v.claims.is_empty());
                Choice::Measure(key)
            })
            .unwrap();
        assert_eq!(got, Choice::Measure(key));
        // b sees a's live claim, and a's heartbeat keeps it.
        b.claim("s", &origin("b"), 0.4, &mut |v| {
            assert_eq!(v.claims.len(), 1);
            assert_eq!(v.claims[0].origin.worker, "a");
            Choice::Wait
        })
        .unwrap();
        assert!(a.heartbeat("s", &key, &origin("a"), 0.4).unwrap());
        assert!(!b.heartbeat("s", &key, &origin("b"), 0.4).unwrap());
        // a goes silent: its lease runs out, b takes the configuration and writes it first.
        std::thread::sleep(std::time::Duration::from_millis(600));
        b.claim("s", &origin("b"), 5.0, &mut |v| {
            assert!(v.claims.is_empty());
            assert_eq!(v.expired.len(), 1);
            Choice::Measure(key)
        })
        .unwrap();
        let m = |c| JournalRecord::Measurement {
            config: c,
            measurement: measurement(),
        };
        assert!(b.complete("s", &key, &m(key.config), &origin("b")).unwrap());
        assert!(!a.complete("s", &key, &m(key.config), &origin("a")).unwrap());
        let v = a.study("s").unwrap();
        assert_eq!(v.records.len(), 1, "written once");
        assert!(v.claims.is_empty() && v.expired.is_empty());
    }

    #[test]
    fn a_late_failure_does_not_undo_another_worker_s_measurement() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("s.db").display());
        let mut s = create_or_open(&url).unwrap();
        s.create_study("s", &header()).unwrap();
        let key = ClaimKey::explore(Config::new(102_000, 76_800_000, 4));
        let m = JournalRecord::Measurement {
            config: key.config,
            measurement: measurement(),
        };
        assert!(s.complete("s", &key, &m, &origin("b")).unwrap());
        // Worker a's lease ran out while it was stopped; its workload then failed.
        assert!(!s
            .complete("s", &key, &failed(key.config), &origin("a"))
            .unwrap());
        let v = s.study("s").unwrap();
        assert_eq!(v.records.len(), 1);
        assert!(matches!(
            v.records[0].record,
            JournalRecord::Measurement { .. }
        ));
    }

    #[test]
    fn a_database_edgetune_did_not_make_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE notes (t TEXT)").unwrap();
        let url = format!("sqlite:{}", path.display());
        let e = create_or_open(&url).err().expect("refused");
        assert!(matches!(e, StorageError::NotOurs { .. }), "{e}");
        let tables: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!((tables, mode.as_str()), (1, "delete"));
        // Another program's `edgetune_schema`, and a file that is not a plain one.
        c.execute_batch("CREATE TABLE edgetune_schema (version TEXT); INSERT INTO edgetune_schema VALUES ('abc')")
            .unwrap();
        let e = open(&url).err().expect("refused");
        assert!(matches!(e, StorageError::SchemaUnknown { .. }), "{e}");
        assert!(matches!(
            open("sqlite:/dev/null"),
            Err(StorageError::NotOurs { .. })
        ));
        assert!(!std::path::Path::new("/dev/null-journal").exists());
        // Missing: only a new study makes the file.
        let gone = format!("sqlite:{}", dir.path().join("gone.db").display());
        assert!(matches!(open(&gone), Err(StorageError::NotOurs { .. })));
        assert!(!dir.path().join("gone.db").exists());
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let url = format!("sqlite:{}", path.display());
        drop(create_or_open(&url).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute("INSERT INTO edgetune_schema (version) VALUES (99)", [])
            .unwrap();
        let e = open(&url).err().expect("refused");
        assert!(
            matches!(
                e,
                StorageError::SchemaTooNew {
                    found: 99,
                    supported: SCHEMA_VERSION,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.is_usage());
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM edgetune_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2, "nothing altered");
    }
}
