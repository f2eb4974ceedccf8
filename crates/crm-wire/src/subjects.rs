//! Subject names. The prefix is configurable and defaults to `crm`.

use crm_domain::{Aggregate, Command};

pub const DEFAULT_PREFIX: &str = "crm";

/// All subjects of one installation, derived from its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

/// A parsed `<prefix>.cmd.<aggregate>.<CommandName>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSubject<'a> {
    pub aggregate: Aggregate,
    pub command: &'a str,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects::new(DEFAULT_PREFIX)
    }
}

impl Subjects {
    pub fn new(prefix: &str) -> Subjects {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What the command service subscribes to.
    pub fn commands_wildcard(&self) -> String {
        format!("{}.cmd.>", self.prefix)
    }

    pub fn command(&self, aggregate: Aggregate, name: &str) -> String {
        format!("{}.cmd.{}.{}", self.prefix, aggregate, name)
    }

    pub fn command_of(&self, command: &Command) -> String {
        self.command(command.aggregate(), command.name())
    }

    /// Parses a command subject; `None` when it is not `<prefix>.cmd.<aggregate>.<name>` with
    /// a known aggregate (the name itself is checked when the body is decoded).
    pub fn parse_command<'a>(&self, subject: &'a str) -> Option<CommandSubject<'a>> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix(".cmd.")?;
        let (aggregate, command) = rest.split_once('.')?;
        if command.is_empty() || command.contains('.') {
            return None;
        }
        Some(CommandSubject {
            aggregate: Aggregate::parse(aggregate)?,
            command,
        })
    }

    /// `crm.evt.<aggregate>.<EventName>`.
    pub fn event(&self, aggregate: Aggregate, event_type: &str) -> String {
        format!("{}.evt.{}.{}", self.prefix, aggregate, event_type)
    }

    pub fn events_wildcard(&self) -> String {
        format!("{}.evt.>", self.prefix)
    }

    pub fn log_head(&self) -> String {
        format!("{}.log.head", self.prefix)
    }

    pub fn log_read(&self) -> String {
        format!("{}.log.read", self.prefix)
    }

    pub fn query(&self, name: &str) -> String {
        format!("{}.query.{}", self.prefix, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_subjects() {
        let subjects = Subjects::default();
        let parsed = subjects.parse_command("crm.cmd.lead.CreateLead").unwrap();
        assert_eq!(parsed.aggregate, Aggregate::Lead);
        assert_eq!(parsed.command, "CreateLead");
        assert!(subjects.parse_command("crm.cmd.nope.CreateLead").is_none());
        assert!(subjects.parse_command("crm.cmd.lead").is_none());
        assert!(subjects.parse_command("crm.cmd.lead.A.B").is_none());
        assert!(subjects
            .parse_command("other.cmd.lead.CreateLead")
            .is_none());
        assert_eq!(
            subjects.event(Aggregate::Lead, "LeadCreated"),
            "crm.evt.lead.LeadCreated"
        );
    }
}
