//! What an export selects: a position range ([`Plan`]) and aggregates and event types
//! ([`Filter`]).

use crm_domain::{Aggregate, Event};

use crate::ExportError;

/// Which events of the range are written. Empty lists select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Bit `i` set: `Aggregate::ALL[i]` is selected; 0 means every aggregate.
    aggregates: u8,
    /// Selected event types; empty means every type.
    event_types: Vec<&'static str>,
}

impl Filter {
    /// Everything.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// From names as the CLI takes them: each item may itself be a comma-separated list;
    /// blanks are ignored. An unknown name is an error listing the valid ones.
    pub fn parse<A, T>(aggregates: A, event_types: T) -> Result<Filter, ExportError>
    where
        A: IntoIterator,
        A::Item: AsRef<str>,
        T: IntoIterator,
        T::Item: AsRef<str>,
    {
        let mut filter = Filter::default();
        for name in names(aggregates) {
            let index = Aggregate::ALL
                .iter()
                .position(|a| a.as_str() == name)
                .ok_or_else(|| ExportError::UnknownAggregate {
                    name: name.clone(),
                    valid: Aggregate::ALL.map(Aggregate::as_str).join(", "),
                })?;
            filter.aggregates |= 1 << index;
        }
        for name in names(event_types) {
            let known = Event::TYPES
                .iter()
                .find(|(_, known, _)| *known == name)
                .map(|(_, known, _)| *known)
                .ok_or_else(|| ExportError::UnknownEventType {
                    name: name.clone(),
                    valid: Event::TYPES
                        .iter()
                        .map(|(_, n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            if !filter.event_types.contains(&known) {
                filter.event_types.push(known);
            }
        }
        Ok(filter)
    }

    /// Whether an event of `event_type` on `stream` is selected. The aggregate is the
    /// stream's prefix, as in the `crm.evt.<aggregate>` subjects the tailer publishes.
    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        if self.aggregates != 0 {
            let Some(aggregate) = Aggregate::of_stream(stream) else {
                return false;
            };
            let index = Aggregate::ALL
                .iter()
                .position(|a| *a == aggregate)
                .unwrap_or(usize::MAX);
            if index >= 8 || self.aggregates & (1 << index) == 0 {
                return false;
            }
        }
        self.event_types.is_empty() || self.event_types.contains(&event_type)
    }

    /// Whether every event is selected.
    pub fn is_all(&self) -> bool {
        self.aggregates == 0 && self.event_types.is_empty()
    }
}

fn names<I>(items: I) -> impl Iterator<Item = String>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    items
        .into_iter()
        .flat_map(|item| {
            item.as_ref()
                .split(',')
                .map(|n| n.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|n| !n.is_empty())
}

/// The positions an export scans, `from..=to`; empty when `from > to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub from: u64,
    pub to: u64,
}

impl Plan {
    /// Checks the options alone, before any source is opened: positions start at 1 and
    /// `from` may not lie above `to`.
    pub fn check(from: Option<u64>, to: Option<u64>) -> Result<(), ExportError> {
        if from == Some(0) || to == Some(0) {
            return Err(ExportError::BadRange(
                "positions start at 1 (--from-position and --to-position)".to_owned(),
            ));
        }
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(ExportError::BadRange(format!(
                    "--from-position {from} is above --to-position {to}"
                )));
            }
        }
        Ok(())
    }

    /// The range against the log's `head` at the start of the export: from `from` (by default
    /// position 1) to `to` (by default the head). A `to` beyond the head is cut to the head, so
    /// the export never waits for events that do not exist yet; a `from` beyond it gives an
    /// empty plan.
    pub fn new(from: Option<u64>, to: Option<u64>, head: u64) -> Result<Plan, ExportError> {
        Plan::check(from, to)?;
        Ok(Plan {
            from: from.unwrap_or(1),
            to: to.map_or(head, |to| to.min(head)),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.from > self.to
    }

    /// Positions in the plan.
    pub fn len(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.to - self.from + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_may_be_repeated_flags_or_comma_lists() {
        let filter = Filter::parse(["lead, customer", "order"], ["LeadCreated,OrderPlaced"])
            .expect("valid names");
        assert!(filter.matches("lead-1", "LeadCreated"));
        assert!(filter.matches("order-1", "OrderPlaced"));
        assert!(!filter.matches("customer-1", "CustomerRegistered"));
        assert!(!filter.matches("ticket-1", "LeadCreated"));
        assert!(!filter.is_all());
    }

    #[test]
    fn no_names_select_everything() {
        let filter = Filter::parse(Vec::<String>::new(), [" ", ""]).expect("empty");
        assert!(filter.is_all());
        assert_eq!(filter, Filter::all());
        assert!(filter.matches("anything", "Whatever"));
    }

    #[test]
    fn the_aggregate_is_the_streams_prefix() {
        let filter = Filter::parse(["pipeline"], Vec::<String>::new()).unwrap();
        assert!(filter.matches("pipeline-default", "PipelineDefined"));
        assert!(!filter.matches("pipelines", "PipelineDefined"));
        assert!(!filter.matches("pipeline-", "PipelineDefined"));
        assert!(!filter.matches("lead-1", "PipelineDefined"));
        for aggregate in Aggregate::ALL {
            let filter = Filter::parse([aggregate.as_str()], Vec::<String>::new()).unwrap();
            assert!(
                filter.matches(&format!("{aggregate}-x"), "E"),
                "{aggregate}"
            );
        }
    }

    #[test]
    fn an_unknown_aggregate_lists_the_valid_ones() {
        let error = Filter::parse(["lead", "leads"], Vec::<String>::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown aggregate `leads`; valid: lead, customer, order, ticket, campaign, pipeline"
        );
    }

    #[test]
    fn an_unknown_event_type_lists_every_valid_one() {
        let error = Filter::parse(Vec::<String>::new(), ["LeadCreated", "LeadMade"]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("unknown event type `LeadMade`; valid: LeadCreated, "),
            "{text}"
        );
        for (_, name, _) in Event::TYPES {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        assert!(!text.contains('\n'));
        // Names are case-sensitive, as in the subjects.
        assert!(Filter::parse(Vec::<String>::new(), ["leadcreated"]).is_err());
    }

    #[test]
    fn the_plan_defaults_to_the_head_and_cuts_at_it() {
        assert_eq!(Plan::new(None, None, 7).unwrap(), Plan { from: 1, to: 7 });
        assert_eq!(Plan::new(Some(3), Some(5), 7).unwrap().len(), 3);
        assert_eq!(
            Plan::new(Some(3), Some(50), 7).unwrap(),
            Plan { from: 3, to: 7 }
        );
        let beyond = Plan::new(Some(9), None, 7).unwrap();
        assert!(beyond.is_empty());
        assert_eq!(beyond.len(), 0);
        assert!(Plan::new(None, None, 0).unwrap().is_empty());
    }

    #[test]
    fn a_bad_range_is_refused_before_anything_is_read() {
        assert_eq!(
            Plan::check(Some(5), Some(4)).unwrap_err().to_string(),
            "--from-position 5 is above --to-position 4"
        );
        assert!(Plan::check(Some(0), None).is_err());
        assert!(Plan::check(None, Some(0)).is_err());
        assert!(Plan::check(Some(4), Some(4)).is_ok());
        assert!(Plan::new(Some(5), Some(4), 100).is_err());
    }
}
