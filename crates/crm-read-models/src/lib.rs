//! The read models this backend runs, in one list. `crm serve`, `crm project`, `crm rebuild`,
//! `crm replay`, their `--help` and their validation enumerate it, so adding a read model is
//! one line in [`ALL`] (see docs/ARCHITECTURE.md, "Adding a read model").

use crm_projector::{Kind, ReadModelKind};

/// Every read model, by name order.
pub static ALL: &[&dyn ReadModelKind] = &[
    &Kind::<crm_proj_customers::CustomersProjection>::NEW,
    &Kind::<crm_proj_funnel::FunnelProjection>::NEW,
    &Kind::<crm_proj_kpis::KpiProjection>::NEW,
    &Kind::<crm_proj_tickets::TicketsProjection>::NEW,
];

/// A name that is no read model's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown read model `{name}`; known: {known}")]
pub struct UnknownReadModel {
    pub name: String,
    pub known: String,
}

/// The names of every read model, in [`ALL`]'s order.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|kind| kind.name()).collect()
}

/// The read model called `name`.
pub fn find(name: &str) -> Result<&'static dyn ReadModelKind, UnknownReadModel> {
    ALL.iter()
        .copied()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| UnknownReadModel {
            name: name.to_owned(),
            known: names().join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_sorted_and_found() {
        let names = names();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for name in &names {
            assert_eq!(find(name).map(|kind| kind.name()), Ok(*name));
        }
        let unknown = find("nope").err().map(|e| e.to_string());
        assert_eq!(
            unknown.as_deref(),
            Some(format!("unknown read model `nope`; known: {}", names.join(", ")).as_str())
        );
    }

    #[test]
    fn every_query_belongs_to_one_read_model() {
        let mut queries: Vec<&str> = ALL
            .iter()
            .flat_map(|kind| kind.queries())
            .copied()
            .collect();
        let count = queries.len();
        queries.sort_unstable();
        queries.dedup();
        assert_eq!(queries.len(), count, "a query name is served twice");
    }
}
