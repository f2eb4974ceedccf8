//! A projection's own sled store. Logical content: the model's entries (key -> value) and the
//! checkpoint. Physically two layers:
//!
//! - `s` + chunk number: a snapshot of sorted entries in chunks of about 4 MiB, written once
//!   by a rebuild (a million entries become a few dozen sled writes instead of a million);
//! - `m` + key: entries written by live commits, each overriding the snapshot (a tombstone
//!   marks a deleted key).
//!
//! Every commit writes its entries and the checkpoint in one atomic sled batch (docs/DESIGN.md rule 9).
//! `canonical_hash` is over the logical content, so a live store and a rebuild of the same
//! position hash the same whatever their layers.

use std::iter::Peekable;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::projection::Change;
use crate::ProjectorError;

/// What is wrong with a damaged store (or one a snapshot may not go into).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    #[error("checkpoint is not 8 bytes")]
    CheckpointSize,
    #[error("store format is not 4 bytes")]
    FormatSize,
    #[error("live entry without a valid marker")]
    EntryMarker,
    #[error("snapshot chunk truncated")]
    ChunkTruncated,
    #[error("snapshot keys out of order")]
    ChunkOrder,
    #[error("a snapshot is only written into an empty store")]
    SnapshotNotEmpty,
}

const DELTA_PREFIX: u8 = b'm';
const SNAPSHOT_PREFIX: u8 = b's';
const CHECKPOINT_KEY: &[u8] = b"c/checkpoint";
/// The projection's store format (`Projection::store_format`); absent reads as 0.
const FORMAT_KEY: &[u8] = b"c/format";
const PRESENT: u8 = 1;
const TOMBSTONE: u8 = 0;
/// Target size of one snapshot chunk.
pub const SNAPSHOT_CHUNK_BYTES: usize = 4 * 1024 * 1024;

pub struct ProjectionStore {
    db: sled::Db,
    path: PathBuf,
}

type Entry = (Vec<u8>, Vec<u8>);

impl ProjectionStore {
    pub fn open(path: &Path) -> Result<ProjectionStore, ProjectorError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(128 * 1024 * 1024)
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
            && self.db.scan_prefix([DELTA_PREFIX]).next().is_none()
            && self.db.scan_prefix([SNAPSHOT_PREFIX]).next().is_none())
    }

    /// Records the format of an empty store, durably.
    pub fn set_format(&self, format: u32) -> Result<(), ProjectorError> {
        self.db
            .insert(FORMAT_KEY, &format.to_be_bytes())
            .map_err(|e| self.store_error(e))?;
        self.flush()
    }

    /// The model's entries in key order: the snapshot overridden by live entries.
    pub fn model_entries(&self) -> impl Iterator<Item = Result<Entry, ProjectorError>> + '_ {
        let snapshot = self.snapshot_entries().peekable();
        let deltas = self
            .db
            .scan_prefix([DELTA_PREFIX])
            .map(move |entry| {
                let (key, value) = entry.map_err(|e| self.store_error(e))?;
                match value.split_first() {
                    Some((&PRESENT, rest)) => Ok((key[1..].to_vec(), Some(rest.to_vec()))),
                    Some((&TOMBSTONE, [])) => Ok((key[1..].to_vec(), None)),
                    _ => Err(self.corrupt(Corruption::EntryMarker)),
                }
            })
            .peekable();
        Merge { snapshot, deltas }
    }

    fn snapshot_entries(&self) -> impl Iterator<Item = Result<Entry, ProjectorError>> + '_ {
        self.db.scan_prefix([SNAPSHOT_PREFIX]).flat_map(
            move |chunk| -> Box<dyn Iterator<Item = Result<Entry, ProjectorError>>> {
                match chunk {
                    Err(e) => Box::new(std::iter::once(Err(self.store_error(e)))),
                    Ok((_, bytes)) => match decode_chunk(&bytes) {
                        Ok(entries) => Box::new(entries.into_iter().map(Ok)),
                        Err(reason) => Box::new(std::iter::once(Err(self.corrupt(reason)))),
                    },
                }
            },
        )
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
            stored_key.push(DELTA_PREFIX);
            stored_key.extend_from_slice(&key);
            let stored_value = match value {
                Some(value) => {
                    let mut stored = Vec::with_capacity(value.len() + 1);
                    stored.push(PRESENT);
                    stored.extend_from_slice(&value);
                    stored
                }
                None => vec![TOMBSTONE],
            };
            batch.insert(stored_key, stored_value);
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

    /// Writes the whole model as a snapshot, with its checkpoint, into an empty store.
    pub fn write_snapshot(
        &self,
        mut changes: Vec<Change>,
        checkpoint: u64,
    ) -> Result<(), ProjectorError> {
        if self.checkpoint()? != 0 || self.db.scan_prefix([DELTA_PREFIX]).next().is_some() {
            return Err(self.corrupt(Corruption::SnapshotNotEmpty));
        }
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut batch = sled::Batch::default();
        let mut chunk = Vec::new();
        let mut chunk_no = 0u32;
        let mut flush_chunk = |chunk: &mut Vec<u8>, batch: &mut sled::Batch| {
            let mut key = vec![SNAPSHOT_PREFIX];
            key.extend_from_slice(&chunk_no.to_be_bytes());
            batch.insert(key, std::mem::take(chunk));
            chunk_no += 1;
        };
        for (key, value) in changes {
            let Some(value) = value else { continue };
            for part in [&key, &value] {
                chunk.extend_from_slice(&(part.len() as u32).to_le_bytes());
                chunk.extend_from_slice(part);
            }
            if chunk.len() >= SNAPSHOT_CHUNK_BYTES {
                flush_chunk(&mut chunk, &mut batch);
            }
        }
        if !chunk.is_empty() {
            flush_chunk(&mut chunk, &mut batch);
        }
        batch.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes());
        self.db
            .apply_batch(batch)
            .map_err(|e| self.store_error(e))?;
        self.flush()
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

fn decode_chunk(bytes: &[u8]) -> Result<Vec<Entry>, Corruption> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    let take = |rest: &mut &[u8]| -> Result<Vec<u8>, Corruption> {
        let (len, tail) = rest.split_at_checked(4).ok_or(Corruption::ChunkTruncated)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (part, tail) = tail
            .split_at_checked(len)
            .ok_or(Corruption::ChunkTruncated)?;
        *rest = tail;
        Ok(part.to_vec())
    };
    while !rest.is_empty() {
        let key = take(&mut rest)?;
        let value = take(&mut rest)?;
        if entries.last().is_some_and(|(last, _): &Entry| *last >= key) {
            return Err(Corruption::ChunkOrder);
        }
        entries.push((key, value));
    }
    Ok(entries)
}

/// Merges the sorted snapshot with the sorted live entries; a live entry wins on equal keys.
struct Merge<S: Iterator, D: Iterator> {
    snapshot: Peekable<S>,
    deltas: Peekable<D>,
}

impl<S, D> Iterator for Merge<S, D>
where
    S: Iterator<Item = Result<Entry, ProjectorError>>,
    D: Iterator<Item = Result<(Vec<u8>, Option<Vec<u8>>), ProjectorError>>,
{
    type Item = Result<Entry, ProjectorError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.snapshot.peek(), self.deltas.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return self.snapshot.next(),
                (_, Some(Err(_))) => {
                    return match self.deltas.next() {
                        Some(Err(e)) => Some(Err(e)),
                        _ => None,
                    }
                }
                (Some(Ok(_)), None) => std::cmp::Ordering::Less,
                (None, Some(Ok(_))) => std::cmp::Ordering::Greater,
                (Some(Ok((s, _))), Some(Ok((d, _)))) => s.cmp(d),
            };
            match order {
                std::cmp::Ordering::Less => return self.snapshot.next(),
                std::cmp::Ordering::Equal => {
                    self.snapshot.next();
                }
                std::cmp::Ordering::Greater => {}
            }
            match self.deltas.next() {
                Some(Ok((key, Some(value)))) => return Some(Ok((key, value))),
                Some(Ok((_, None))) => continue,
                Some(Err(e)) => return Some(Err(e)),
                None => return None,
            }
        }
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
    fn live_entries_override_the_snapshot_and_hash_like_a_plain_store() {
        let dir = tempfile::tempdir().unwrap();
        let layered = ProjectionStore::open(&dir.path().join("a")).unwrap();
        layered
            .write_snapshot(
                vec![
                    kv("b", "1"),
                    kv("a", "0"),
                    kv("c", "2"),
                    (b"z".to_vec(), None),
                ],
                7,
            )
            .unwrap();
        layered
            .commit(
                vec![kv("b", "changed"), (b"c".to_vec(), None), kv("d", "3")],
                9,
                true,
            )
            .unwrap();
        let got = entries(&layered);
        let want: Vec<Entry> = vec![
            (b"a".to_vec(), b"0".to_vec()),
            (b"b".to_vec(), b"changed".to_vec()),
            (b"d".to_vec(), b"3".to_vec()),
        ];
        assert_eq!(got, want);
        let plain = ProjectionStore::open(&dir.path().join("b")).unwrap();
        plain
            .commit(
                vec![kv("a", "0"), kv("b", "changed"), kv("d", "3")],
                9,
                true,
            )
            .unwrap();
        assert_eq!(
            layered.canonical_hash().unwrap(),
            plain.canonical_hash().unwrap()
        );
        assert!(
            layered.write_snapshot(vec![], 10).is_err(),
            "a snapshot needs an empty store"
        );
    }

    #[test]
    fn big_snapshots_span_chunks_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProjectionStore::open(dir.path()).unwrap();
        let value = vec![7u8; 1000];
        let changes: Vec<Change> = (0..10_000u32)
            .rev()
            .map(|i| (i.to_be_bytes().to_vec(), Some(value.clone())))
            .collect();
        store.write_snapshot(changes, 1).unwrap();
        let got = entries(&store);
        assert_eq!(got.len(), 10_000);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn damaged_chunks_are_refused() {
        assert!(decode_chunk(&[1, 0, 0, 0]).is_err());
        assert!(decode_chunk(&[1, 0, 0, 0, b'a', 5, 0, 0, 0, 1]).is_err());
    }
}
