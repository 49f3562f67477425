//! SQLite through rusqlite, compiled from SQLite's bundled source (no system library). One file
//! on one machine: workers on that machine (or on a shared filesystem with working locks) share
//! it; boards on a network use PostgreSQL.

use super::sql::{Conn, Dialect, Val};
use super::StorageError;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use std::path::Path;

/// A SQLite connection.
pub(super) struct Sqlite {
    conn: rusqlite::Connection,
}

impl Sqlite {
    /// Opens (creating) the database file.
    pub fn open(url: &str, path: &Path) -> Result<Sqlite, StorageError> {
        let err = |e: rusqlite::Error| StorageError::Db {
            url: url.into(),
            message: e.to_string(),
        };
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        // Writers wait for each other rather than fail; WAL lets readers go on meanwhile.
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        Ok(Sqlite { conn })
    }
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
