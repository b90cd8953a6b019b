//! The state in SQLite: one file (`DATA_DIR/state.sqlite3` by default), for one instance (or
//! processes on one machine: writers wait for each other). `PRAGMA user_version` counts the
//! migrations applied.

use super::{Admit, Database, RESERVATION_TTL_S, Usage, unavailable};
use crate::policy::Refusal;
use crate::registry::OpenUpload;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use s3_direct_upload::checksum::ChecksumAlgorithm;
use std::path::Path;
use std::sync::Mutex;

/// The migrations, in order.
const MIGRATIONS: [&str; 2] = [
    include_str!("../../migrations/sqlite/0001_state.sql"),
    include_str!("../../migrations/sqlite/0002_reservation_index.sql"),
];

/// The database, one connection (SQLite serialises writers anyway).
pub struct Sqlite(Mutex<Connection>);

impl Sqlite {
    /// The database in `file`, created or brought up to date.
    pub fn open(file: &Path) -> Result<Sqlite, String> {
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
        Ok(Sqlite(Mutex::new(connection)))
    }

    /// Runs `work` on the connection. (Each call is short: the lock is held across no await.)
    fn with<T>(&self, work: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, Refusal> {
        let mut connection = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut connection).map_err(unavailable)
    }
}

#[async_trait]
impl Database for Sqlite {
    async fn reserve(&self, placeholder: &str, owner: Option<&str>, most: usize, now: i64) -> Result<bool, Refusal> {
        self.with(|c| {
            let transaction = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            transaction
                .execute("DELETE FROM open_uploads WHERE reserved = 1 AND created < ?1", [now - RESERVATION_TTL_S])?;
            let taken = transaction.execute(
                "INSERT INTO open_uploads (upload_id, reserved, object_key, size, owner, created)
                 SELECT ?1, 1, '', 0, ?2, ?3
                 WHERE (SELECT COUNT(*) FROM open_uploads WHERE owner IS ?2) < ?4",
                params![placeholder, owner, now, most as i64],
            )?;
            transaction.commit()?;
            Ok(taken == 1)
        })
    }

    async fn record(
        &self,
        placeholder: Option<&str>,
        upload_id: &str,
        upload: &OpenUpload,
        now: i64,
    ) -> Result<(), Refusal> {
        self.with(|c| {
            let transaction = c.transaction()?;
            if let Some(placeholder) = placeholder {
                transaction.execute("DELETE FROM open_uploads WHERE upload_id = ?1", [placeholder])?;
            }
            transaction.execute(
                "INSERT OR REPLACE INTO open_uploads
                 (upload_id, reserved, object_key, size, part_size, checksum_algorithm, owner, created)
                 VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    upload_id,
                    upload.key,
                    upload.size as i64,
                    upload.part_size.map(|s| s as i64),
                    upload.checksum_algorithm.map(ChecksumAlgorithm::as_str),
                    upload.owner,
                    now
                ],
            )?;
            transaction.commit()
        })
    }

    async fn upload(&self, upload_id: &str) -> Result<Option<OpenUpload>, Refusal> {
        self.with(|c| {
            c.query_row(
                "SELECT object_key, size, part_size, checksum_algorithm, owner FROM open_uploads
                 WHERE upload_id = ?1 AND reserved = 0",
                [upload_id],
                |row| {
                    Ok(OpenUpload {
                        key: row.get(0)?,
                        size: row.get::<_, i64>(1)? as u64,
                        part_size: row.get::<_, Option<i64>>(2)?.map(|s| s as u64),
                        checksum_algorithm: row.get::<_, Option<String>>(3)?.and_then(|a| ChecksumAlgorithm::parse(&a)),
                        owner: row.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    async fn upload_ids(&self) -> Result<Vec<String>, Refusal> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT upload_id FROM open_uploads WHERE reserved = 0")?;
            statement.query_map([], |row| row.get(0))?.collect()
        })
    }

    async fn forget(&self, upload_id: &str) -> Result<(), Refusal> {
        self.with(|c| c.execute("DELETE FROM open_uploads WHERE upload_id = ?1", [upload_id])).map(|_| ())
    }

    async fn charge(&self, user: &str, bytes: u64, since: i64, now: i64, admit: Admit<'_>) -> Result<(), Refusal> {
        self.with(|c| {
            // IMMEDIATE: the write lock first, so no other writer comes between count and charge.
            let transaction = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            transaction.execute("DELETE FROM quota_charges WHERE user = ?1 AND at <= ?2", params![user, since])?;
            let (uploads, total): (i64, i64) = transaction.query_row(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM quota_charges WHERE user = ?1",
                [user],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            if let Err(refusal) = admit(Usage { uploads: uploads as u64, bytes: total as u64 }) {
                return Ok(Err(refusal));
            }
            transaction.execute(
                "INSERT INTO quota_charges (user, at, bytes) VALUES (?1, ?2, ?3)",
                params![user, now, bytes as i64],
            )?;
            transaction.commit()?;
            Ok(Ok(()))
        })?
    }

    async fn refund(&self, user: &str, bytes: u64) -> Result<(), Refusal> {
        self.with(|c| {
            c.execute(
                "DELETE FROM quota_charges WHERE id =
                 (SELECT id FROM quota_charges WHERE user = ?1 AND bytes = ?2 ORDER BY id DESC LIMIT 1)",
                params![user, bytes as i64],
            )
        })
        .map(|_| ())
    }
}
