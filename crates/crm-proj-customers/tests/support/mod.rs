//! Shared by the property tests: the queries whose answers must not depend on how the model
//! was built (folded at once, restored half-way, attached to a store).

use crm_proj_testkit::id;
use serde_json::{json, Value};

pub fn requests() -> Vec<(&'static str, Value)> {
    let mut requests: Vec<(&'static str, Value)> = (0..=5u128)
        .map(|n| ("customer.get", json!({"customer_id": id(n).to_string()})))
        .collect();
    for request in [
        json!({}),
        json!({"limit": 2}),
        json!({"owner": "ann"}),
        json!({"segment": "smb", "limit": 1, "after": id(1).to_string()}),
        json!({"lifecycle_stage": "first_purchase"}),
        json!({"lifecycle_stage": "churned"}),
    ] {
        requests.push(("customer.list", request));
    }
    requests
}
