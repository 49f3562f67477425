//! SQLite through rusqlite, compiled from SQLite's bundled source (no system library). One file
//! on one machine: workers on that machine (or on a shared filesystem with working locks) share
//! it; boards on a network use PostgreSQL.

use super::base::StorageError;
use super::sql::{Conn, Dialect, Val};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use std::path::{Path, PathBuf};

/// A SQLite connection.
pub(super) struct Sqlite {
    conn: rusqlite::Connection,
    path: PathBuf,
    /// The file opened (device, inode): a file removed or replaced under a running worker is
    /// noticed at its next transaction instead of taking its results.
    file: (u64, u64),
}

impl Sqlite {
    /// Opens the database file; `create`: makes it when it is missing (`study create`, a new
    /// `tune --storage` study). A file that is not a plain file (`/dev/null`) and another
    /// program's database are refused before anything is written to them.
    pub fn open(url: &str, path: &Path, create: bool) -> Result<Sqlite, StorageError> {
        let err = |e: rusqlite::Error| StorageError::Db {
            url: url.into(),
            message: e.to_string(),
        };
        let refuse = |message: String| StorageError::NotOurs {
            url: url.into(),
            message,
        };
        match path.metadata() {
            Ok(m) if !m.is_file() => {
                return Err(refuse("it is not a plain file".into()));
            }
            Err(_) if !create => {
                return Err(refuse(
                    "there is no database there; `edgetune study create` makes one".into(),
                ))
            }
            _ => {}
        }
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        // Another program's file: tables, none of them edgetune's.
        let foreign: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'edgetune\\_%' ESCAPE '\\') > 0 AND (SELECT COUNT(*) FROM sqlite_master WHERE name = 'edgetune_schema') = 0",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        if foreign != 0 {
            return Err(refuse(
                "it holds another program's tables and none of edgetune's; give edgetune a database of its own".into(),
            ));
        }
        let file = identity(path).map_err(|e| refuse(e.to_string()))?;
        // Writers wait for each other rather than fail; WAL lets readers go on meanwhile.
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
            file,
        })
    }
}

/// A file's (device, inode).
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = path.metadata()?;
    Ok((m.dev(), m.ino()))
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::I(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Val::F(f) => ToSqlOutput::Owned(Value::Real(*f)),
            Val::T(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

impl Conn for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn check(&self) -> Result<(), String> {
        match identity(&self.path) {
            Ok(f) if f == self.file => Ok(()),
            _ => Err(format!(
                "{} was removed or replaced while edgetune had it open; what was written since is not in it",
                self.path.display()
            )),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), String> {
        self.conn.execute_batch(sql).map_err(|e| e.to_string())
    }

    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, String> {
        self.conn
            .execute(sql, rusqlite::params_from_iter(params.iter()))
            .map(|n| n as u64)
            .map_err(|e| e.to_string())
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        let mut st = self.conn.prepare(sql).map_err(|e| e.to_string())?;
        let n = st.column_count();
        let rows = st
            .query_map(rusqlite::params_from_iter(params.iter()), |row| {
                (0..n)
                    .map(|i| {
                        Ok(match row.get_ref(i)? {
                            ValueRef::Integer(v) => Val::I(v),
                            ValueRef::Real(v) => Val::F(v),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                Val::T(String::from_utf8_lossy(t).into_owned())
                            }
                            ValueRef::Null => Val::T(String::new()),
                        })
                    })
                    .collect::<rusqlite::Result<Vec<Val>>>()
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| e.to_string())
    }
}
