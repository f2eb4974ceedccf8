//! The customer view read model (`docs/DOMAIN.md`, "Read models"): one view per customer with
//! profile, lifecycle stage, orders and revenue, linked leads, tickets, surveys and
//! interactions; served by the `customer.get` and `customer.list` queries.
//!
//! A deterministic fold (docs/DESIGN.md rule 10): time comes only from `occurred_at`, every map is
//! ordered. It is a [`ReadModel`] of the projection SDK, so its stored state is four tables,
//! one record codec row per key (stored key: `<table>/<key bytes>`, the UUID's 16 raw bytes),
//! store format 2 (format 1 kept an order's refunds in an `i64`; such a store is rebuilt from
//! the log at start):
//!
//! | table | key | row |
//! | --- | --- | --- |
//! | `customer` | customer id | the registered customer: profile, contacts, churn, surveys, interactions |
//! | `lead` | lead id | a lead's customer link, name, pipeline, stage, status and estimated value |
//! | `order` | order id | an order's customer, amount, cost, refunds and cancellation |
//! | `ticket` | ticket id | a ticket's customer, subject, category, priority and status |
//!
//! What links to a customer (its leads, tickets and order totals) is derived from those rows
//! in memory and recomputed by `restored`, so nothing is stored twice. A store of the
//! earlier layout (text keys `customer/<hyphenated uuid>`, no format: read as 0) is rebuilt
//! from the log by `Projector::open_root` (`Projector::open` refuses it).
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
//! - Money sums are exact (`i128`) in memory and on the wire: `revenue`, `refunds`,
//!   `net_revenue` and `margin` are JSON numbers while exact in every parser (|n| <= 2^53 - 1,
//!   else `null`), and `revenue_exact`, ... carry every sum as a string of decimal digits
//!   (docs/NATS_API.md, "Big numbers").

mod model;
mod query;
mod view;

use crm_projector::{EventEnvelope, QueryError, ReadModel, StoredTable};
use uuid::Uuid;

use model::Model;

pub use query::{ListRequest, Page, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
pub use view::{
    ContactView, CustomerView, ExactByCurrency, InteractionView, LeadView, LeadsView,
    LifecycleStage, MoneyByCurrency, TicketView, COMPLETENESS_FIELDS, LOYAL_ORDERS_MIN,
};

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
}

impl ReadModel for CustomersProjection {
    const NAME: &'static str = "customers";
    const QUERIES: &'static [&'static str] = &["customer.get", "customer.list"];
    /// 2: an order's refunds are summed in an `i128` (1: `i64`).
    const STORE_FORMAT: u32 = 2;

    fn apply(&mut self, event: &EventEnvelope) {
        self.model.apply(event);
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

    fn tables(&mut self) -> Vec<&mut dyn StoredTable> {
        let m = &mut self.model;
        vec![
            &mut m.customers,
            &mut m.leads,
            &mut m.orders,
            &mut m.tickets,
        ]
    }

    /// The links are derived, never stored: rebuild them from the restored rows.
    fn restored(&mut self) {
        self.model.rebuild_links();
    }
}
