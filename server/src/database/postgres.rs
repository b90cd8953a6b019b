//! The state in PostgreSQL (`--database postgres://…`), shared by every instance of the server.
//! Counts and their inserts are made atomic across instances by a transaction-scoped advisory
//! lock per user (a plain `INSERT … WHERE (SELECT COUNT(*) …) < N` is not: under READ COMMITTED
//! two of them can both see N - 1). The table `schema_migrations` lists the migrations applied;
//! instances starting together apply them once, one after the other.

use super::{Admit, Database, RESERVATION_TTL_S, Usage, unavailable};
use crate::policy::Refusal;
use crate::registry::OpenUpload;
use async_trait::async_trait;
use deadpool_postgres::{Config, ManagerConfig, Pool, RecyclingMethod, Runtime};
use s3_direct_upload::checksum::ChecksumAlgorithm;
use tokio_postgres::NoTls;

/// The migrations, in order.
const MIGRATIONS: [&str; 1] = [include_str!("../../migrations/postgres/0001_state.sql")];

/// Advisory lock keys: migrations (one, for all), and per user for reservations and charges.
const MIGRATION_LOCK: i64 = 0x5333_4455_0001;
const RESERVE_SEED: i64 = 1;
const CHARGE_SEED: i64 = 2;

/// A pool of connections to the database.
pub struct Postgres(Pool);

impl Postgres {
    /// Connects to `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Postgres, String> {
        let mut config = Config::new();
        config.url = Some(url.to_owned());
        config.manager = Some(ManagerConfig { recycling_method: RecyclingMethod::Fast });
        // The URL may hold a password: errors name the database, not the URL.
        let failed = |e: &dyn std::fmt::Display| format!("the PostgreSQL database: {e}");
        let pool = config.create_pool(Some(Runtime::Tokio1), NoTls).map_err(|e| failed(&e))?;
        let mut client = pool.get().await.map_err(|e| failed(&e))?;
        let transaction = client.transaction().await.map_err(|e| failed(&e))?;
        transaction
            .batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
                 CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)"
            ))
            .await
            .map_err(|e| failed(&e))?;
        let applied: i32 = transaction
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
            .await
            .map_err(|e| failed(&e))?
            .get(0);
        for (number, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            transaction.batch_execute(migration).await.map_err(|e| failed(&e))?;
            let version = number as i32 + 1;
            transaction
                .execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&version])
                .await
                .map_err(|e| failed(&e))?;
        }
        transaction.commit().await.map_err(|e| failed(&e))?;
        drop(client);
        Ok(Postgres(pool))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, Refusal> {
        self.0.get().await.map_err(unavailable)
    }
}

#[async_trait]
impl Database for Postgres {
    async fn reserve(&self, placeholder: &str, owner: Option<&str>, most: usize, now: i64) -> Result<bool, Refusal> {
        let mut client = self.client().await?;
        let run = async {
            let transaction = client.transaction().await?;
            let owner_key = owner.unwrap_or("");
            transaction
                .execute("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", &[&owner_key, &RESERVE_SEED])
                .await?;
            transaction
                .execute("DELETE FROM open_uploads WHERE reserved AND created < $1", &[&(now - RESERVATION_TTL_S)])
                .await?;
            // `owner = $1` (not `IS NOT DISTINCT FROM`, which no index serves).
            let held = match owner {
                Some(owner) => {
                    transaction.query_one("SELECT COUNT(*) FROM open_uploads WHERE owner = $1", &[&owner]).await?
                }
                None => transaction.query_one("SELECT COUNT(*) FROM open_uploads WHERE owner IS NULL", &[]).await?,
            };
            let held: i64 = held.get(0);
            if held >= most as i64 {
                return Ok(false);
            }
            transaction
                .execute(
                    "INSERT INTO open_uploads (upload_id, reserved, object_key, size, owner, created)
                     VALUES ($1, true, '', 0, $2, $3)",
                    &[&placeholder, &owner, &now],
                )
                .await?;
            transaction.commit().await?;
            Ok::<_, tokio_postgres::Error>(true)
        };
        run.await.map_err(unavailable)
    }

    async fn record(
        &self,
        placeholder: Option<&str>,
        upload_id: &str,
        upload: &OpenUpload,
        now: i64,
    ) -> Result<(), Refusal> {
        let mut client = self.client().await?;
        let run = async {
            let transaction = client.transaction().await?;
            if let Some(placeholder) = placeholder {
                transaction.execute("DELETE FROM open_uploads WHERE upload_id = $1", &[&placeholder]).await?;
            }
            transaction
                .execute(
                    "INSERT INTO open_uploads
                     (upload_id, reserved, object_key, size, part_size, checksum_algorithm, owner, created)
                     VALUES ($1, false, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (upload_id) DO UPDATE SET reserved = false, object_key = $2, size = $3,
                       part_size = $4, checksum_algorithm = $5, owner = $6, created = $7",
                    &[
                        &upload_id,
                        &upload.key,
                        &(upload.size as i64),
                        &upload.part_size.map(|s| s as i64),
                        &upload.checksum_algorithm.map(ChecksumAlgorithm::as_str),
                        &upload.owner,
                        &now,
                    ],
                )
                .await?;
            transaction.commit().await
        };
        run.await.map_err(unavailable)
    }

    async fn upload(&self, upload_id: &str) -> Result<Option<OpenUpload>, Refusal> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT object_key, size, part_size, checksum_algorithm, owner FROM open_uploads
                 WHERE upload_id = $1 AND NOT reserved",
                &[&upload_id],
            )
            .await
            .map_err(unavailable)?;
        Ok(row.map(|row| OpenUpload {
            key: row.get(0),
            size: row.get::<_, i64>(1) as u64,
            part_size: row.get::<_, Option<i64>>(2).map(|s| s as u64),
            checksum_algorithm: row.get::<_, Option<String>>(3).and_then(|a| ChecksumAlgorithm::parse(&a)),
            owner: row.get(4),
        }))
    }

    async fn upload_ids(&self) -> Result<Vec<String>, Refusal> {
        let client = self.client().await?;
        let rows =
            client.query("SELECT upload_id FROM open_uploads WHERE NOT reserved", &[]).await.map_err(unavailable)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    async fn forget(&self, upload_id: &str) -> Result<(), Refusal> {
        let client = self.client().await?;
        client.execute("DELETE FROM open_uploads WHERE upload_id = $1", &[&upload_id]).await.map_err(unavailable)?;
        Ok(())
    }

    async fn charge(&self, user: &str, bytes: u64, since: i64, now: i64, admit: Admit<'_>) -> Result<(), Refusal> {
        let mut client = self.client().await?;
        let run = async {
            let transaction = client.transaction().await?;
            transaction
                .execute("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", &[&user, &CHARGE_SEED])
                .await?;
            transaction
                .execute(r#"DELETE FROM quota_charges WHERE "user" = $1 AND at <= $2"#, &[&user, &since])
                .await?;
            let row = transaction
                .query_one(
                    r#"SELECT COUNT(*), COALESCE(SUM(bytes), 0)::BIGINT FROM quota_charges WHERE "user" = $1"#,
                    &[&user],
                )
                .await?;
            let usage = Usage { uploads: row.get::<_, i64>(0) as u64, bytes: row.get::<_, i64>(1) as u64 };
            if let Err(refusal) = admit(usage) {
                return Ok(Err(refusal));
            }
            transaction
                .execute(
                    r#"INSERT INTO quota_charges ("user", at, bytes) VALUES ($1, $2, $3)"#,
                    &[&user, &now, &(bytes as i64)],
                )
                .await?;
            transaction.commit().await?;
            Ok::<_, tokio_postgres::Error>(Ok(()))
        };
        run.await.map_err(unavailable)?
    }

    async fn refund(&self, user: &str, bytes: u64) -> Result<(), Refusal> {
        let client = self.client().await?;
        client
            .execute(
                r#"DELETE FROM quota_charges WHERE id =
                   (SELECT id FROM quota_charges WHERE "user" = $1 AND bytes = $2 ORDER BY id DESC LIMIT 1)"#,
                &[&user, &(bytes as i64)],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
