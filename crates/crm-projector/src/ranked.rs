//! Part of the projection SDK: stored sorted multisets of values (durations, amounts), one per
//! scope, each with a cursor kept on one rank (the nearest-rank `PERCENTILE`th value), so that
//! reading the percentile costs a row or two whatever the number of values.
//!
//! Two tables: `counts` (scope, value) -> how many times the value is in the multiset;
//! `cursors`, scope -> [`Cursor`]. The value before another is a reverse range read of
//! `counts`. Every insert or removal moves the cursor by at most a step or two along the
//! values. A multiset that becomes empty leaves
//! no row behind.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::table::{StoredTable, Table, TableKey};
use serde::{Deserialize, Serialize};

/// A key of the multiset tables: a scope, then a value. The scope's encoding must be
/// prefix-free (fixed width, or self-delimiting) so that entries sort by scope, then value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry<S> {
    pub scope: S,
    pub value: u64,
}

impl<S: TableKey> TableKey for Entry<S> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.scope.encode_key(out);
        out.extend_from_slice(&self.value.to_be_bytes());
    }

    fn decode_key(bytes: &[u8]) -> Option<Entry<S>> {
        let (scope, value) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
        Some(Entry {
            scope: S::decode_key(scope)?,
            value: u64::from_be_bytes(value.try_into().ok()?),
        })
    }
}

/// Where a scope's percentile is: `value` is the value at the target rank, `below` how many
/// values are smaller and `at` how many equal it, out of `count`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub count: u64,
    pub value: u64,
    pub below: u64,
    pub at: u64,
}

/// Sorted multisets of `u64` values by scope, with the nearest-rank `PERCENTILE`th value of
/// each kept current (50: the lower median; 90: the 90th percentile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked<S: TableKey, const PERCENTILE: u64> {
    cursors: Table<S, Cursor>,
    counts: Table<Entry<S>, u64>,
}

impl<S: TableKey, const PERCENTILE: u64> Ranked<S, PERCENTILE> {
    /// The two tables, by name: cursors, counts.
    pub fn new(cursors: &'static str, counts: &'static str) -> Ranked<S, PERCENTILE> {
        Ranked {
            cursors: Table::new(cursors),
            counts: Table::new(counts),
        }
    }

    pub fn tables(&mut self) -> [&mut dyn StoredTable; 2] {
        [&mut self.cursors, &mut self.counts]
    }

    /// The 0-based rank of the nearest-rank percentile among `count` values (`count` >= 1).
    fn target(count: u64) -> u64 {
        let rank = (u128::from(count) * u128::from(PERCENTILE)).div_ceil(100);
        u64::try_from(rank.saturating_sub(1)).unwrap_or(u64::MAX)
    }

    fn entry(scope: &S, value: u64) -> Entry<S> {
        Entry {
            scope: scope.clone(),
            value,
        }
    }

    /// Adds one `value` to the scope's multiset.
    pub fn insert(&mut self, scope: &S, value: u64) {
        self.counts.upsert(Self::entry(scope, value), |n| {
            *n = n.saturating_add(1);
        });
        let cursor = match self.cursors.get(scope) {
            Some(cursor) => {
                let mut cursor = *cursor;
                cursor.count = cursor.count.saturating_add(1);
                match value.cmp(&cursor.value) {
                    std::cmp::Ordering::Less => cursor.below = cursor.below.saturating_add(1),
                    std::cmp::Ordering::Equal => cursor.at = cursor.at.saturating_add(1),
                    std::cmp::Ordering::Greater => {}
                }
                cursor
            }
            None => Cursor {
                count: 1,
                value,
                below: 0,
                at: 1,
            },
        };
        let cursor = self.settle(scope, cursor);
        self.cursors.insert(scope.clone(), cursor);
    }

    /// Takes one `value` out of the scope's multiset; false (and nothing changes) when it is
    /// not in it.
    pub fn remove(&mut self, scope: &S, value: u64) -> bool {
        let entry = Self::entry(scope, value);
        let (Some(count), Some(cursor)) = (
            self.counts.get(&entry).map(|n| *n),
            self.cursors.get(scope).map(|c| *c),
        ) else {
            return false;
        };
        if count <= 1 {
            self.counts.remove(&entry);
        } else {
            self.counts.insert(entry, count - 1);
        }
        let mut cursor = cursor;
        cursor.count = cursor.count.saturating_sub(1);
        if cursor.count == 0 {
            self.cursors.remove(scope);
            return true;
        }
        match value.cmp(&cursor.value) {
            std::cmp::Ordering::Less => cursor.below = cursor.below.saturating_sub(1),
            std::cmp::Ordering::Greater => {}
            std::cmp::Ordering::Equal => {
                cursor.at = cursor.at.saturating_sub(1);
                if cursor.at == 0 {
                    // The value is gone: the cursor goes to a neighbour, then settles.
                    if let Some((next, n)) = self.next(scope, cursor.value) {
                        cursor.value = next;
                        cursor.at = n;
                    } else if let Some((previous, n)) = self.previous(scope, cursor.value) {
                        cursor.value = previous;
                        cursor.at = n;
                        cursor.below = cursor.below.saturating_sub(n);
                    }
                }
            }
        }
        let cursor = self.settle(scope, cursor);
        self.cursors.insert(scope.clone(), cursor);
        true
    }

    /// Moves the cursor to the value at the target rank of its count.
    fn settle(&self, scope: &S, mut cursor: Cursor) -> Cursor {
        let target = Self::target(cursor.count);
        loop {
            if target < cursor.below {
                let Some((previous, n)) = self.previous(scope, cursor.value) else {
                    break;
                };
                cursor.value = previous;
                cursor.at = n;
                cursor.below = cursor.below.saturating_sub(n);
            } else if target >= cursor.below.saturating_add(cursor.at) {
                let Some((next, n)) = self.next(scope, cursor.value) else {
                    break;
                };
                cursor.below = cursor.below.saturating_add(cursor.at);
                cursor.value = next;
                cursor.at = n;
            } else {
                break;
            }
        }
        cursor
    }

    /// The scope's cursor; `None` for an empty multiset.
    pub fn cursor(&self, scope: &S) -> Option<Cursor> {
        self.cursors.get(scope).map(|c| *c)
    }

    /// The smallest value above `value` in the scope, and how many times it is there.
    pub fn next(&self, scope: &S, value: u64) -> Option<(u64, u64)> {
        if value == u64::MAX {
            return None;
        }
        let bounds = (
            Bound::Excluded(Self::entry(scope, value)),
            Bound::Included(Self::entry(scope, u64::MAX)),
        );
        let (entry, n) = self.counts.range(bounds).next()?;
        Some((entry.value, *n))
    }

    /// The largest value below `value` in the scope, and how many times it is there.
    pub fn previous(&self, scope: &S, value: u64) -> Option<(u64, u64)> {
        let bounds = (
            Bound::Included(Self::entry(scope, 0)),
            Bound::Excluded(Self::entry(scope, value)),
        );
        let (entry, n) = self.counts.range_rev(bounds).next()?;
        Some((entry.value, *n))
    }

    /// Every scope's values and how many times each, by a full scan of the tables, or why the
    /// two tables disagree: a check for tests and audits, not for a fold or a query.
    pub fn all(&self) -> Result<BTreeMap<S, BTreeMap<u64, u64>>, String> {
        let mut all: BTreeMap<S, BTreeMap<u64, u64>> = BTreeMap::new();
        for (entry, n) in self.counts.iter() {
            if *n == 0 {
                return Err("a zero count is stored".into());
            }
            all.entry(entry.scope).or_default().insert(entry.value, *n);
        }
        let scopes: Vec<S> = self.cursors.iter().map(|(scope, _)| scope).collect();
        if !scopes.iter().eq(all.keys()) {
            return Err("a multiset without a cursor, or a cursor without one".into());
        }
        Ok(all)
    }

    /// The values of the scope and how many times each, in order: a full scan of the scope.
    pub fn values(&self, scope: &S) -> BTreeMap<u64, u64> {
        let bounds = (
            Bound::Included(Self::entry(scope, 0)),
            Bound::Included(Self::entry(scope, u64::MAX)),
        );
        self.counts
            .range(bounds)
            .map(|(entry, n)| (entry.value, *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The nearest-rank percentile of a multiset by a full scan.
    fn scanned(values: &BTreeMap<u64, u64>, percentile: u64) -> Option<u64> {
        let count: u64 = values.values().sum();
        if count == 0 {
            return None;
        }
        let rank = (u128::from(count) * u128::from(percentile)).div_ceil(100);
        let mut seen = 0u128;
        for (value, n) in values {
            seen += u128::from(*n);
            if seen >= rank {
                return Some(*value);
            }
        }
        None
    }

    fn check<const P: u64>(
        ranked: &Ranked<u64, P>,
        reference: &BTreeMap<u64, BTreeMap<u64, u64>>,
    ) -> Result<(), TestCaseError> {
        for scope in 0..3u64 {
            let empty = BTreeMap::new();
            let values = reference.get(&scope).unwrap_or(&empty);
            prop_assert_eq!(&ranked.values(&scope), values);
            let all = ranked.all().unwrap();
            prop_assert_eq!(all.get(&scope), (!values.is_empty()).then_some(values));
            let cursor = ranked.cursor(&scope);
            prop_assert_eq!(cursor.map(|c| c.value), scanned(values, P));
            if let Some(c) = cursor {
                prop_assert_eq!(c.count, values.values().sum::<u64>());
                prop_assert_eq!(
                    c.below,
                    values.range(..c.value).map(|(_, n)| n).sum::<u64>()
                );
                prop_assert_eq!(Some(&c.at), values.get(&c.value));
                prop_assert_eq!(
                    ranked.next(&scope, c.value),
                    values
                        .range((Bound::Excluded(c.value), Bound::Unbounded))
                        .next()
                        .map(|(v, n)| (*v, *n))
                );
                prop_assert_eq!(
                    ranked.previous(&scope, c.value),
                    values.range(..c.value).next_back().map(|(v, n)| (*v, *n))
                );
            }
        }
        Ok(())
    }

    fn run<const P: u64>(ops: &[(bool, u64, u64)]) -> Result<(), TestCaseError> {
        let mut ranked: Ranked<u64, P> = Ranked::new("c", "n");
        let mut reference: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
        for &(insert, scope, value) in ops {
            let values = reference.entry(scope).or_default();
            if insert {
                ranked.insert(&scope, value);
                *values.entry(value).or_default() += 1;
            } else {
                let present = values.get(&value).is_some_and(|n| *n > 0);
                prop_assert_eq!(ranked.remove(&scope, value), present);
                if present {
                    let n = values.entry(value).or_default();
                    *n -= 1;
                    if *n == 0 {
                        values.remove(&value);
                    }
                }
            }
            check(&ranked, &reference)?;
        }
        Ok(())
    }

    fn ops() -> impl Strategy<Value = Vec<(bool, u64, u64)>> {
        let value = prop_oneof![0u64..12, Just(u64::MAX), any::<u64>()];
        prop::collection::vec((prop::bool::weighted(0.7), 0u64..3, value), 0..150)
    }

    proptest! {
        #[test]
        fn cursors_follow_the_percentile_of_a_full_scan(ops in ops()) {
            run::<50>(&ops)?;
            run::<90>(&ops)?;
        }
    }

    #[test]
    fn entries_sort_by_scope_then_value() {
        let encoded = |scope: u64, value: u64| {
            let mut out = Vec::new();
            Entry { scope, value }.encode_key(&mut out);
            out
        };
        assert!(encoded(1, u64::MAX) < encoded(2, 0));
        assert!(encoded(1, 3) < encoded(1, 256));
        assert_eq!(
            Entry::<u64>::decode_key(&encoded(7, 9)),
            Some(Entry { scope: 7, value: 9 })
        );
        assert_eq!(Entry::<u64>::decode_key(&[1, 2, 3]), None);
    }
}
