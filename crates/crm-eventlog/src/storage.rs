//! The small storage interface the log sits on (docs/DESIGN.md rule 7). This is the only module that
//! talks to sled; the log above it deals in keys and byte values only, so the record format is
//! ours and the log could move to another ordered key-value store.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{LogError, StorageError};
use crate::layout;

/// Name of the lock file inside the data directory.
pub const LOCK_FILE_NAME: &str = "eventlog.lock";
/// Name of the sled directory inside the data directory.
pub const SLED_DIR_NAME: &str = "sled";

/// How long `open` retries when sled's own file lock is still held by a log of this process
/// that is shutting down (we already hold our lock file, so nobody else can hold it).
const SLED_LOCK_RETRY_MS_MAX: u64 = 5_000;

/// A value read from the store.
pub(crate) type Value = sled::IVec;

/// Exclusive ownership of a data directory, held for the life of the log.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the directory's lock or fails at once with `LogError::Locked`.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, LogError> {
        let io_err = |path: PathBuf| move |source| LogError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io_err(dir.to_path_buf()))?;
        let path = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(path.clone()))?;
        // An advisory lock (flock on Linux, as with fs2 before), so a second opener gets
        // `LogError::Locked` rather than sled's untyped I/O error. Released when `file` closes.
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LogError::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(source)) => Err(LogError::Io { path, source }),
        }
    }
}

/// The ordered key-value store under the log: one sled tree.
pub(crate) struct Store {
    // Dropped after `tree`, so the database closes when the last handle goes.
    tree: sled::Tree,
    _db: sled::Db,
    fail_flush: AtomicBool,
}

impl Store {
    pub(crate) fn open(dir: &Path, cache_bytes: u64) -> Result<Store, LogError> {
        let path = dir.join(SLED_DIR_NAME);
        let config = sled::Config::new().path(&path).cache_capacity(cache_bytes);
        let started = Instant::now();
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                // sled reports its lock as a plain I/O error. We hold the directory lock, so a
                // holder can only be a log of this process whose background threads are still
                // closing: wait a little for it.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && started.elapsed() < Duration::from_millis(SLED_LOCK_RETRY_MS_MAX) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(StorageError::new("opening sled", e).into()),
            }
        };
        let tree = db
            .open_tree(layout::TREE_NAME)
            .map_err(|e| StorageError::new("opening the log tree", e))?;
        Ok(Store {
            tree,
            _db: db,
            fail_flush: AtomicBool::new(false),
        })
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Value>, StorageError> {
        self.tree
            .get(key)
            .map_err(|e| StorageError::new("reading a key", e))
    }

    /// Entries with `start <= key < end`, in key order.
    pub(crate) fn range(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(Value, Value), StorageError>> {
        self.tree
            .range(start.to_vec()..end.to_vec())
            .map(|r| r.map_err(|e| StorageError::new("iterating a range", e)))
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub(crate) fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(Value, Value), StorageError>> {
        self.tree
            .scan_prefix(prefix)
            .map(|r| r.map_err(|e| StorageError::new("scanning a prefix", e)))
    }

    /// Applies every write of the batch atomically: after a crash all of it or none is there.
    pub(crate) fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.tree
            .apply_batch(batch.inner)
            .map_err(|e| StorageError::new("applying a batch", e))
    }

    /// Makes everything applied so far durable (fsync).
    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        if self.fail_flush.load(Ordering::Acquire) {
            return Err(StorageError::new(
                "flushing",
                sled::Error::Io(std::io::Error::other("injected flush failure")),
            ));
        }
        self.tree
            .flush()
            .map(drop)
            .map_err(|e| StorageError::new("flushing", e))
    }

    pub(crate) fn inject_flush_failure(&self, fail: bool) {
        self.fail_flush.store(fail, Ordering::Release);
    }
}

/// Writes collected for one atomic [`Store::apply`].
#[derive(Default)]
pub(crate) struct WriteBatch {
    inner: sled::Batch,
    writes: usize,
}

impl WriteBatch {
    pub(crate) fn insert(&mut self, key: impl Into<Value>, value: impl Into<Value>) {
        self.inner.insert(key, value);
        self.writes += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.writes == 0
    }
}
