//! PostgreSQL through the pure-Rust `postgres` client (no TLS: a lab network, or a tunnel).

use super::base::StorageError;
use super::sql::{Conn, Dialect, Val};
use postgres::types::{ToSql, Type};

/// A PostgreSQL connection.
pub(super) struct Postgres {
    client: postgres::Client,
}

impl Postgres {
    /// Connects to `url` (`postgresql://user:password@host:port/db` or key=value pairs).
    pub fn connect(url: &str) -> Result<Postgres, StorageError> {
        let client =
            postgres::Client::connect(url, postgres::NoTls).map_err(|e| StorageError::Db {
                url: super::base::redact(url),
                message: format!("connecting: {e}"),
            })?;
        Ok(Postgres { client })
    }
}

fn params(p: &[Val]) -> Vec<Box<dyn ToSql + Sync>> {
    p.iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                Val::I(i) => Box::new(*i),
                Val::F(f) => Box::new(*f),
                Val::T(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

impl Conn for Postgres {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn batch(&mut self, sql: &str) -> Result<(), String> {
        self.client.batch_execute(sql).map_err(|e| e.to_string())
    }

    fn exec(&mut self, sql: &str, p: &[Val]) -> Result<u64, String> {
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        self.client.execute(sql, &refs).map_err(|e| e.to_string())
    }

    fn query(&mut self, sql: &str, p: &[Val]) -> Result<Vec<Vec<Val>>, String> {
        let boxed = params(p);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let rows = self.client.query(sql, &refs).map_err(|e| e.to_string())?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let t = row.columns()[i].type_().clone();
                        let v = if t == Type::INT8 {
                            row.try_get::<_, Option<i64>>(i)
                                .map(|v| Val::I(v.unwrap_or(0)))
                        } else if t == Type::INT4 {
                            row.try_get::<_, Option<i32>>(i)
                                .map(|v| Val::I(v.unwrap_or(0) as i64))
                        } else if t == Type::FLOAT8 {
                            row.try_get::<_, Option<f64>>(i)
                                .map(|v| Val::F(v.unwrap_or(0.0)))
                        } else {
                            row.try_get::<_, Option<String>>(i)
                                .map(|v| Val::T(v.unwrap_or_default()))
                        };
                        v.map_err(|e| e.to_string())
                    })
                    .collect()
            })
            .collect()
    }
}
