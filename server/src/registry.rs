//! The multipart uploads this backend created and has not seen completed or aborted, with a
//! limit per user, kept in the database ([`Database`]) so that a restarted backend, or another
//! instance, still signs the parts of uploads begun before. The registry files of earlier
//! versions are imported once.

use crate::database::{Database, unix_now};
use crate::policy::Refusal;
use rand::Rng;
use s3_direct_upload::checksum::ChecksumAlgorithm;
use s3_direct_upload::plan::PartPlan;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// An upload this backend created: the key it chose and the size it admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUpload {
    /// Object key.
    pub key: String,
    /// Declared file size in bytes.
    pub size: u64,
    /// The part size the page declared (`None` in records from before it was kept: the
    /// default plan's).
    #[serde(default)]
    pub part_size: Option<u64>,
    /// The checksum algorithm the upload was created with; its parts are signed only with one.
    #[serde(default)]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// The user who created it (`None` without authentication); only they may go on with it.
    #[serde(default)]
    pub owner: Option<String>,
}

impl OpenUpload {
    /// How the upload is cut into parts: each part's exact length, as signed. (A record that
    /// plans no valid upload, from an older registry, has no parts to sign.)
    pub fn plan(&self) -> PartPlan {
        PartPlan::for_multipart(self.size, self.part_size).unwrap_or(PartPlan { size: 0, part_size: 0, count: 0 })
    }
}

/// One line of the journal an earlier version kept (`open-uploads.jsonl`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Change {
    Opened { id: String, upload: OpenUpload },
    Closed { id: String },
}

/// Open uploads by upload id.
pub struct Registry {
    db: Arc<dyn Database>,
    most_per_user: usize,
}

/// A place for one more open upload of a user, taken before the store is asked to create it so
/// that parallel creations cannot overshoot the limit: a reservation, counted like an open
/// upload. Given back when dropped unless [`Registry::insert`] turned it into the open upload
/// (and, if its instance stops first, no longer counted after
/// [`crate::database::RESERVATION_TTL_S`]).
pub struct Reservation {
    db: Arc<dyn Database>,
    placeholder: String,
    used: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.used {
            let (db, placeholder) = (self.db.clone(), std::mem::take(&mut self.placeholder));
            tokio::spawn(async move { db.forget(&placeholder).await });
        }
    }
}

impl Registry {
    /// The registry in `db`, allowing each user `most_per_user` open uploads. The registry files
    /// of earlier versions in `data_dir` (`open-uploads.json`, one JSON object of uploads by id;
    /// then `open-uploads.jsonl`, a journal of changes) are imported, unreadable parts skipped,
    /// and renamed `*.imported`, so each is read once.
    pub async fn open(db: Arc<dyn Database>, most_per_user: usize, data_dir: &Path) -> Result<Self, String> {
        let registry = Registry { db, most_per_user };
        for (name, journal) in [("open-uploads.json", false), ("open-uploads.jsonl", true)] {
            let file = data_dir.join(name);
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            let mut open: std::collections::BTreeMap<String, OpenUpload> =
                if journal { Default::default() } else { serde_json::from_str(&text).unwrap_or_default() };
            for change in text.lines().filter(|_| journal).filter_map(|line| serde_json::from_str::<Change>(line).ok())
            {
                match change {
                    Change::Opened { id, upload } => open.insert(id, upload),
                    Change::Closed { id } => open.remove(&id),
                };
            }
            // Each record replaces one of the same id: an import cut short is done again whole.
            for (id, upload) in &open {
                registry.db.record(None, id, upload, unix_now()).await.map_err(|r| r.message)?;
            }
            let imported = data_dir.join(format!("{name}.imported"));
            std::fs::rename(&file, &imported).map_err(|e| format!("renaming {}: {e}", file.display()))?;
            eprintln!("reference-server: imported {} open uploads from {}", open.len(), file.display());
        }
        Ok(registry)
    }

    /// The upload with this id.
    pub async fn get(&self, upload_id: &str) -> Result<Option<OpenUpload>, Refusal> {
        self.db.upload(upload_id).await
    }

    /// Upload ids, for the test hooks.
    pub async fn ids(&self) -> Result<Vec<String>, Refusal> {
        self.db.upload_ids().await
    }

    /// A place for one more upload of `owner`, or `None` when they hold their limit.
    pub async fn reserve(&self, owner: Option<&str>) -> Result<Option<Reservation>, Refusal> {
        let placeholder = format!("reserved:{:032x}", rand::rng().random::<u128>());
        let taken = self.db.reserve(&placeholder, owner, self.most_per_user, unix_now()).await?;
        Ok(taken.then(|| Reservation { db: self.db.clone(), placeholder, used: false }))
    }

    /// The most open uploads a user may hold.
    pub fn most_per_user(&self) -> usize {
        self.most_per_user
    }

    /// Records a new upload in the place `reservation` kept for it.
    pub async fn insert(
        &self,
        mut reservation: Reservation,
        upload_id: String,
        upload: OpenUpload,
    ) -> Result<(), Refusal> {
        self.db.record(Some(&reservation.placeholder), &upload_id, &upload, unix_now()).await?;
        reservation.used = true;
        Ok(())
    }

    /// Forgets a completed or aborted upload.
    pub async fn remove(&self, upload_id: &str) -> Result<(), Refusal> {
        self.db.forget(upload_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::{RESERVATION_TTL_S, sqlite::Sqlite};

    fn upload(key: &str, owner: Option<&str>) -> OpenUpload {
        OpenUpload {
            key: key.into(),
            size: 7,
            part_size: Some(5 << 20),
            checksum_algorithm: Some(ChecksumAlgorithm::Crc32c),
            owner: owner.map(str::to_owned),
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}-{:x}", std::process::id(), rand::rng().random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn database(dir: &Path) -> Arc<dyn Database> {
        Arc::new(Sqlite::open(&dir.join("state.sqlite3")).unwrap())
    }

    async fn open(dir: &Path, most: usize) -> Registry {
        Registry::open(database(dir), most, dir).await.unwrap()
    }

    #[tokio::test]
    async fn open_uploads_survive_a_restart_and_an_old_journal_is_imported_once() {
        let dir = temp_dir("registry-restart");
        let journal = [
            r#"{"opened":{"id":"old1","upload":{"key":"uploads/old","size":7,"part_size":5242880,"checksum_algorithm":"CRC32C","owner":null}}}"#,
            r#"{"opened":{"id":"old2","upload":{"key":"uploads/gone","size":7}}}"#,
            r#"{"closed":{"id":"old2"}}"#,
            "not json",
        ];
        std::fs::write(dir.join("open-uploads.jsonl"), journal.join("\n")).unwrap();
        let oldest = r#"{"old0":{"key":"uploads/oldest","size":7,"part_size":5242880,"checksum_algorithm":"CRC32C"}}"#;
        std::fs::write(dir.join("open-uploads.json"), oldest).unwrap();
        let first = open(&dir, 10).await;
        assert_eq!(first.get("old1").await.unwrap(), Some(upload("uploads/old", None)), "imported from the journal");
        assert_eq!(first.get("old0").await.unwrap(), Some(upload("uploads/oldest", None)), "and from the older file");
        assert_eq!(first.get("old2").await.unwrap(), None, "closed in the journal");
        for name in ["open-uploads.json", "open-uploads.jsonl"] {
            assert!(!dir.join(name).exists() && dir.join(format!("{name}.imported")).exists(), "{name} renamed");
        }
        let place = first.reserve(Some("bob")).await.unwrap().unwrap();
        first.insert(place, "u2".into(), upload("uploads/b", Some("bob"))).await.unwrap();
        std::mem::forget(first.reserve(Some("bob")).await.unwrap().unwrap()); // as a killed server leaves it
        drop(first);
        let restarted = open(&dir, 10).await;
        assert_eq!(restarted.get("u2").await.unwrap(), Some(upload("uploads/b", Some("bob"))));
        let mut ids = restarted.ids().await.unwrap();
        ids.sort();
        assert_eq!(ids, ["old0", "old1", "u2"], "a reservation is no open upload; nothing imported twice");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn each_user_holds_at_most_their_limit_and_dropped_reservations_come_back() {
        let dir = temp_dir("registry-limit");
        let registry = open(&dir, 2).await;
        let first = registry.reserve(Some("alice")).await.unwrap().unwrap();
        let second = registry.reserve(Some("alice")).await.unwrap().unwrap();
        assert!(registry.reserve(Some("alice")).await.unwrap().is_none(), "two creations on their way fill the limit");
        assert!(registry.reserve(Some("bob")).await.unwrap().is_some(), "another user has their own");
        assert!(registry.reserve(None).await.unwrap().is_some(), "and so has the anonymous user");
        drop(second);
        tokio::task::yield_now().await; // the reservation is given back by a task
        registry.insert(first, "a1".into(), upload("uploads/alice/a", Some("alice"))).await.unwrap();
        let third = registry.reserve(Some("alice")).await.unwrap().expect("the dropped reservation came back");
        registry.insert(third, "a2".into(), upload("uploads/alice/b", Some("alice"))).await.unwrap();
        assert!(registry.reserve(Some("alice")).await.unwrap().is_none());
        registry.remove("a1").await.unwrap();
        assert!(registry.reserve(Some("alice")).await.unwrap().is_some(), "a completed upload frees its place");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_reservation_left_by_a_stopped_instance_stops_counting_after_its_time() {
        let dir = temp_dir("registry-stale");
        let db = database(&dir);
        let now = unix_now();
        assert!(db.reserve("left-behind", Some("dan"), 1, now - RESERVATION_TTL_S - 1).await.unwrap());
        assert!(db.reserve("fresh", Some("erin"), 1, now - 5).await.unwrap());
        assert!(db.reserve("next", Some("dan"), 1, now).await.unwrap(), "the stale one no longer holds dan's place");
        assert!(!db.reserve("more", Some("erin"), 1, now).await.unwrap(), "a fresh one (another instance's) does");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_reservations_cannot_overshoot_the_limit() {
        let dir = temp_dir("registry-parallel");
        let registry = Arc::new(open(&dir, 3).await);
        let tries = (0..12).map(|_| {
            let registry = registry.clone();
            tokio::spawn(async move { registry.reserve(Some("carol")).await.unwrap().map(std::mem::forget).is_some() })
        });
        let taken = futures::future::join_all(tries).await.into_iter().filter(|t| *t.as_ref().unwrap()).count();
        assert_eq!(taken, 3);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
