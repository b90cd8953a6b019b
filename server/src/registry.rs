//! The multipart uploads this backend created and has not seen completed or aborted, with a
//! limit per user, kept in the database ([`Database`]) so that a restarted backend still signs
//! the parts of uploads begun before. The journal file of earlier versions is imported once.

use crate::database::{Database, unix_now};
use crate::policy::Refusal;
use rand::Rng;
use rusqlite::{OptionalExtension, params};
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

/// One line of the journal the previous version kept (`open-uploads.jsonl`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Change {
    Opened { id: String, upload: OpenUpload },
    Closed { id: String },
}

/// Open uploads by upload id.
pub struct Registry {
    db: Arc<Database>,
    most_per_user: usize,
}

/// A place for one more open upload of a user, taken before the store is asked to create it so
/// that parallel creations cannot overshoot the limit: a `reserved` row, counted like an open
/// upload. Given back when dropped unless [`Registry::insert`] turned it into the open upload.
pub struct Reservation<'a> {
    registry: &'a Registry,
    placeholder: String,
    used: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.used {
            let _ = self
                .registry
                .db
                .with(|c| c.execute("DELETE FROM open_uploads WHERE upload_id = ?1", [&self.placeholder]));
        }
    }
}

impl Registry {
    /// The registry in `db`, allowing each user `most_per_user` open uploads. Reservations a
    /// stopped server left are dropped. The registry files of earlier versions in `data_dir`
    /// (`open-uploads.json`, one JSON object of uploads by id; then `open-uploads.jsonl`, a
    /// journal of changes) are imported, unreadable parts skipped, and renamed `*.imported`, so
    /// each is read once.
    pub fn open(db: Arc<Database>, most_per_user: usize, data_dir: &Path) -> Result<Self, String> {
        let registry = Registry { db, most_per_user };
        let failed = |r: Refusal| r.message;
        registry.db.with(|c| c.execute("DELETE FROM open_uploads WHERE reserved = 1", [])).map_err(failed)?;
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
            registry
                .db
                .with(|c| {
                    let transaction = c.transaction()?;
                    for (id, upload) in &open {
                        insert_row(&transaction, id, upload)?;
                    }
                    transaction.commit()
                })
                .map_err(failed)?;
            let imported = data_dir.join(format!("{name}.imported"));
            std::fs::rename(&file, &imported).map_err(|e| format!("renaming {}: {e}", file.display()))?;
            eprintln!("reference-server: imported {} open uploads from {}", open.len(), file.display());
        }
        Ok(registry)
    }

    /// The upload with this id.
    pub fn get(&self, upload_id: &str) -> Result<Option<OpenUpload>, Refusal> {
        self.db.with(|c| {
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

    /// Upload ids, for the test hooks.
    pub fn ids(&self) -> Result<Vec<String>, Refusal> {
        self.db.with(|c| {
            let mut statement = c.prepare("SELECT upload_id FROM open_uploads WHERE reserved = 0")?;
            statement.query_map([], |row| row.get(0))?.collect()
        })
    }

    /// A place for one more upload of `owner`, or `None` when they hold their limit. One
    /// statement: the count and the insert cannot be split by a parallel creation.
    pub fn reserve(&self, owner: Option<&str>) -> Result<Option<Reservation<'_>>, Refusal> {
        let placeholder = format!("reserved:{:032x}", rand::rng().random::<u128>());
        let taken = self.db.with(|c| {
            c.execute(
                "INSERT INTO open_uploads (upload_id, reserved, object_key, size, owner, created)
                 SELECT ?1, 1, '', 0, ?2, ?3
                 WHERE (SELECT COUNT(*) FROM open_uploads WHERE owner IS ?2) < ?4",
                params![placeholder, owner, unix_now(), self.most_per_user as i64],
            )
        })?;
        Ok((taken == 1).then(|| Reservation { registry: self, placeholder, used: false }))
    }

    /// The most open uploads a user may hold.
    pub fn most_per_user(&self) -> usize {
        self.most_per_user
    }

    /// Records a new upload in the place `reservation` kept for it.
    pub fn insert(
        &self,
        mut reservation: Reservation<'_>,
        upload_id: String,
        upload: OpenUpload,
    ) -> Result<(), Refusal> {
        self.db.with(|c| {
            let transaction = c.transaction()?;
            transaction.execute("DELETE FROM open_uploads WHERE upload_id = ?1", [&reservation.placeholder])?;
            insert_row(&transaction, &upload_id, &upload)?;
            transaction.commit()
        })?;
        reservation.used = true;
        Ok(())
    }

    /// Forgets a completed or aborted upload.
    pub fn remove(&self, upload_id: &str) -> Result<(), Refusal> {
        self.db.with(|c| c.execute("DELETE FROM open_uploads WHERE upload_id = ?1", [upload_id])).map(|_| ())
    }
}

/// Records `upload` as open under `id` (not a reservation).
fn insert_row(c: &rusqlite::Connection, id: &str, upload: &OpenUpload) -> rusqlite::Result<usize> {
    c.execute(
        "INSERT OR REPLACE INTO open_uploads
         (upload_id, reserved, object_key, size, part_size, checksum_algorithm, owner, created)
         VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            upload.key,
            upload.size as i64,
            upload.part_size.map(|s| s as i64),
            upload.checksum_algorithm.map(ChecksumAlgorithm::as_str),
            upload.owner,
            unix_now()
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn open(dir: &Path, most: usize) -> Registry {
        let db = Arc::new(Database::open(&dir.join("state.sqlite3")).unwrap());
        Registry::open(db, most, dir).unwrap()
    }

    #[test]
    fn open_uploads_survive_a_restart_and_an_old_journal_is_imported_once() {
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
        let first = open(&dir, 10);
        assert_eq!(first.get("old1").unwrap(), Some(upload("uploads/old", None)), "imported from the journal");
        assert_eq!(first.get("old0").unwrap(), Some(upload("uploads/oldest", None)), "and from the older file");
        assert_eq!(first.get("old2").unwrap(), None, "closed in the journal");
        for name in ["open-uploads.json", "open-uploads.jsonl"] {
            assert!(!dir.join(name).exists() && dir.join(format!("{name}.imported")).exists(), "{name} renamed");
        }
        first
            .insert(first.reserve(Some("bob")).unwrap().unwrap(), "u2".into(), upload("uploads/b", Some("bob")))
            .unwrap();
        std::mem::forget(first.reserve(Some("bob")).unwrap().unwrap()); // as a killed server leaves it
        drop(first);
        let restarted = open(&dir, 10);
        assert_eq!(restarted.get("u2").unwrap(), Some(upload("uploads/b", Some("bob"))));
        let mut ids = restarted.ids().unwrap();
        ids.sort();
        assert_eq!(
            ids,
            ["old0", "old1", "u2"],
            "a reservation the stopped server left is dropped; nothing imported twice"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn each_user_holds_at_most_their_limit_and_dropped_reservations_come_back() {
        let dir = temp_dir("registry-limit");
        let registry = open(&dir, 2);
        let first = registry.reserve(Some("alice")).unwrap().unwrap();
        let second = registry.reserve(Some("alice")).unwrap().unwrap();
        assert!(registry.reserve(Some("alice")).unwrap().is_none(), "two creations on their way fill the limit");
        assert!(registry.reserve(Some("bob")).unwrap().is_some(), "another user has their own");
        assert!(registry.reserve(None).unwrap().is_some(), "and so has the anonymous user");
        drop(second);
        registry.insert(first, "a1".into(), upload("uploads/alice/a", Some("alice"))).unwrap();
        let third = registry.reserve(Some("alice")).unwrap().unwrap();
        registry.insert(third, "a2".into(), upload("uploads/alice/b", Some("alice"))).unwrap();
        assert!(registry.reserve(Some("alice")).unwrap().is_none());
        registry.remove("a1").unwrap();
        assert!(registry.reserve(Some("alice")).unwrap().is_some(), "a completed upload frees its place");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn parallel_reservations_cannot_overshoot_the_limit() {
        let dir = temp_dir("registry-parallel");
        let registry = open(&dir, 3);
        let taken = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    if let Some(place) = registry.reserve(Some("carol")).unwrap() {
                        taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::mem::forget(place);
                    }
                });
            }
        });
        assert_eq!(taken.into_inner(), 3);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
