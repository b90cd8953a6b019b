//! The multipart uploads this backend created and has not seen completed or aborted, kept in a
//! JSON file so that a restarted backend still signs the parts of uploads begun before.

use s3_direct_upload::checksum::ChecksumAlgorithm;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// An upload this backend created: the key it chose and the size it admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenUpload {
    /// Object key.
    pub key: String,
    /// Declared file size in bytes.
    pub size: u64,
    /// The checksum algorithm the upload was created with; its parts are signed only with one.
    #[serde(default)]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// The user who created it (`None` without authentication); only they may go on with it.
    #[serde(default)]
    pub owner: Option<String>,
}

/// Open uploads by upload id, mirrored to a file after every change.
pub struct Registry {
    uploads: Mutex<HashMap<String, OpenUpload>>,
    file: PathBuf,
}

impl Registry {
    /// The registry kept in `file`, with what an earlier run left there (an unreadable file
    /// counts as empty: the worst case is that old uploads can no longer be signed for).
    pub fn open(file: PathBuf) -> Self {
        let uploads =
            std::fs::read(&file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
        Registry { uploads: Mutex::new(uploads), file }
    }

    /// The upload with this id.
    pub fn get(&self, upload_id: &str) -> Option<OpenUpload> {
        self.uploads.lock().expect("lock").get(upload_id).cloned()
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.uploads.lock().expect("lock").len()
    }

    /// Upload ids, for the test hooks.
    pub fn ids(&self) -> Vec<String> {
        self.uploads.lock().expect("lock").keys().cloned().collect()
    }

    /// Records a new upload.
    pub fn insert(&self, upload_id: String, upload: OpenUpload) {
        let mut uploads = self.uploads.lock().expect("lock");
        uploads.insert(upload_id, upload);
        self.save(&uploads);
    }

    /// Forgets a completed or aborted upload.
    pub fn remove(&self, upload_id: &str) {
        let mut uploads = self.uploads.lock().expect("lock");
        if uploads.remove(upload_id).is_some() {
            self.save(&uploads);
        }
    }

    /// Writes the file whole (a temporary file renamed over the old one), so a crash never
    /// leaves half of it. A failed write is reported and otherwise ignored: the registry in
    /// memory stays right for this run.
    fn save(&self, uploads: &HashMap<String, OpenUpload>) {
        let temporary = self.file.with_extension("json.tmp");
        let written = serde_json::to_vec(uploads)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|()| std::fs::rename(&temporary, &self.file));
        if let Err(e) = written {
            eprintln!("reference-server: could not save the open-upload registry to {}: {e}", self.file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_uploads_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("registry-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("open-uploads.json");
        let first = Registry::open(file.clone());
        first.insert(
            "u1".into(),
            OpenUpload {
                key: "uploads/a".into(),
                size: 7,
                checksum_algorithm: Some(ChecksumAlgorithm::Crc32c),
                owner: None,
            },
        );
        first.insert(
            "u2".into(),
            OpenUpload { key: "uploads/b".into(), size: 9, checksum_algorithm: None, owner: Some("bob".into()) },
        );
        first.remove("u2");
        drop(first);
        let restarted = Registry::open(file.clone());
        assert_eq!(
            restarted.get("u1"),
            Some(OpenUpload {
                key: "uploads/a".into(),
                size: 7,
                checksum_algorithm: Some(ChecksumAlgorithm::Crc32c),
                owner: None
            })
        );
        assert_eq!((restarted.get("u2"), restarted.len()), (None, 1));
        std::fs::write(&file, b"not json").unwrap();
        assert_eq!(Registry::open(file).len(), 0, "a damaged file counts as empty");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
