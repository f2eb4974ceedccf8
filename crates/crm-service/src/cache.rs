//! The bounded aggregate-state cache and the per-stream locks that serialize commands to one
//! stream while different streams proceed in parallel.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use crm_domain::State;
use lru::LruCache;
use tokio::sync::OwnedMutexGuard;

/// A stream's state as of `version` (0: no events).
#[derive(Debug, Clone)]
pub struct Cached {
    pub state: State,
    pub version: u64,
}

pub struct StateCache {
    entries: Mutex<LruCache<String, Cached>>,
}

impl StateCache {
    pub fn new(entries_max: usize) -> StateCache {
        let capacity = NonZeroUsize::new(entries_max.max(1)).unwrap_or(NonZeroUsize::MIN);
        StateCache {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub fn get(&self, stream: &str) -> Option<Cached> {
        self.lock().get(stream).cloned()
    }

    pub fn put(&self, stream: String, cached: Cached) {
        self.lock().put(stream, cached);
    }

    /// Caches a state read from the log unless a newer one is already cached: a reader that
    /// does not hold the stream's lock (a lead command reading its pipeline) may finish after
    /// a writer cached a later version.
    pub fn put_if_newer(&self, stream: String, cached: Cached) {
        let mut entries = self.lock();
        if entries
            .peek(&stream)
            .is_none_or(|current| current.version < cached.version)
        {
            entries.put(stream, cached);
        }
    }

    pub fn remove(&self, stream: &str) {
        self.lock().pop(stream);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Cached>> {
        // A panic while holding this lock cannot leave the cache inconsistent (single calls).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Hands out one async lock per stream; entries disappear when nobody holds or waits on them,
/// so the table stays as small as the number of streams in flight.
#[derive(Default)]
pub struct StreamLocks {
    table: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub struct StreamGuard<'a> {
    locks: &'a StreamLocks,
    stream: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl StreamLocks {
    pub async fn lock(&self, stream: &str) -> StreamGuard<'_> {
        let mutex = {
            let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
            table.entry(stream.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        StreamGuard {
            locks: self,
            stream: stream.to_owned(),
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        let mut table = self.locks.table.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.guard.take());
        // Only the table holds the mutex now: nobody waits on it, so forget it.
        if table
            .get(&self.stream)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            table.remove(&self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn locks_serialize_one_stream_and_are_forgotten_after_use() {
        let locks = Arc::new(StreamLocks::default());
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let locks = locks.clone();
            let counter = counter.clone();
            tasks.push(tokio::spawn(async move {
                let _guard = locks.lock("lead-1").await;
                let inside = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                assert_eq!(inside, 0, "two holders of one stream lock");
                tokio::task::yield_now().await;
                counter.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(locks.len(), 0);
    }

    #[test]
    fn a_late_reader_never_replaces_a_newer_state() {
        let cache = StateCache::new(4);
        let at = |version| Cached {
            state: State::Pipeline(None),
            version,
        };
        cache.put("pipeline-x".into(), at(5));
        cache.put_if_newer("pipeline-x".into(), at(4));
        assert_eq!(cache.get("pipeline-x").map(|c| c.version), Some(5));
        cache.put_if_newer("pipeline-x".into(), at(6));
        assert_eq!(cache.get("pipeline-x").map(|c| c.version), Some(6));
    }

    #[test]
    fn cache_is_bounded() {
        let cache = StateCache::new(2);
        for i in 0..5 {
            cache.put(
                format!("lead-{i}"),
                Cached {
                    state: State::Lead(None),
                    version: 0,
                },
            );
        }
        assert!(cache.get("lead-0").is_none());
        assert!(cache.get("lead-4").is_some());
    }
}
