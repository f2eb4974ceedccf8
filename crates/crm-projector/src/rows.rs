//! The read path of a projection store: what a store-backed [`crate::Table`] reads rows
//! through. Reads happen inside folds and queries, which are infallible by design (a fold is
//! total); so a read that fails (an I/O error of sled, a row that does not decode) is
//! recorded here, sticky, and the row reads as absent. The runtime checks after every applied
//! page and every answered query: a failed read stops the projector (`failed` in its status)
//! and turns the query's answer into an `unavailable` refusal, so no answer built on a missing
//! row goes out.

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use crate::store::{PRESENT, ROW_PREFIX, TOMBSTONE};
use crate::table::TableError;

/// A handle on a projection store's rows; cheap to clone (sled's handle is shared).
#[derive(Clone)]
pub struct StoreRows {
    db: sled::Db,
    shared: Arc<Shared>,
}

struct Shared {
    path: String,
    /// Bytes of decoded rows a read model keeps cached, split between its tables.
    cache_bytes: usize,
    failure: Mutex<Option<TableError>>,
}

impl std::fmt::Debug for StoreRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreRows")
            .field("path", &self.shared.path)
            .field("cache_bytes", &self.shared.cache_bytes)
            .finish()
    }
}

/// One stored row: its key (without the table's prefix is the caller's business) and value.
pub(crate) type RawRow = (sled::IVec, sled::IVec);

impl StoreRows {
    pub(crate) fn new(db: sled::Db, path: String, cache_bytes: usize) -> StoreRows {
        StoreRows {
            db,
            shared: Arc::new(Shared {
                path,
                cache_bytes,
                failure: Mutex::new(None),
            }),
        }
    }

    /// The cache budget of the whole read model.
    pub fn cache_bytes(&self) -> usize {
        self.shared.cache_bytes
    }

    /// The first read that failed, if any (it stays: the store is not to be trusted after it).
    pub fn failure(&self) -> Option<TableError> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn fail(&self, error: TableError) {
        let mut failure = self
            .shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            tracing::error!(store = %self.shared.path, error = %error, "projection store read failed");
            *failure = Some(error);
        }
    }

    fn sled_failure(&self, error: sled::Error) {
        self.fail(TableError::Store {
            path: self.shared.path.clone(),
            reason: error.to_string(),
        });
    }

    /// Every row in key order, for a model small enough to load whole at open (a failed read
    /// ends the iteration and is recorded, like any other).
    pub fn entries(&self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
        self.range(Bound::Unbounded, Bound::Unbounded)
            .map(|(key, value)| (key.to_vec(), value.to_vec()))
    }

    /// The value of the row at `key` (`<table>/<key>`), without its marker.
    pub(crate) fn get(&self, key: &[u8]) -> Option<sled::IVec> {
        let mut stored = Vec::with_capacity(key.len() + 1);
        stored.push(ROW_PREFIX);
        stored.extend_from_slice(key);
        match self.db.get(stored) {
            Ok(Some(value)) => self.unmark(key, value),
            Ok(None) => None,
            Err(e) => {
                self.sled_failure(e);
                None
            }
        }
    }

    /// The rows with keys in `(from, to)` (`<table>/<key>` each), in key order; keys come
    /// back without the store's row prefix, values without their marker.
    pub(crate) fn range(
        &self,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> impl Iterator<Item = RawRow> + '_ {
        self.range_in(from, to, false)
    }

    /// [`StoreRows::range`], last key first.
    pub(crate) fn range_rev(
        &self,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
    ) -> impl Iterator<Item = RawRow> + '_ {
        self.range_in(from, to, true)
    }

    fn range_in(
        &self,
        from: Bound<Vec<u8>>,
        to: Bound<Vec<u8>>,
        reverse: bool,
    ) -> impl Iterator<Item = RawRow> + '_ {
        let prefixed = |bound: Bound<Vec<u8>>| {
            bound.map(|key| {
                let mut stored = Vec::with_capacity(key.len() + 1);
                stored.push(ROW_PREFIX);
                stored.extend_from_slice(&key);
                stored
            })
        };
        let from = match from {
            Bound::Unbounded => Bound::Included(vec![ROW_PREFIX]),
            bounded => prefixed(bounded),
        };
        // Past every row: the byte after the row prefix.
        let to = match to {
            Bound::Unbounded => Bound::Excluded(vec![ROW_PREFIX + 1]),
            bounded => prefixed(bounded),
        };
        let entries = self.db.range::<Vec<u8>, _>((from, to));
        let entries: Box<dyn Iterator<Item = sled::Result<RawRow>>> = if reverse {
            Box::new(entries.rev())
        } else {
            Box::new(entries)
        };
        entries
            .map_while(move |entry| match entry {
                Ok(entry) => Some(entry),
                Err(e) => {
                    self.sled_failure(e);
                    None
                }
            })
            .filter_map(move |(key, value)| {
                let key = key.subslice(1, key.len() - 1);
                let value = self.unmark(&key, value)?;
                Some((key, value))
            })
    }

    fn unmark(&self, key: &[u8], value: sled::IVec) -> Option<sled::IVec> {
        match value.first() {
            Some(&PRESENT) => Some(value.subslice(1, value.len() - 1)),
            Some(&TOMBSTONE) if value.len() == 1 => None,
            _ => {
                self.fail(TableError::Decode {
                    table: "?",
                    key: String::from_utf8_lossy(key).into_owned(),
                    reason: "the stored row has no valid marker".into(),
                });
                None
            }
        }
    }
}
