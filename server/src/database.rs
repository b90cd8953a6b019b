//! The server's state in SQLite: one file (`DATA_DIR/state.sqlite3` by default), its schema
//! from the migrations in `server/migrations/`, applied in order at start (`PRAGMA user_version`
//! counts those applied). Every change is one statement or one transaction, so it is atomic, and
//! written before the request that made it is answered, so a restart (or a crash) loses nothing.

use crate::policy::Refusal;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Mutex;

/// The migrations, in order.
const MIGRATIONS: [&str; 1] = [include_str!("../migrations/0001_state.sql")];

/// The database, one connection (SQLite serialises writers anyway).
pub struct Database(Mutex<Connection>);

impl Database {
    /// The database in `file`, created or brought up to date.
    pub fn open(file: &Path) -> Result<Database, String> {
        let failed = |e: rusqlite::Error| format!("the database {}: {e}", file.display());
        let mut connection = Connection::open(file).map_err(failed)?;
        // Writers wait for each other (another process on the same file) instead of failing.
        connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(failed)?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(failed)?;
        let applied: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(failed)?;
        for (number, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            let transaction = connection.transaction().map_err(failed)?;
            transaction.execute_batch(migration).map_err(failed)?;
            transaction.pragma_update(None, "user_version", number + 1).map_err(failed)?;
            transaction.commit().map_err(failed)?;
        }
        Ok(Database(Mutex::new(connection)))
    }

    /// Runs `work` on the connection; a database failure is a 503 (the request may succeed later).
    pub fn with<T>(&self, work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, Refusal> {
        let mut connection = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut connection).map_err(|e| {
            eprintln!("reference-server: database: {e}");
            Refusal { status: 503, message: "the server's database failed; try again later".into() }
        })
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
