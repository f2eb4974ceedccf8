//! The customer view read model (`docs/DOMAIN.md`, "Read models"): one view per customer with
//! profile, lifecycle stage, orders and revenue, linked leads, tickets, surveys and
//! interactions; served by the `customer.get` and `customer.list` queries.
//!
//! A deterministic fold (docs/DESIGN.md rule 10): time comes only from `occurred_at`, every map is
//! ordered, and the store holds one bincode record per key:
//!
//! | key | value |
//! | --- | --- |
//! | `customer/<uuid>` | the registered customer: profile, contacts, churn, surveys, interactions |
//! | `lead/<uuid>` | a lead's customer link, name, pipeline, stage, status and estimated value |
//! | `order/<uuid>` | an order's customer, amount, cost, refunds and cancellation |
//! | `ticket/<uuid>` | a ticket's customer, subject, category, priority and status |
//!
//! What links to a customer (its leads, tickets and order totals) is derived from those
//! records in memory and recomputed by `restore`, so nothing is stored twice.
//!
//! Choices the contract leaves open:
//! - Orders, tickets and leads naming a customer id that was never registered are kept under
//!   that id; they show once (if ever) the customer is registered. Queries only return
//!   registered customers.
//! - Events for an unknown lead, order or ticket change nothing (a refund of an order never
//!   seen is not counted). Events that do not fit a record's state (a second registration, a
//!   refund of a cancelled order, a stage change of a closed lead) change nothing either.
//! - Orders count unless cancelled; a cancelled order contributes nothing to the counts,
//!   revenue, refunds, cost or order times. A refunded order still counts.
//! - "Last" (order, ticket, interaction, NPS, CSAT) means latest in business time
//!   (`occurred_at`), the later event winning a tie: backfilled events do not displace newer
//!   facts.
//! - A lead closed (lost, disqualified) without a customer is dropped from the store, since
//!   no later event can link it.
//! - Money sums are exact (`i128`) in memory and saturate to `i64` on the wire.

mod model;
mod query;
mod store;
mod view;

use std::collections::BTreeSet;

use crm_projector::{Change, EventEnvelope, Projection, QueryError};
use uuid::Uuid;

use model::Model;
use store::Key;

pub use query::{ListRequest, Page, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
pub use store::StoreError;
pub use view::{
    ContactView, CustomerView, InteractionView, LeadView, LeadsView, LifecycleStage,
    MoneyByCurrency, TicketView, COMPLETENESS_FIELDS, LOYAL_ORDERS_MIN,
};

/// The projection's name: its store, durable consumer and status entry.
pub const NAME: &str = "customers";
/// The queries it answers (`crm.query.<name>`).
pub const QUERIES: &[&str] = &["customer.get", "customer.list"];

/// The customer view read model. See the crate docs for the store layout and choices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomersProjection {
    model: Model,
}

impl CustomersProjection {
    pub fn new() -> CustomersProjection {
        CustomersProjection::default()
    }

    /// The view of a registered customer.
    pub fn customer(&self, customer_id: Uuid) -> Option<CustomerView> {
        let record = self.model.customers.get(&customer_id)?;
        Some(view::render(&self.model, customer_id, record))
    }

    /// One page of registered customers matching `request`, ordered by customer id.
    pub fn list(&self, request: &ListRequest) -> Page {
        query::list(&self.model, request)
    }

    /// Registered customers.
    pub fn customers_count(&self) -> usize {
        self.model.customers.len()
    }

    /// Rebuilds the model from stored entries, replacing whatever it held.
    pub fn restore_entries(
        &mut self,
        entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let mut model = Model::default();
        for (key, value) in entries {
            match Key::decode(&key)? {
                Key::Customer(id) => {
                    model.customers.insert(id, store::decode(&key, &value)?);
                }
                Key::Lead(id) => {
                    model.leads.insert(id, store::decode(&key, &value)?);
                }
                Key::Order(id) => {
                    model.orders.insert(id, store::decode(&key, &value)?);
                }
                Key::Ticket(id) => {
                    model.tickets.insert(id, store::decode(&key, &value)?);
                }
            }
        }
        model.rebuild_links();
        self.model = model;
        Ok(())
    }
}

impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&mut self, event: &EventEnvelope) {
        self.model.apply(event);
    }

    fn drain_changes(&mut self) -> Vec<Change> {
        let dirty: BTreeSet<Key> = std::mem::take(&mut self.model.dirty);
        let model = &self.model;
        dirty
            .into_iter()
            .map(|key| {
                let value = match key {
                    Key::Customer(id) => model.customers.get(&id).map(store::encode),
                    Key::Lead(id) => model.leads.get(&id).map(store::encode),
                    Key::Order(id) => model.orders.get(&id).map(store::encode),
                    Key::Ticket(id) => model.tickets.get(&id).map(store::encode),
                };
                (key.encode(), value)
            })
            .collect()
    }

    type RestoreError = StoreError;

    fn restore(
        &mut self,
        entries: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.restore_entries(entries)
    }

    fn query(
        &self,
        name: &str,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, QueryError> {
        match name {
            "customer.get" => {
                let customer_id = query::parse_get(request)?;
                let view = self
                    .customer(customer_id)
                    .ok_or_else(|| QueryError::NotFound(format!("customer {customer_id}")))?;
                Ok(query::object([("customer", query::to_json(&view)?)]))
            }
            "customer.list" => {
                let request = ListRequest::parse(request)?;
                let page = self.list(&request);
                Ok(query::object([
                    ("customers", query::to_json(&page.customers)?),
                    ("next", query::to_json(&page.next)?),
                ]))
            }
            other => Err(QueryError::UnknownQuery(other.to_owned())),
        }
    }

    fn queries(&self) -> &'static [&'static str] {
        QUERIES
    }
}
