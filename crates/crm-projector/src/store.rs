//! A projection's own sled store: the model's rows (key -> value) and the checkpoint. Each row
//! is its own sled key, `m` + the row's key, so a read model reads any row without holding the
//! others in memory (`rows.rs` is that read path). Every commit writes its rows and the
//! checkpoint in one atomic sled batch (docs/DESIGN.md rule 9); a rebuild commits the same way,
//! in large unflushed batches, and flushes once at the end. `canonical_hash` is over the logical
//! content, so a live store and a rebuild of the same position hash the same.
//!
//! Stores written before this layout kept rebuilt models as sorted snapshot chunks (`s` +
//! chunk number) and deletions as tombstones: a store that still holds chunks is refused as
//! legacy (`open_root` rebuilds it from the log); tombstones still read as absent rows.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::projection::Change;
pub use crate::rows::StoreRows;
use crate::ProjectorError;

/// What is wrong with a damaged store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("checkpoint is not 8 bytes")]
    CheckpointSize,
    #[error("store format is not 4 bytes")]
    FormatSize,
    #[error("live entry without a valid marker")]
    EntryMarker,
    #[error("the store holds snapshot chunks of an earlier layout; rebuild the read model")]
    LegacySnapshot,
    #[error("a replay goes into an empty store")]
    NotEmpty,
}

pub(crate) const ROW_PREFIX: u8 = b'm';
/// Snapshot chunks of the earlier layout (only looked for, never written).
const LEGACY_SNAPSHOT_PREFIX: u8 = b's';
const CHECKPOINT_KEY: &[u8] = b"c/checkpoint";
/// The projection's store format (`Projection::store_format`); absent reads as 0.
const FORMAT_KEY: &[u8] = b"c/format";
pub(crate) const PRESENT: u8 = 1;
pub(crate) const TOMBSTONE: u8 = 0;
/// sled's page cache of one projection store unless configured otherwise.
pub const STORE_CACHE_BYTES_DEFAULT: u64 = 32 * 1024 * 1024;

pub struct ProjectionStore {
    db: sled::Db,
    path: PathBuf,
}

type Entry = (Vec<u8>, Vec<u8>);

impl ProjectionStore {
    pub fn open(path: &Path) -> Result<ProjectionStore, ProjectorError> {
        ProjectionStore::open_with_cache(path, STORE_CACHE_BYTES_DEFAULT)
    }

    /// Opens with `cache_bytes` of sled page cache.
    pub fn open_with_cache(
        path: &Path,
        cache_bytes: u64,
    ) -> Result<ProjectionStore, ProjectorError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|source| ProjectorError::Store {
                path: path.display().to_string(),
                source,
            })?;
        Ok(ProjectionStore {
            db,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn store_error(&self, source: sled::Error) -> ProjectorError {
        ProjectorError::Store {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn corrupt(&self, reason: Corruption) -> ProjectorError {
        ProjectorError::CorruptStore {
            path: self.path.display().to_string(),
            reason,
        }
    }

    /// The last log position the stored model reflects (0: nothing applied).
    pub fn checkpoint(&self) -> Result<u64, ProjectorError> {
        match self
            .db
            .get(CHECKPOINT_KEY)
            .map_err(|e| self.store_error(e))?
        {
            None => Ok(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| self.corrupt(Corruption::CheckpointSize)),
        }
    }

    /// The format the stored entries are written in (0 when never set).
    pub fn format(&self) -> Result<u32, ProjectorError> {
        match self.db.get(FORMAT_KEY).map_err(|e| self.store_error(e))? {
            None => Ok(0),
            Some(bytes) => <[u8; 4]>::try_from(bytes.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| self.corrupt(Corruption::FormatSize)),
        }
    }

    /// True when nothing was ever committed: no checkpoint and no entries.
    pub fn is_empty(&self) -> Result<bool, ProjectorError> {
        Ok(self.checkpoint()? == 0
            && self.db.scan_prefix([ROW_PREFIX]).next().is_none()
            && !self.is_legacy())
    }

    /// True when the store holds snapshot chunks of the earlier layout.
    pub fn is_legacy(&self) -> bool {
        self.db
            .scan_prefix([LEGACY_SNAPSHOT_PREFIX])
            .next()
            .is_some()
    }

    /// The rows as a read model reads them, with a cache of `cache_bytes` per model.
    pub fn rows(&self, cache_bytes: usize) -> StoreRows {
        StoreRows::new(
            self.db.clone(),
            self.path.display().to_string(),
            cache_bytes,
        )
    }

    /// Records the format of an empty store, durably.
    pub fn set_format(&self, format: u32) -> Result<(), ProjectorError> {
        self.db
            .insert(FORMAT_KEY, &format.to_be_bytes())
            .map_err(|e| self.store_error(e))?;
        self.flush()
    }

    /// The model's rows in key order.
    pub fn model_entries(&self) -> impl Iterator<Item = Result<Entry, ProjectorError>> + '_ {
        self.db
            .scan_prefix([ROW_PREFIX])
            .filter_map(move |entry| match entry {
                Err(e) => Some(Err(self.store_error(e))),
                Ok((key, value)) => match value.split_first() {
                    Some((&PRESENT, rest)) => Some(Ok((key[1..].to_vec(), rest.to_vec()))),
                    Some((&TOMBSTONE, [])) => None,
                    _ => Some(Err(self.corrupt(Corruption::EntryMarker))),
                },
            })
    }

    /// Writes the model's changes and the new checkpoint atomically; `flush` makes it durable
    /// before returning.
    pub fn commit(
        &self,
        changes: Vec<Change>,
        checkpoint: u64,
        flush: bool,
    ) -> Result<(), ProjectorError> {
        let mut batch = sled::Batch::default();
        for (key, value) in changes {
            let mut stored_key = Vec::with_capacity(key.len() + 1);
            stored_key.push(ROW_PREFIX);
            stored_key.extend_from_slice(&key);
            match value {
                Some(value) => {
                    let mut stored = Vec::with_capacity(value.len() + 1);
                    stored.push(PRESENT);
                    stored.extend_from_slice(&value);
                    batch.insert(stored_key, stored);
                }
                None => batch.remove(stored_key),
            }
        }
        batch.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes());
        self.db
            .apply_batch(batch)
            .map_err(|e| self.store_error(e))?;
        if flush {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<(), ProjectorError> {
        self.db.flush().map(|_| ()).map_err(|e| self.store_error(e))
    }

    /// SHA-256 over every logical entry in key order and the checkpoint: equal hashes mean
    /// byte-identical read models.
    pub fn canonical_hash(&self) -> Result<[u8; 32], ProjectorError> {
        let mut hasher = Sha256::new();
        for entry in self.model_entries() {
            let (key, value) = entry?;
            hasher.update((key.len() as u64).to_be_bytes());
            hasher.update(&key);
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(&value);
        }
        hasher.update(b"checkpoint");
        hasher.update(self.checkpoint()?.to_be_bytes());
        Ok(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(store: &ProjectionStore) -> Vec<Entry> {
        store.model_entries().collect::<Result<_, _>>().unwrap()
    }

    fn kv(k: &str, v: &str) -> Change {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    #[test]
    fn commits_write_and_delete_rows_and_hash_the_logical_content() {
        let dir = tempfile::tempdir().unwrap();
        let twice = ProjectionStore::open(&dir.path().join("a")).unwrap();
        twice
            .commit(vec![kv("a", "0"), kv("b", "1"), kv("c", "2")], 7, false)
            .unwrap();
        twice
            .commit(
                vec![kv("b", "changed"), (b"c".to_vec(), None), kv("d", "3")],
                9,
                true,
            )
            .unwrap();
        let want: Vec<Entry> = vec![
            (b"a".to_vec(), b"0".to_vec()),
            (b"b".to_vec(), b"changed".to_vec()),
            (b"d".to_vec(), b"3".to_vec()),
        ];
        assert_eq!(entries(&twice), want);
        let once = ProjectionStore::open(&dir.path().join("b")).unwrap();
        once.commit(
            vec![kv("a", "0"), kv("b", "changed"), kv("d", "3")],
            9,
            true,
        )
        .unwrap();
        assert_eq!(
            twice.canonical_hash().unwrap(),
            once.canonical_hash().unwrap()
        );
    }

    #[test]
    fn tombstones_of_the_earlier_layout_read_as_absent_and_chunks_as_legacy() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProjectionStore::open(dir.path()).unwrap();
        store.db.insert(b"mgone", &[TOMBSTONE]).unwrap();
        store.db.insert(b"mkept", &[PRESENT, b'1']).unwrap();
        assert_eq!(entries(&store), vec![(b"kept".to_vec(), b"1".to_vec())]);
        assert!(!store.is_legacy());
        store.db.insert(b"s\0\0\0\0", &[]).unwrap();
        assert!(store.is_legacy());
        store.db.insert(b"mbad", &[7]).unwrap();
        assert!(store.model_entries().any(|e| e.is_err()));
    }
}
