//! The projection SDK: a read model declares its name, its queries, the format of its stored
//! rows and its tables (`table.rs`), and writes its fold and its queries; draining, restoring
//! and the rest of [`Projection`] come with it.

use serde::de::DeserializeOwned;

use crate::projection::{Change, EventEnvelope, Projection, QueryError};
use crate::rows::StoreRows;
use crate::table::{check_names, drain_tables, restore_tables, StoredTable, TableError};

/// A read model built with the SDK. Implementations are deterministic folds: no clock, no
/// randomness, no unordered iteration into rows or replies (docs/DESIGN.md rule 10).
pub trait ReadModel: Default + Send + Sync + 'static {
    /// Stable name: the store directory, the durable consumer, the status entry.
    const NAME: &'static str;
    /// The queries it answers (subjects `crm.query.<query>`).
    const QUERIES: &'static [&'static str];
    /// The format of its stored rows. Bump it whenever a row type or a key changes shape: a
    /// store written in another format is rebuilt from the log at start.
    const STORE_FORMAT: u32;

    /// Folds one event in. Events arrive exactly once each, in position order.
    fn apply(&mut self, event: &EventEnvelope);

    /// Answers query `name` with a JSON body (without `position`: the runtime adds it).
    fn query(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, QueryError>;

    /// Every table of the model, each named uniquely. The tables are the whole state: a
    /// model attached to a store keeps nothing else across events (what it derives from rows
    /// is itself a table), so it needs no restore at start.
    fn tables(&mut self) -> Vec<&mut dyn StoredTable>;
}

impl<M: ReadModel> Projection for M {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn store_format(&self) -> u32 {
        M::STORE_FORMAT
    }

    fn apply(&mut self, event: &EventEnvelope) {
        ReadModel::apply(self, event)
    }

    fn drain_changes(&mut self) -> Vec<Change> {
        drain_tables(&mut self.tables())
    }

    type RestoreError = TableError;

    fn restore(
        &mut self,
        entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), TableError> {
        // Restored into a fresh model and swapped in whole: a damaged store leaves this one
        // as it was.
        let mut fresh = M::default();
        restore_tables(&mut fresh.tables(), entries)?;
        *self = fresh;
        Ok(())
    }

    fn attach(&mut self, rows: &StoreRows) -> Result<(), TableError> {
        let mut tables = self.tables();
        check_names(&tables)?;
        // The cache is shared evenly by the tables of many rows.
        let many = tables.iter().filter(|t| !t.is_single()).count().max(1);
        let share = rows.cache_bytes() / many;
        for table in tables.iter_mut() {
            table.attach(rows, share)?;
        }
        Ok(())
    }

    fn pending_rows(&mut self) -> usize {
        self.tables().iter().map(|t| t.pending_rows()).sum()
    }

    fn query(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, QueryError> {
        ReadModel::query(self, name, request)
    }

    fn queries(&self) -> &'static [&'static str] {
        M::QUERIES
    }
}

/// Reads a query's body into the model's request type: `null` reads as `{}`, anything but an
/// object is `Malformed`, and so is what `T` refuses (a bad value; an unknown field when `T`
/// denies them). The runtime has already taken out its own fields (`min_position`,
/// `timeout_ms`).
pub fn parse_request<T: DeserializeOwned>(request: &serde_json::Value) -> Result<T, QueryError> {
    let empty = serde_json::Value::Object(serde_json::Map::new());
    let request = match request {
        serde_json::Value::Null => &empty,
        serde_json::Value::Object(_) => request,
        _ => {
            return Err(QueryError::Malformed(
                "the request must be a JSON object".into(),
            ))
        }
    };
    T::deserialize(request).map_err(|e| QueryError::Malformed(e.to_string()))
}
