//! The projection SDK's keyed store: a read model keeps its state in [`Table`]s (many rows by
//! a typed key) and [`Single`]s (one row), and writes only its fold and its queries (see
//! `read_model.rs`). A table tracks the rows changed since the last drain and encodes them with
//! the one record codec (`record_codec.rs`).
//!
//! Where the rows live:
//! - attached to a projection store (what the runtime does), the store is the state: a table
//!   keeps in memory only the rows changed since the last commit and a bounded cache of clean
//!   ones (least recently used out first), and reads every other row from the store. Memory
//!   does not grow with the number of rows, and opening a store reads nothing;
//! - never attached (tests, folds without a store), every row stays in memory.
//!
//! Both behave the same to the model: same rows, same order, same drained changes.
//!
//! Stored key of a row: the table's name, `/`, then the key's encoding, whose byte order is
//! the key type's `Ord` (so the store's key order is each table's row order).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::iter::Peekable;
use std::ops::{Bound, RangeBounds};

use lru::LruCache;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crm_domain::{Month, Timestamp};

use crate::projection::Change;
use crate::record_codec::{decode_record, encode_record};
use crate::rows::StoreRows;

/// Largest stored row a table restores.
pub const ROW_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Why stored entries could not be restored into a read model's tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("stored key `{0}` belongs to no table of this read model")]
    UnknownTable(String),
    #[error("two tables of this read model are both named `{0}`")]
    DuplicateTable(&'static str),
    #[error("table `{table}`: stored key `{key}` is not a key of this table")]
    BadKey { table: &'static str, key: String },
    #[error("table `{table}`: the row at `{key}` does not decode: {reason}")]
    Decode {
        table: &'static str,
        key: String,
        reason: String,
    },
    #[error("projection store {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("table `{0}` is attached to a store while it holds rows")]
    AttachNotEmpty(&'static str),
}

/// What a table row must be: stored with the record codec, cloned out of the cache.
pub trait Row: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Row for T {}

/// A table key. `encode_key`'s bytes must sort like `Ord`; `decode_key` reads what
/// `encode_key` wrote (a table refuses any other bytes: it re-encodes and compares).
pub trait TableKey: Ord + Hash + Clone + Send + Sync + 'static {
    fn encode_key(&self, out: &mut Vec<u8>);
    fn decode_key(bytes: &[u8]) -> Option<Self>;
}

/// A key of fixed width, so it can lead a tuple key.
pub trait FixedWidthKey: TableKey {
    const WIDTH: usize;
}

impl TableKey for Uuid {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode_key(bytes: &[u8]) -> Option<Uuid> {
        Uuid::from_slice(bytes).ok()
    }
}

impl FixedWidthKey for Uuid {
    const WIDTH: usize = 16;
}

impl TableKey for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode_key(bytes: &[u8]) -> Option<String> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl TableKey for u64 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
    fn decode_key(bytes: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(bytes.try_into().ok()?))
    }
}

impl FixedWidthKey for u64 {
    const WIDTH: usize = 8;
}

/// Signed integers flip their sign bit so that negative numbers sort first.
impl TableKey for i64 {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&((*self as u64) ^ (1 << 63)).to_be_bytes());
    }
    fn decode_key(bytes: &[u8]) -> Option<i64> {
        Some((u64::from_be_bytes(bytes.try_into().ok()?) ^ (1 << 63)) as i64)
    }
}

impl FixedWidthKey for i64 {
    const WIDTH: usize = 8;
}

impl TableKey for Timestamp {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.as_micros().encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Option<Timestamp> {
        Some(Timestamp::from_micros(i64::decode_key(bytes)?))
    }
}

impl FixedWidthKey for Timestamp {
    const WIDTH: usize = 8;
}

impl TableKey for Month {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&((self.year as u32) ^ (1 << 31)).to_be_bytes());
        out.push(self.month);
    }
    fn decode_key(bytes: &[u8]) -> Option<Month> {
        let (year, month) = bytes.split_first_chunk::<4>()?;
        let year = (u32::from_be_bytes(*year) ^ (1 << 31)) as i32;
        match month {
            [month @ 1..=12] => Some(Month {
                year,
                month: *month,
            }),
            _ => None,
        }
    }
}

impl FixedWidthKey for Month {
    const WIDTH: usize = 5;
}

impl TableKey for () {
    fn encode_key(&self, _: &mut Vec<u8>) {}
    fn decode_key(bytes: &[u8]) -> Option<()> {
        bytes.is_empty().then_some(())
    }
}

/// A fixed-width key first, then any key: sorts by the first, then the second.
impl<A: FixedWidthKey, B: TableKey> TableKey for (A, B) {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Option<(A, B)> {
        let (a, b) = bytes.split_at_checked(A::WIDTH)?;
        Some((A::decode_key(a)?, B::decode_key(b)?))
    }
}

/// A table as the read-model machinery sees it, whatever its key and row types.
pub trait StoredTable: Send + Sync {
    /// The table's name: the first part of its stored keys (no `/` in it).
    fn name(&self) -> &'static str;
    /// Appends the changes since the last drain (key order) and forgets them.
    fn drain_into(&mut self, out: &mut Vec<Change>);
    /// Empties the table and detaches it from any store (before a restore).
    fn clear(&mut self);
    /// Restores one stored row into memory; `key` is the part after `<name>/`.
    fn restore_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), TableError>;
    /// Reads its rows through `rows` from now on, caching at most about `cache_bytes` of
    /// clean rows. Only an empty table is attached.
    fn attach(&mut self, rows: &StoreRows, cache_bytes: usize) -> Result<(), TableError>;
    /// Rows changed since the last drain.
    fn pending_rows(&self) -> usize;
    /// One row, always in memory ([`Single`]): it takes no share of the cache.
    fn is_single(&self) -> bool {
        false
    }
}

fn stored_key(name: &str, key: &impl TableKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 17);
    out.extend_from_slice(name.as_bytes());
    out.push(b'/');
    key.encode_key(&mut out);
    out
}

fn decode_row<V: DeserializeOwned>(
    table: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<V, TableError> {
    decode_record(value, ROW_BYTES_MAX).map_err(|e| TableError::Decode {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// Memory a cached row is counted for beyond its encoded bytes: the cache's node, the key and
/// the row's inline part.
const CACHE_ENTRY_OVERHEAD: usize = 96;

/// Clean rows (equal to the store's), least recently used first out, within a byte budget.
struct RowCache<K: Hash + Eq, V> {
    rows: LruCache<K, (V, usize)>,
    bytes: usize,
    budget: usize,
}

impl<K: Hash + Eq, V> RowCache<K, V> {
    fn new(budget: usize) -> RowCache<K, V> {
        RowCache {
            rows: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    fn peek(&self, key: &K) -> Option<&V> {
        self.rows.peek(key).map(|(row, _)| row)
    }

    fn contains(&self, key: &K) -> bool {
        self.rows.contains(key)
    }

    fn take(&mut self, key: &K) -> Option<V> {
        let (row, size) = self.rows.pop(key)?;
        self.bytes -= size;
        Some(row)
    }

    /// Caches `row`, whose encoding is `encoded_bytes` long, evicting the least recently used
    /// rows beyond the budget.
    fn put(&mut self, key: K, row: V, encoded_bytes: usize) {
        let size = encoded_bytes + std::mem::size_of::<V>() + CACHE_ENTRY_OVERHEAD;
        if size > self.budget {
            self.take(&key);
            return;
        }
        if let Some((_, old)) = self.rows.put(key, (row, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
        while self.bytes > self.budget {
            match self.rows.pop_lru() {
                Some((_, (_, size))) => self.bytes -= size,
                None => break,
            }
        }
    }
}

/// Where a table's clean rows are.
enum Rows<K: Hash + Eq, V> {
    /// All of them, in memory: a table never attached to a store.
    Resident(BTreeMap<K, V>),
    /// In the store, some of them cached.
    Stored {
        store: StoreRows,
        cache: RowCache<K, V>,
    },
}

/// Rows by a typed key, in key order, with the rows changed since the last drain.
pub struct Table<K: Hash + Eq, V> {
    name: &'static str,
    /// Changed since the last drain: the new row, or `None` for a removed one. Wins over
    /// `rows`.
    changed: BTreeMap<K, Option<V>>,
    rows: Rows<K, V>,
}

impl<K: TableKey + std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Table");
        out.field("name", &self.name)
            .field("changed", &self.changed);
        match &self.rows {
            Rows::Resident(rows) => out.field("rows", rows),
            Rows::Stored { store, cache } => out
                .field("store", store)
                .field("cached_rows", &cache.rows.len()),
        };
        out.finish()
    }
}

/// A clone holds the same rows; a stored table's clone reads the same store, with an empty
/// cache of its own (tests and folds compare clones; the runtime never commits one).
impl<K: TableKey, V: Clone> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Table {
            name: self.name,
            changed: self.changed.clone(),
            rows: match &self.rows {
                Rows::Resident(rows) => Rows::Resident(rows.clone()),
                Rows::Stored { store, cache } => Rows::Stored {
                    store: store.clone(),
                    cache: RowCache::new(cache.budget),
                },
            },
        }
    }
}

/// Two tables are equal when their rows are (what is not yet drained does not matter). For
/// stored tables this reads both stores in full: a test's comparison.
impl<K: TableKey, V: Row + PartialEq> PartialEq for Table<K, V> {
    fn eq(&self, other: &Table<K, V>) -> bool {
        self.name == other.name && self.iter().eq(other.iter())
    }
}

impl<K: TableKey, V: Row + Eq> Eq for Table<K, V> {}

/// Rows in key order (or reversed): `changed` merged over the clean rows, a removed row
/// skipped.
type RowIter<'a, K, V> = Box<dyn Iterator<Item = (K, Cow<'a, V>)> + 'a>;

/// The changed rows of a range, in the range's order.
type ChangedIter<'a, K, V> = Box<dyn Iterator<Item = (&'a K, &'a Option<V>)> + 'a>;

impl<K: TableKey, V: Row> Table<K, V> {
    /// A table named `name`: unique within its read model, without `/`.
    pub const fn new(name: &'static str) -> Table<K, V> {
        Table {
            name,
            changed: BTreeMap::new(),
            rows: Rows::Resident(BTreeMap::new()),
        }
    }

    /// The row at `key`: borrowed when in memory, read from the store otherwise.
    pub fn get(&self, key: &K) -> Option<Cow<'_, V>> {
        if let Some(change) = self.changed.get(key) {
            return change.as_ref().map(Cow::Borrowed);
        }
        match &self.rows {
            Rows::Resident(rows) => rows.get(key).map(Cow::Borrowed),
            Rows::Stored { store, cache } => match cache.peek(key) {
                Some(row) => Some(Cow::Borrowed(row)),
                None => read_row(self.name, store, key).map(|(row, _)| Cow::Owned(row)),
            },
        }
    }

    pub fn contains_key(&self, key: &K) -> bool {
        if let Some(change) = self.changed.get(key) {
            return change.is_some();
        }
        match &self.rows {
            Rows::Resident(rows) => rows.contains_key(key),
            Rows::Stored { store, cache } => {
                cache.contains(key) || store.get(&stored_key(self.name, key)).is_some()
            }
        }
    }

    /// Every row, in key order.
    pub fn iter(&self) -> RowIter<'_, K, V> {
        self.range::<std::ops::RangeFull>(..)
    }

    /// Every row's value, in key order.
    pub fn values(&self) -> impl Iterator<Item = Cow<'_, V>> + '_ {
        self.iter().map(|(_, row)| row)
    }

    /// The rows with keys in `range`, in key order.
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> RowIter<'_, K, V> {
        self.range_in(range, false)
    }

    /// The rows with keys in `range`, last key first.
    pub fn range_rev<R: RangeBounds<K>>(&self, range: R) -> RowIter<'_, K, V> {
        self.range_in(range, true)
    }

    fn range_in<R: RangeBounds<K>>(&self, range: R, reverse: bool) -> RowIter<'_, K, V> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        let changed = self.changed.range(bounds.clone());
        let changed: ChangedIter<'_, K, V> = if reverse {
            Box::new(changed.rev())
        } else {
            Box::new(changed)
        };
        let clean: RowIter<'_, K, V> = match &self.rows {
            Rows::Resident(rows) => {
                let rows = rows.range(bounds);
                let rows: Box<dyn Iterator<Item = (&K, &V)>> = if reverse {
                    Box::new(rows.rev())
                } else {
                    Box::new(rows)
                };
                Box::new(rows.map(|(key, row)| (key.clone(), Cow::Borrowed(row))))
            }
            Rows::Stored { store, .. } => Box::new(self.scan(store, bounds, reverse)),
        };
        Box::new(Merged {
            changed: changed.peekable(),
            clean: clean.peekable(),
            reverse,
        })
    }

    /// Inserts or replaces a row.
    pub fn insert(&mut self, key: K, row: V) {
        self.forget_clean(&key);
        self.changed.insert(key, Some(row));
    }

    /// Removes the row at `key`; false when there was none.
    pub fn remove(&mut self, key: &K) -> bool {
        self.load_for_change(key);
        match self.changed.get_mut(key) {
            Some(slot @ Some(_)) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// Changes an existing row; `None` (and nothing changes) when there is none.
    pub fn update<R>(&mut self, key: &K, change: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.load_for_change(key);
        let row = self.changed.get_mut(key)?.as_mut()?;
        Some(change(row))
    }

    /// Changes a row, starting from the default row when there is none.
    pub fn upsert<R>(&mut self, key: K, change: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        self.load_for_change(&key);
        let slot = self.changed.entry(key).or_insert(None);
        change(slot.get_or_insert_with(V::default))
    }

    /// Moves the clean row at `key`, if there is one, into `changed` (it is written at the
    /// next drain).
    fn load_for_change(&mut self, key: &K) {
        if self.changed.contains_key(key) {
            return;
        }
        let row = match &mut self.rows {
            Rows::Resident(rows) => rows.remove(key),
            Rows::Stored { store, cache } => match cache.take(key) {
                Some(row) => Some(row),
                None => read_row(self.name, store, key).map(|(row, _)| row),
            },
        };
        if let Some(row) = row {
            self.changed.insert(key.clone(), Some(row));
        }
    }

    /// Drops a clean copy of a row about to be replaced.
    fn forget_clean(&mut self, key: &K) {
        match &mut self.rows {
            Rows::Resident(rows) => {
                rows.remove(key);
            }
            Rows::Stored { cache, .. } => {
                cache.take(key);
            }
        }
    }

    /// The stored rows in `bounds`, decoded.
    fn scan<'a>(
        &'a self,
        store: &'a StoreRows,
        (from, to): (Bound<K>, Bound<K>),
        reverse: bool,
    ) -> impl Iterator<Item = (K, Cow<'a, V>)> + 'a {
        let name = self.name;
        let mut first = name.as_bytes().to_vec();
        first.push(b'/');
        let prefix_len = first.len();
        let from = match from {
            Bound::Included(key) => Bound::Included(stored_key(name, &key)),
            Bound::Excluded(key) => Bound::Excluded(stored_key(name, &key)),
            Bound::Unbounded => Bound::Included(first),
        };
        let to = match to {
            Bound::Included(key) => Bound::Included(stored_key(name, &key)),
            Bound::Excluded(key) => Bound::Excluded(stored_key(name, &key)),
            // `0` is the byte after `/`: the first key past this table's.
            Bound::Unbounded => Bound::Excluded([name.as_bytes(), b"0"].concat()),
        };
        let rows: Box<dyn Iterator<Item = crate::rows::RawRow>> = if reverse {
            Box::new(store.range_rev(from, to))
        } else {
            Box::new(store.range(from, to))
        };
        rows.filter_map(move |(key, value)| {
            let Some(typed) = K::decode_key(&key[prefix_len..]) else {
                store.fail(TableError::BadKey {
                    table: name,
                    key: String::from_utf8_lossy(&key).into_owned(),
                });
                return None;
            };
            match decode_row(name, &key, &value) {
                Ok(row) => Some((typed, Cow::Owned(row))),
                Err(e) => {
                    store.fail(e);
                    None
                }
            }
        })
    }
}

fn read_row<K: TableKey, V: Row>(
    name: &'static str,
    store: &StoreRows,
    key: &K,
) -> Option<(V, usize)> {
    let stored = stored_key(name, key);
    let bytes = store.get(&stored)?;
    match decode_row(name, &stored, &bytes) {
        Ok(row) => Some((row, bytes.len())),
        Err(e) => {
            store.fail(e);
            None
        }
    }
}

/// `changed` (borrowed, winning on equal keys) merged with the clean rows, both in key order
/// or both reversed.
struct Merged<'a, K, V: Clone> {
    changed: Peekable<ChangedIter<'a, K, V>>,
    clean: Peekable<RowIter<'a, K, V>>,
    reverse: bool,
}

impl<'a, K: Ord + Clone, V: Clone> Iterator for Merged<'a, K, V> {
    type Item = (K, Cow<'a, V>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.changed.peek(), self.clean.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((changed, _)), Some((clean, _))) if self.reverse => clean.cmp(changed),
                (Some((changed, _)), Some((clean, _))) => (*changed).cmp(clean),
            };
            if order == std::cmp::Ordering::Equal {
                // The changed row replaces the clean one.
                self.clean.next();
            }
            if order == std::cmp::Ordering::Greater {
                return self.clean.next();
            }
            match self.changed.next() {
                Some((key, Some(row))) => return Some((key.clone(), Cow::Borrowed(row))),
                Some((_, None)) => continue,
                None => return None,
            }
        }
    }
}

impl<K: TableKey, V: Row> StoredTable for Table<K, V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn drain_into(&mut self, out: &mut Vec<Change>) {
        for (key, row) in std::mem::take(&mut self.changed) {
            let stored = stored_key(self.name, &key);
            match row {
                Some(row) => {
                    let bytes = encode_record(&row);
                    let encoded_bytes = bytes.len();
                    out.push((stored, Some(bytes)));
                    match &mut self.rows {
                        Rows::Resident(rows) => {
                            rows.insert(key, row);
                        }
                        Rows::Stored { cache, .. } => cache.put(key, row, encoded_bytes),
                    }
                }
                None => {
                    out.push((stored, None));
                    if let Rows::Resident(rows) = &mut self.rows {
                        rows.remove(&key);
                    }
                }
            }
        }
    }

    fn clear(&mut self) {
        self.changed.clear();
        self.rows = Rows::Resident(BTreeMap::new());
    }

    fn restore_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), TableError> {
        let bad_key = || TableError::BadKey {
            table: self.name,
            key: String::from_utf8_lossy(key).into_owned(),
        };
        let typed = K::decode_key(key).ok_or_else(bad_key)?;
        let mut canonical = Vec::with_capacity(key.len());
        typed.encode_key(&mut canonical);
        if canonical != key {
            return Err(bad_key());
        }
        let row = decode_row(self.name, key, value)?;
        match &mut self.rows {
            Rows::Resident(rows) => {
                rows.insert(typed, row);
                Ok(())
            }
            Rows::Stored { .. } => Err(TableError::AttachNotEmpty(self.name)),
        }
    }

    fn attach(&mut self, rows: &StoreRows, cache_bytes: usize) -> Result<(), TableError> {
        let empty = match &self.rows {
            Rows::Resident(rows) => rows.is_empty(),
            Rows::Stored { .. } => false,
        };
        if !empty || !self.changed.is_empty() {
            return Err(TableError::AttachNotEmpty(self.name));
        }
        self.rows = Rows::Stored {
            store: rows.clone(),
            cache: RowCache::new(cache_bytes),
        };
        Ok(())
    }

    fn pending_rows(&self) -> usize {
        self.changed.len()
    }
}

/// One row (totals, metadata), present from the start with its default value, always in
/// memory (attached to a store, it reads its row once).
#[derive(Debug, Clone)]
pub struct Single<V> {
    name: &'static str,
    row: V,
    dirty: bool,
}

/// Equal when their rows are (what is not yet drained does not matter), like [`Table`].
impl<V: PartialEq> PartialEq for Single<V> {
    fn eq(&self, other: &Single<V>) -> bool {
        self.name == other.name && self.row == other.row
    }
}

impl<V: Eq> Eq for Single<V> {}

impl<V: Default> Single<V> {
    pub fn new(name: &'static str) -> Single<V> {
        Single {
            name,
            row: V::default(),
            dirty: false,
        }
    }

    pub fn get(&self) -> &V {
        &self.row
    }

    pub fn update<R>(&mut self, change: impl FnOnce(&mut V) -> R) -> R {
        self.dirty = true;
        change(&mut self.row)
    }

    pub fn set(&mut self, row: V) {
        self.dirty = true;
        self.row = row;
    }
}

impl<V: Default + Row> StoredTable for Single<V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn drain_into(&mut self, out: &mut Vec<Change>) {
        if std::mem::take(&mut self.dirty) {
            out.push((stored_key(self.name, &()), Some(encode_record(&self.row))));
        }
    }

    fn clear(&mut self) {
        self.row = V::default();
        self.dirty = false;
    }

    fn restore_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), TableError> {
        if !key.is_empty() {
            return Err(TableError::BadKey {
                table: self.name,
                key: String::from_utf8_lossy(key).into_owned(),
            });
        }
        self.row = decode_row(self.name, key, value)?;
        Ok(())
    }

    fn attach(&mut self, rows: &StoreRows, _cache_bytes: usize) -> Result<(), TableError> {
        if self.dirty {
            return Err(TableError::AttachNotEmpty(self.name));
        }
        let key = stored_key(self.name, &());
        self.row = match rows.get(&key) {
            Some(bytes) => decode_row(self.name, &key, &bytes)?,
            None => V::default(),
        };
        match rows.failure() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn pending_rows(&self) -> usize {
        usize::from(self.dirty)
    }

    fn is_single(&self) -> bool {
        true
    }
}

/// Every table's changes since the last drain, in stored-key order.
pub fn drain_tables(tables: &mut [&mut dyn StoredTable]) -> Vec<Change> {
    let mut changes = Vec::new();
    for table in tables.iter_mut() {
        table.drain_into(&mut changes);
    }
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    changes
}

/// Refuses two tables of one name.
pub fn check_names(tables: &[&mut dyn StoredTable]) -> Result<(), TableError> {
    for (i, table) in tables.iter().enumerate() {
        if tables[..i].iter().any(|other| other.name() == table.name()) {
            return Err(TableError::DuplicateTable(table.name()));
        }
    }
    Ok(())
}

/// Empties the tables and restores them into memory from stored entries, each to the table
/// its key names.
pub fn restore_tables(
    tables: &mut [&mut dyn StoredTable],
    entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
) -> Result<(), TableError> {
    check_names(tables)?;
    for table in tables.iter_mut() {
        table.clear();
    }
    for (key, value) in entries {
        let unknown = || TableError::UnknownTable(String::from_utf8_lossy(&key).into_owned());
        let slash = key.iter().position(|&b| b == b'/').ok_or_else(unknown)?;
        let (name, rest) = (&key[..slash], &key[slash + 1..]);
        let table = tables
            .iter_mut()
            .find(|table| table.name().as_bytes() == name)
            .ok_or_else(unknown)?;
        table.restore_row(rest, &value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded<K: TableKey>(key: &K) -> Vec<u8> {
        let mut out = Vec::new();
        key.encode_key(&mut out);
        out
    }

    fn order_holds<K: TableKey + std::fmt::Debug>(a: K, b: K) {
        assert_eq!(a.cmp(&b), encoded(&a).cmp(&encoded(&b)), "{a:?} vs {b:?}");
        assert_eq!(K::decode_key(&encoded(&a)), Some(a));
    }

    proptest! {
        #[test]
        fn key_bytes_sort_like_keys(a: i64, b: i64, c: u64, d: u64, y1 in -3000i32..3000, y2 in -3000i32..3000, m1 in 1u8..=12, m2 in 1u8..=12, s1 in "[a-z/é]{0,4}", s2 in "[a-z/é]{0,4}", u1: u128, u2: u128) {
            order_holds(a, b);
            order_holds(c, d);
            order_holds(Month { year: y1, month: m1 }, Month { year: y2, month: m2 });
            order_holds(s1.clone(), s2.clone());
            order_holds(Uuid::from_u128(u1), Uuid::from_u128(u2));
            order_holds((Uuid::from_u128(u1), s1), (Uuid::from_u128(u2), s2));
            order_holds((Month { year: y1, month: m1 }, c), (Month { year: y2, month: m2 }, d));
        }
    }

    #[derive(Default)]
    struct Two {
        people: Table<Uuid, String>,
        totals: Single<u64>,
    }

    impl Two {
        fn tables(&mut self) -> [&mut dyn StoredTable; 2] {
            [&mut self.people, &mut self.totals]
        }
    }

    impl Default for Table<Uuid, String> {
        fn default() -> Self {
            Table::new("person")
        }
    }

    impl Default for Single<u64> {
        fn default() -> Self {
            Single::new("total")
        }
    }

    #[test]
    fn drained_changes_restore_the_same_tables() {
        let mut two = Two::default();
        two.people.insert(Uuid::from_u128(2), "Grace".into());
        two.people.insert(Uuid::from_u128(1), "Ada".into());
        two.people.insert(Uuid::from_u128(3), "gone".into());
        two.totals.update(|t| *t += 3);
        let first = drain_tables(&mut two.tables());
        assert!(first.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(first.len(), 4);
        assert_eq!(drain_tables(&mut two.tables()), vec![]);
        two.people.remove(&Uuid::from_u128(3));
        two.people.update(&Uuid::from_u128(9), |_| ());
        let second = drain_tables(&mut two.tables());
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].1, None);

        let mut stored: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (key, value) in first.into_iter().chain(second) {
            match value {
                Some(value) => stored.insert(key, value),
                None => stored.remove(&key),
            };
        }
        let mut restored = Two::default();
        restored.people.insert(Uuid::from_u128(7), "stale".into());
        restore_tables(&mut restored.tables(), &mut stored.clone().into_iter()).unwrap();
        assert!(restored.people == two.people);
        assert_eq!(restored.totals.get(), &3);
        assert_eq!(drain_tables(&mut restored.tables()), vec![]);
    }

    #[test]
    fn foreign_or_damaged_entries_are_refused() {
        let mut two = Two::default();
        let restore = |two: &mut Two, key: &[u8], value: &[u8]| {
            restore_tables(
                &mut two.tables(),
                &mut std::iter::once((key.to_vec(), value.to_vec())),
            )
        };
        assert!(matches!(
            restore(&mut two, b"order/x", b""),
            Err(TableError::UnknownTable(_))
        ));
        assert!(matches!(
            restore(&mut two, b"nameless", b""),
            Err(TableError::UnknownTable(_))
        ));
        assert!(matches!(
            restore(&mut two, b"person/short", b""),
            Err(TableError::BadKey { .. })
        ));
        assert!(matches!(
            restore(&mut two, b"total/x", &encode_record(&1u64)),
            Err(TableError::BadKey { .. })
        ));
        let mut key = b"person/".to_vec();
        key.extend_from_slice(Uuid::from_u128(1).as_bytes());
        assert!(matches!(
            restore(&mut two, &key, &[1, 2]),
            Err(TableError::Decode { .. })
        ));
        let mut twins = (Table::<Uuid, String>::new("a"), Single::<u64>::new("a"));
        assert_eq!(
            restore_tables(&mut [&mut twins.0, &mut twins.1], &mut std::iter::empty()),
            Err(TableError::DuplicateTable("a"))
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, String),
        Remove(u8),
        Update(u8, String),
        Upsert(u8, String),
        Commit,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), "[a-z]{0,40}").prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Remove),
            (any::<u8>(), "[a-z]{0,3}").prop_map(|(k, v)| Op::Update(k, v)),
            (any::<u8>(), "[a-z]{0,3}").prop_map(|(k, v)| Op::Upsert(k, v)),
            Just(Op::Commit),
        ]
    }

    fn rows(table: &Table<u64, String>) -> Vec<(u64, String)> {
        table.iter().map(|(k, v)| (k, v.into_owned())).collect()
    }

    proptest! {
        /// A stored table with a cache of a few rows reads, iterates and drains exactly like
        /// one holding every row in memory, and like a plain map.
        #[test]
        fn a_stored_table_behaves_like_a_resident_one(ops in prop::collection::vec(op(), 0..200), budget in 0usize..2000) {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::ProjectionStore::open(dir.path()).unwrap();
            let handle = store.rows(budget);
            let mut stored: Table<u64, String> = Table::new("t");
            stored.attach(&handle, budget).unwrap();
            let mut resident: Table<u64, String> = Table::new("t");
            let mut reference: BTreeMap<u64, String> = BTreeMap::new();
            let mut position = 0;
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let k = u64::from(k % 32);
                        stored.insert(k, v.clone());
                        resident.insert(k, v.clone());
                        reference.insert(k, v);
                    }
                    Op::Remove(k) => {
                        let k = u64::from(k % 32);
                        let was = reference.remove(&k).is_some();
                        prop_assert_eq!(stored.remove(&k), was);
                        prop_assert_eq!(resident.remove(&k), was);
                    }
                    Op::Update(k, v) => {
                        let k = u64::from(k % 32);
                        let want = reference.get_mut(&k).map(|row| { row.push_str(&v); row.len() });
                        prop_assert_eq!(stored.update(&k, |row| { row.push_str(&v); row.len() }), want);
                        prop_assert_eq!(resident.update(&k, |row| { row.push_str(&v); row.len() }), want);
                    }
                    Op::Upsert(k, v) => {
                        let k = u64::from(k % 32);
                        reference.entry(k).or_default().push_str(&v);
                        stored.upsert(k, |row| row.push_str(&v));
                        resident.upsert(k, |row| row.push_str(&v));
                    }
                    Op::Commit => {
                        position += 1;
                        let from_stored = drain_tables(&mut [&mut stored]);
                        let from_resident = drain_tables(&mut [&mut resident]);
                        prop_assert_eq!(&from_stored, &from_resident);
                        store.commit(from_stored, position, false).unwrap();
                    }
                }
                let want: Vec<(u64, String)> = reference.clone().into_iter().collect();
                prop_assert_eq!(rows(&stored), want.clone());
                prop_assert_eq!(rows(&resident), want.clone());
                for k in [0u64, 7, 31] {
                    prop_assert_eq!(stored.get(&k).map(Cow::into_owned), reference.get(&k).cloned());
                    prop_assert_eq!(stored.contains_key(&k), reference.contains_key(&k));
                }
                let middle: Vec<(u64, String)> = reference.range(5..20).map(|(k, v)| (*k, v.clone())).collect();
                let got: Vec<(u64, String)> = stored.range(5..20).map(|(k, v)| (k, v.into_owned())).collect();
                prop_assert_eq!(&got, &middle);
                let backwards: Vec<(u64, String)> = middle.iter().rev().cloned().collect();
                for table in [&stored, &resident] {
                    let got: Vec<(u64, String)> = table.range_rev(5..20).map(|(k, v)| (k, v.into_owned())).collect();
                    prop_assert_eq!(&got, &backwards);
                    let all: Vec<(u64, String)> = table.range_rev(..).map(|(k, v)| (k, v.into_owned())).collect();
                    prop_assert_eq!(all, want.iter().rev().cloned().collect::<Vec<_>>());
                }
                prop_assert!(stored_cache_bytes(&stored) <= budget);
            }
            prop_assert!(handle.failure().is_none());
        }
    }

    fn stored_cache_bytes(table: &Table<u64, String>) -> usize {
        match &table.rows {
            Rows::Stored { cache, .. } => cache.bytes,
            Rows::Resident(_) => 0,
        }
    }

    #[test]
    fn a_row_that_does_not_decode_is_a_recorded_failure_not_an_absent_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::ProjectionStore::open(dir.path()).unwrap();
        let mut key = b"t/".to_vec();
        7u64.encode_key(&mut key);
        store
            .commit(vec![(key, Some(vec![0xff, 0xff]))], 1, true)
            .unwrap();
        let handle = store.rows(1 << 20);
        let mut table: Table<u64, String> = Table::new("t");
        table.attach(&handle, 1 << 20).unwrap();
        assert!(handle.failure().is_none());
        assert_eq!(table.get(&7), None);
        assert!(matches!(
            handle.failure(),
            Some(TableError::Decode { table: "t", .. })
        ));
        let mut single: Single<u64> = Single::new("t");
        assert!(
            single.attach(&handle, 0).is_err(),
            "a failed store attaches nothing more"
        );
    }
}
