//! Query requests (`customer.get`, `customer.list`): parsing, filtering and paging. Fields
//! the runtime reads (`min_position`, `timeout_ms`) and any other unknown field are ignored.

use std::ops::Bound;

use crm_domain::types::Segment;
use crm_projector::QueryError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Model;
use crate::view::{self, CustomerView, LifecycleStage};

/// Customers per page when the request gives no `limit`.
pub const LIST_LIMIT_DEFAULT: usize = 50;
/// Largest page; a larger `limit` is served as this.
pub const LIST_LIMIT_MAX: usize = 500;

/// A `customer.list` request: every filter given must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// The owner, exactly; customers without an owner never match.
    pub owner: Option<String>,
    pub segment: Option<Segment>,
    pub lifecycle_stage: Option<LifecycleStage>,
    /// 1..=[`LIST_LIMIT_MAX`].
    pub limit: usize,
    /// Start after this customer id (the previous page's `next`).
    pub after: Option<Uuid>,
}

impl Default for ListRequest {
    fn default() -> ListRequest {
        ListRequest {
            owner: None,
            segment: None,
            lifecycle_stage: None,
            limit: LIST_LIMIT_DEFAULT,
            after: None,
        }
    }
}

/// A page of customers, ordered by customer id. `next` is the cursor for the following page
/// (the last id of this one) when more customers match, else `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub customers: Vec<CustomerView>,
    pub next: Option<Uuid>,
}

#[derive(Deserialize)]
struct RawList {
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    segment: Option<Segment>,
    #[serde(default)]
    lifecycle_stage: Option<LifecycleStage>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    after: Option<Uuid>,
}

#[derive(Deserialize)]
struct RawGet {
    customer_id: Uuid,
}

impl ListRequest {
    /// Parses a `customer.list` body: `null` or an object; a wrong type, an unknown segment
    /// or lifecycle stage, a non-UUID cursor or a zero limit are `Malformed`.
    pub fn parse(request: &serde_json::Value) -> Result<ListRequest, QueryError> {
        if request.is_null() {
            return Ok(ListRequest::default());
        }
        let raw: RawList = from_request(request)?;
        let limit = match raw.limit {
            None => LIST_LIMIT_DEFAULT,
            Some(0) => return Err(QueryError::Malformed("`limit` must be at least 1".into())),
            Some(limit) => usize::try_from(limit).map_or(LIST_LIMIT_MAX, |l| l.min(LIST_LIMIT_MAX)),
        };
        Ok(ListRequest {
            owner: raw.owner,
            segment: raw.segment,
            lifecycle_stage: raw.lifecycle_stage,
            limit,
            after: raw.after,
        })
    }
}

pub(crate) fn parse_get(request: &serde_json::Value) -> Result<Uuid, QueryError> {
    from_request::<RawGet>(request).map(|raw| raw.customer_id)
}

fn from_request<T: for<'de> Deserialize<'de>>(
    request: &serde_json::Value,
) -> Result<T, QueryError> {
    if !request.is_object() {
        return Err(QueryError::Malformed(
            "the request must be a JSON object".into(),
        ));
    }
    T::deserialize(request).map_err(|e| QueryError::Malformed(e.to_string()))
}

pub(crate) fn list(model: &Model, request: &ListRequest) -> Page {
    let limit = request.limit.clamp(1, LIST_LIMIT_MAX);
    let start = request.after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut matching = model
        .customers
        .range((start, Bound::Unbounded))
        .filter(|(id, c)| {
            request
                .owner
                .as_ref()
                .is_none_or(|owner| c.owner.as_ref() == Some(owner))
                && request
                    .segment
                    .is_none_or(|segment| c.segment == Some(segment))
                && request
                    .lifecycle_stage
                    .is_none_or(|stage| view::lifecycle_stage(model, *id, c) == stage)
        });
    let customers: Vec<CustomerView> = matching
        .by_ref()
        .take(limit)
        .map(|(id, c)| view::render(model, id, &c))
        .collect();
    let more = matching.next().is_some();
    let next = customers.last().filter(|_| more).map(|c| c.customer_id);
    Page { customers, next }
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, QueryError> {
    // Views hold strings, integers, finite floats and string-keyed maps: rendering cannot
    // fail, but if it ever did the caller gets an error rather than a panic.
    serde_json::to_value(value)
        .map_err(|e| QueryError::Malformed(format!("cannot render the reply: {e}")))
}

pub(crate) fn object<const N: usize>(fields: [(&str, serde_json::Value); N]) -> serde_json::Value {
    serde_json::Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
}
