//! Shared by the property tests: the queries whose answers must not depend on how the model
//! was built (folded at once, restored half-way, attached to a store).

use crm_proj_testkit::id;
use serde_json::{json, Value};

pub fn requests() -> Vec<(&'static str, Value)> {
    let mut requests = vec![
        ("tickets.list", json!({})),
        ("tickets.list", json!({"limit": 2, "after": id(1)})),
        (
            "tickets.list",
            json!({"status": "open", "priority": "urgent"}),
        ),
        ("tickets.list", json!({"status": "open"})),
        ("tickets.list", json!({"assignee": "sam"})),
        ("tickets.stats", json!({})),
    ];
    for as_of in [
        "2026-10-26T00:00:00Z",
        "2026-11-05T12:00:00Z",
        "2027-06-01T00:00:00Z",
    ] {
        requests.push(("tickets.stats", json!({"as_of": as_of})));
        requests.push((
            "tickets.stats",
            json!({"as_of": as_of, "first_response_targets_minutes": {"low": 5, "urgent": 0}}),
        ));
    }
    requests
}
