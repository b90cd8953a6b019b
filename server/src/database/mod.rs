//! What the server must remember, behind one trait: the multipart uploads it created and has not
//! seen completed or aborted (and the places reserved for creations on their way), and each
//! user's uploads of the last 24 hours. Every change is atomic and written before the request
//! that made it is answered, so a restart, a crash or another instance loses nothing.
//!
//! Two implementations, each with its schema from `server/migrations/<name>/`, applied in order
//! at start: [`sqlite`] (embedded, one file, the default) and [`postgres`] (shared by many
//! instances). What the rules are (how many, how much) is decided by the callers
//! ([`crate::registry`], [`crate::auth::Quotas`]); a database only keeps counts and changes
//! atomic.

pub mod postgres;
pub mod sqlite;

use crate::policy::Refusal;
use crate::registry::OpenUpload;
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;

/// A reservation older than this was left by an instance that stopped between reserving a place
/// and creating the upload (a creation takes one store request): it no longer counts.
pub const RESERVATION_TTL_S: i64 = 600;

/// A user's quota charges in the window asked for: how many, and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub uploads: u64,
    pub bytes: u64,
}

/// The rule a quota charge must pass, given the user's usage before it.
pub type Admit<'a> = &'a (dyn Fn(Usage) -> Result<(), Refusal> + Send + Sync);

/// The server's state.
#[async_trait]
pub trait Database: Send + Sync {
    /// Records a reservation `placeholder` for one more upload of `owner`, if the owner holds
    /// fewer than `most` (open uploads and reservations younger than [`RESERVATION_TTL_S`]);
    /// says whether it was recorded. The count and the insert are atomic.
    async fn reserve(&self, placeholder: &str, owner: Option<&str>, most: usize, now: i64) -> Result<bool, Refusal>;

    /// Records `upload` as open under `upload_id`, in the place of reservation `placeholder`
    /// when given (atomically), or replacing a record of the same id (imports).
    async fn record(
        &self,
        placeholder: Option<&str>,
        upload_id: &str,
        upload: &OpenUpload,
        now: i64,
    ) -> Result<(), Refusal>;

    /// The open upload with this id (not a reservation).
    async fn upload(&self, upload_id: &str) -> Result<Option<OpenUpload>, Refusal>;

    /// Every open upload's id.
    async fn upload_ids(&self) -> Result<Vec<String>, Refusal>;

    /// Forgets an open upload or a reservation.
    async fn forget(&self, upload_id: &str) -> Result<(), Refusal>;

    /// Charges an upload of `bytes` to `user` if `admit` passes their usage since `since`
    /// (charges before it are dropped), atomically: parallel charges cannot both pass a limit
    /// that admits one of them.
    async fn charge(&self, user: &str, bytes: u64, since: i64, now: i64, admit: Admit<'_>) -> Result<(), Refusal>;

    /// Takes back the latest charge of `bytes` to `user`.
    async fn refund(&self, user: &str, bytes: u64) -> Result<(), Refusal>;
}

/// Opens what `--database` names: a `postgres://` (or `postgresql://`) URL, or an SQLite file
/// (`default_file` when none is given), created or brought up to date.
pub async fn open(spec: Option<&str>, default_file: &Path) -> Result<Arc<dyn Database>, String> {
    Ok(match spec {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(postgres::Postgres::connect(url).await?)
        }
        Some(file) => Arc::new(sqlite::Sqlite::open(Path::new(file))?),
        None => Arc::new(sqlite::Sqlite::open(default_file)?),
    })
}

/// A database failure, logged (without the query's values) and answered with 503: the request
/// may succeed later.
fn unavailable(error: impl std::fmt::Display) -> Refusal {
    eprintln!("reference-server: database: {error}");
    Refusal { status: 503, message: "the server's database failed; try again later".into() }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
