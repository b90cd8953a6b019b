//! The multipart uploads this backend created and has not seen completed or aborted, with a
//! limit per user, kept in a journal file (one JSON line per change, compacted at start) so
//! that a restarted backend still signs the parts of uploads begun before.

use s3_direct_upload::checksum::ChecksumAlgorithm;
use s3_direct_upload::plan::PartPlan;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

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

/// One line of the journal.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Change {
    Opened { id: String, upload: OpenUpload },
    Closed { id: String },
}

#[derive(Default)]
struct Uploads {
    by_id: HashMap<String, OpenUpload>,
    /// Open uploads plus admitted creations still on their way to the store, per owner.
    held: HashMap<Option<String>, usize>,
}

/// Open uploads by upload id.
pub struct Registry {
    uploads: Mutex<Uploads>,
    file: PathBuf,
    most_per_user: usize,
}

/// A place for one more open upload of a user, taken before the store is asked to create it so
/// that parallel creations cannot overshoot the limit; given back when dropped unless
/// [`Registry::insert`] turned it into an open upload.
pub struct Reservation<'a> {
    registry: &'a Registry,
    owner: Option<String>,
    used: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.used {
            let mut uploads = self.registry.uploads.lock().expect("lock");
            release(&mut uploads.held, &self.owner);
        }
    }
}

fn release(held: &mut HashMap<Option<String>, usize>, owner: &Option<String>) {
    if let Some(count) = held.get_mut(owner) {
        *count = count.saturating_sub(1);
    }
}

impl Registry {
    /// The registry kept in `file`, with what an earlier run left there, allowing each user
    /// `most_per_user` open uploads. Unreadable lines are skipped (the worst case is that an old
    /// upload can no longer be signed for); the file is rewritten with the open uploads alone.
    pub fn open(file: PathBuf, most_per_user: usize) -> Self {
        let mut uploads = Uploads::default();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for change in text.lines().filter_map(|line| serde_json::from_str::<Change>(line).ok()) {
            match change {
                Change::Opened { id, upload } => uploads.by_id.insert(id, upload),
                Change::Closed { id } => uploads.by_id.remove(&id),
            };
        }
        for upload in uploads.by_id.values() {
            *uploads.held.entry(upload.owner.clone()).or_default() += 1;
        }
        let registry = Registry { uploads: Mutex::new(uploads), file, most_per_user };
        registry.compact();
        registry
    }

    /// The upload with this id.
    pub fn get(&self, upload_id: &str) -> Option<OpenUpload> {
        self.uploads.lock().expect("lock").by_id.get(upload_id).cloned()
    }

    /// Upload ids, for the test hooks.
    pub fn ids(&self) -> Vec<String> {
        self.uploads.lock().expect("lock").by_id.keys().cloned().collect()
    }

    /// A place for one more upload of `owner`, or `None` when they hold their limit.
    pub fn reserve(&self, owner: Option<&str>) -> Option<Reservation<'_>> {
        let owner = owner.map(str::to_owned);
        let mut uploads = self.uploads.lock().expect("lock");
        let held = uploads.held.entry(owner.clone()).or_default();
        if *held >= self.most_per_user {
            return None;
        }
        *held += 1;
        Some(Reservation { registry: self, owner, used: false })
    }

    /// The most open uploads a user may hold.
    pub fn most_per_user(&self) -> usize {
        self.most_per_user
    }

    /// Records a new upload in the place `reservation` kept for it.
    pub fn insert(&self, mut reservation: Reservation<'_>, upload_id: String, upload: OpenUpload) {
        reservation.used = true;
        let line = Change::Opened { id: upload_id.clone(), upload: upload.clone() };
        self.uploads.lock().expect("lock").by_id.insert(upload_id, upload);
        self.append(&line);
    }

    /// Forgets a completed or aborted upload.
    pub fn remove(&self, upload_id: &str) {
        let mut uploads = self.uploads.lock().expect("lock");
        if let Some(upload) = uploads.by_id.remove(upload_id) {
            release(&mut uploads.held, &upload.owner);
            drop(uploads);
            self.append(&Change::Closed { id: upload_id.to_owned() });
        }
    }

    /// Appends one change to the journal: one short write, whatever the number of open uploads.
    /// A failed write is reported and otherwise ignored: the registry in memory stays right for
    /// this run.
    fn append(&self, change: &Change) {
        let mut line = serde_json::to_vec(change).expect("plain data");
        line.push(b'\n');
        let written =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.file).and_then(|mut f| f.write_all(&line));
        if let Err(e) = written {
            eprintln!("reference-server: could not write the open-upload registry {}: {e}", self.file.display());
        }
    }

    /// Rewrites the journal with the open uploads alone (a temporary file renamed over the old
    /// one, so a crash never leaves half of it).
    fn compact(&self) {
        let uploads = self.uploads.lock().expect("lock");
        let mut text = Vec::new();
        for (id, upload) in &uploads.by_id {
            let change = Change::Opened { id: id.clone(), upload: upload.clone() };
            text.extend(serde_json::to_vec(&change).expect("plain data"));
            text.push(b'\n');
        }
        let temporary = self.file.with_extension("tmp");
        let written = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &self.file));
        if let Err(e) = written {
            eprintln!("reference-server: could not rewrite the open-upload registry {}: {e}", self.file.display());
        }
    }
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

    #[test]
    fn open_uploads_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("registry-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("open-uploads.jsonl");
        let first = Registry::open(file.clone(), 10);
        first.insert(first.reserve(None).unwrap(), "u1".into(), upload("uploads/a", None));
        first.insert(first.reserve(Some("bob")).unwrap(), "u2".into(), upload("uploads/b", Some("bob")));
        first.remove("u2");
        drop(first);
        let journal = std::fs::read_to_string(&file).unwrap();
        assert_eq!(journal.lines().count(), 3, "one line per change: {journal}");
        let restarted = Registry::open(file.clone(), 10);
        assert_eq!(restarted.get("u1"), Some(upload("uploads/a", None)));
        assert_eq!((restarted.get("u2"), restarted.ids().len()), (None, 1));
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1, "compacted at start");
        std::fs::write(&file, b"not json\n").unwrap();
        assert_eq!(Registry::open(file, 10).ids().len(), 0, "a damaged line is skipped");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn each_user_holds_at_most_their_limit_and_dropped_reservations_come_back() {
        let dir = std::env::temp_dir().join(format!("registry-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let registry = Registry::open(dir.join("open.jsonl"), 2);
        let first = registry.reserve(Some("alice")).unwrap();
        let second = registry.reserve(Some("alice")).unwrap();
        assert!(registry.reserve(Some("alice")).is_none(), "two creations on their way fill the limit");
        assert!(registry.reserve(Some("bob")).is_some(), "another user has their own");
        drop(second);
        registry.insert(first, "a1".into(), upload("uploads/alice/a", Some("alice")));
        let third = registry.reserve(Some("alice")).unwrap();
        registry.insert(third, "a2".into(), upload("uploads/alice/b", Some("alice")));
        assert!(registry.reserve(Some("alice")).is_none());
        registry.remove("a1");
        assert!(registry.reserve(Some("alice")).is_some(), "a completed upload frees its place");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
