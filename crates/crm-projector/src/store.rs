//! A projection's own sled store: the model's entries under prefix `m`, the checkpoint
//! under `c`, written together in one atomic batch (design rule 9).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::projection::Change;
use crate::ProjectorError;

const MODEL_PREFIX: u8 = b'm';
const CHECKPOINT_KEY: &[u8] = b"c/checkpoint";

pub struct ProjectionStore {
    db: sled::Db,
    path: PathBuf,
}

impl ProjectionStore {
    pub fn open(path: &Path) -> Result<ProjectionStore, ProjectorError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
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
                .map_err(|_| ProjectorError::CorruptStore {
                    path: self.path.display().to_string(),
                    reason: "checkpoint is not 8 bytes".to_owned(),
                }),
        }
    }

    /// The model's entries in key order, prefix removed.
    pub fn model_entries(
        &self,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), ProjectorError>> + '_ {
        self.db.scan_prefix([MODEL_PREFIX]).map(move |entry| {
            let (key, value) = entry.map_err(|e| self.store_error(e))?;
            Ok((key[1..].to_vec(), value.to_vec()))
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
            let mut stored = Vec::with_capacity(key.len() + 1);
            stored.push(MODEL_PREFIX);
            stored.extend_from_slice(&key);
            match value {
                Some(value) => batch.insert(stored, value),
                None => batch.remove(stored),
            }
        }
        batch.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes());
        self.db
            .apply_batch(batch)
            .map_err(|e| self.store_error(e))?;
        if flush {
            self.db.flush().map_err(|e| self.store_error(e))?;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<(), ProjectorError> {
        self.db.flush().map(|_| ()).map_err(|e| self.store_error(e))
    }

    /// SHA-256 over every stored key and value in key order, checkpoint included: equal
    /// hashes mean byte-identical read models.
    pub fn canonical_hash(&self) -> Result<[u8; 32], ProjectorError> {
        let mut hasher = Sha256::new();
        for entry in self.db.iter() {
            let (key, value) = entry.map_err(|e| self.store_error(e))?;
            hasher.update((key.len() as u64).to_be_bytes());
            hasher.update(&key);
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(&value);
        }
        Ok(hasher.finalize().into())
    }
}
