//! The projection SDK's keyed store: a read model keeps its state in [`Table`]s (many rows by
//! a typed key) and [`Single`]s (one row), and writes only its fold and its queries (see
//! `read_model.rs`). A table tracks the keys changed since the last drain, encodes rows with
//! the one record codec (`record_codec.rs`), and restores itself from the stored entries.
//!
//! Stored key of a row: the table's name, `/`, then the key's encoding, whose byte order is
//! the key type's `Ord` (so the store's key order is each table's row order).

use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::ops::RangeBounds;

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crm_domain::{Month, Timestamp};

use crate::projection::Change;
use crate::record_codec::{decode_record, encode_record};

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
}

/// A table key. `encode_key`'s bytes must sort like `Ord`; `decode_key` reads what
/// `encode_key` wrote (a table refuses any other bytes: it re-encodes and compares).
pub trait TableKey: Ord + Clone + Send + Sync + 'static {
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
    /// Empties the table (before a restore).
    fn clear(&mut self);
    /// Restores one stored row; `key` is the part after `<name>/`.
    fn restore_row(&mut self, key: &[u8], value: &[u8]) -> Result<(), TableError>;
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

/// Rows by a typed key, in key order, with the keys changed since the last drain.
#[derive(Debug, Clone)]
pub struct Table<K, V> {
    name: &'static str,
    rows: BTreeMap<K, V>,
    dirty: BTreeSet<K>,
}

/// Two tables are equal when their rows are (what is not yet drained does not matter).
impl<K: PartialEq, V: PartialEq> PartialEq for Table<K, V> {
    fn eq(&self, other: &Table<K, V>) -> bool {
        self.name == other.name && self.rows == other.rows
    }
}

impl<K: Eq, V: Eq> Eq for Table<K, V> {}

impl<K: TableKey, V> Table<K, V> {
    /// A table named `name`: unique within its read model, without `/`.
    pub const fn new(name: &'static str) -> Table<K, V> {
        Table {
            name,
            rows: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.rows.get(key)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.rows.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> btree_map::Iter<'_, K, V> {
        self.rows.iter()
    }

    pub fn values(&self) -> btree_map::Values<'_, K, V> {
        self.rows.values()
    }

    pub fn range<R: RangeBounds<K>>(&self, range: R) -> btree_map::Range<'_, K, V> {
        self.rows.range(range)
    }

    /// Inserts or replaces a row.
    pub fn insert(&mut self, key: K, row: V) -> Option<V> {
        self.dirty.insert(key.clone());
        self.rows.insert(key, row)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let removed = self.rows.remove(key);
        if removed.is_some() {
            self.dirty.insert(key.clone());
        }
        removed
    }

    /// Changes an existing row; `None` (and nothing changes) when there is none.
    pub fn update<R>(&mut self, key: &K, change: impl FnOnce(&mut V) -> R) -> Option<R> {
        let row = self.rows.get_mut(key)?;
        self.dirty.insert(key.clone());
        Some(change(row))
    }

    /// Changes a row, starting from the default row when there is none.
    pub fn upsert<R>(&mut self, key: K, change: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        self.dirty.insert(key.clone());
        change(self.rows.entry(key).or_default())
    }
}

impl<K: TableKey, V: Serialize + DeserializeOwned + Send + Sync> StoredTable for Table<K, V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn drain_into(&mut self, out: &mut Vec<Change>) {
        for key in std::mem::take(&mut self.dirty) {
            let row = self.rows.get(&key).map(encode_record);
            out.push((stored_key(self.name, &key), row));
        }
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.dirty.clear();
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
        self.rows.insert(typed, row);
        Ok(())
    }
}

/// One row (totals, metadata), present from the start with its default value.
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

impl<V: Default + Serialize + DeserializeOwned + Send + Sync> StoredTable for Single<V> {
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

/// Empties the tables and restores them from stored entries, each to the table its key
/// names.
pub fn restore_tables(
    tables: &mut [&mut dyn StoredTable],
    entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
) -> Result<(), TableError> {
    for (i, table) in tables.iter().enumerate() {
        if tables[..i].iter().any(|other| other.name() == table.name()) {
            return Err(TableError::DuplicateTable(table.name()));
        }
    }
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
}
