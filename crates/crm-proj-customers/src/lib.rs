//! The customer view read model (`docs/DOMAIN.md`, "Read models"): one view per customer with
//! profile, lifecycle stage, orders and revenue, linked leads, tickets, surveys and
//! interactions; served by the `customer.get` and `customer.list` queries.
//!
//! A deterministic fold (docs/DESIGN.md rule 10): time comes only from `occurred_at`, every map is
//! ordered. It is a [`ReadModel`] of the projection SDK, so its stored state is tables of
//! record codec rows (stored key: `<table>/<key bytes>`, a UUID as its 16 raw bytes, a time
//! as its 8 bytes of microseconds with the sign bit flipped, big-endian), store format 3:
//!
//! | table | key | row |
//! | --- | --- | --- |
//! | `customer` | customer id | the registered customer: profile, contacts, churn, surveys, interactions |
//! | `lead` | lead id | a lead's customer link, name, pipeline, stage, status and estimated value |
//! | `order` | order id | an order's customer, amount, cost, refunds and cancellation |
//! | `ticket` | ticket id | a ticket's customer, subject, category, priority and status |
//! | `customer_lead` | (customer id, lead id) | nothing: the lead is linked to the customer |
//! | `order_totals` | customer id | count and per-currency sums of the orders not cancelled (no row without one) |
//! | `order_placed` | (customer id, placement time) | orders not cancelled placed then (no row at 0) |
//! | `ticket_totals` | customer id | tickets, open tickets, and the last one opened |
//! | `totals` | (one row) | registered customers |
//!
//! The tables are the whole state: what links to a customer (its leads, ticket counts and
//! order totals) is kept by the fold in its own rows, for ids not registered (yet) too, so a
//! customer's view reads a handful of rows (its record, `order_totals`, `ticket_totals` and
//! its last ticket, the first row of each `order_placed` table) plus two per linked lead
//! (the link and the lead), whatever its orders and tickets; nothing is recomputed at start. Format 2 derived those links in memory from
//! the four record tables and counted customers by reading them all; format 1 kept an
//! order's refunds in an `i64`. A store of another format is rebuilt from the log at start,
//! and so is one of the earlier layout (text keys `customer/<hyphenated uuid>`, no format:
//! read as 0) by `Projector::open_root` (`Projector::open` refuses it).
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
        Some(view::render(&self.model, customer_id, &record))
    }

    /// One page of registered customers matching `request`, ordered by customer id.
    pub fn list(&self, request: &ListRequest) -> Page {
        query::list(&self.model, request)
    }

    /// Registered customers (a counter the fold keeps).
    pub fn customers_count(&self) -> usize {
        usize::try_from(self.model.totals.get().customers).unwrap_or(usize::MAX)
    }
}

impl ReadModel for CustomersProjection {
    const NAME: &'static str = "customers";
    const QUERIES: &'static [&'static str] = &["customer.get", "customer.list"];
    /// 4: no newest-first copy of `order_placed` (3: with one; 2: the links derived in
    /// memory; 1: an order's refunds summed in an `i64`).
    const STORE_FORMAT: u32 = 4;

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
            &mut m.customer_leads,
            &mut m.order_totals,
            &mut m.order_placed,
            &mut m.ticket_totals,
            &mut m.totals,
        ]
    }
}
