//! Whose subjects a subcommand uses: the default installation (`crm.`), a tenant
//! (`crm.t.<tenant>.`, with its own event stream), or an explicit subject prefix.

use clap::Args;
use crm_wire::{Subjects, Tenant};

/// The subject prefix, given directly or through a tenant.
#[derive(Args, Clone, Debug, Default)]
pub struct ScopeArgs {
    /// The tenant this process serves: subject prefix `crm.t.<tenant>` and event stream
    /// `CRM_EVENTS_<tenant>` (docs/SCALING.md). 1 to 32 of a-z, 0-9 and '-', starting with a
    /// letter.
    #[arg(
        long,
        env = "CRM_TENANT",
        value_parser = parse_tenant,
        conflicts_with = "subject_prefix"
    )]
    pub tenant: Option<Tenant>,
    /// Subject prefix of the whole contract [default: crm, or crm.t.<tenant> with --tenant].
    #[arg(long, env = "CRM_SUBJECT_PREFIX")]
    pub subject_prefix: Option<String>,
}

impl ScopeArgs {
    pub fn subjects(&self) -> Subjects {
        match (&self.tenant, &self.subject_prefix) {
            (_, Some(prefix)) => Subjects::new(prefix),
            (Some(tenant), None) => Subjects::new(&tenant.subject_prefix()),
            (None, None) => Subjects::default(),
        }
    }

    /// The event stream: `explicit` (`--stream-name`), else the tenant's, else `CRM_EVENTS`.
    pub fn stream_name(&self, explicit: Option<&str>) -> String {
        match (explicit, &self.tenant) {
            (Some(name), _) => name.to_owned(),
            (None, Some(tenant)) => tenant.stream_name(),
            (None, None) => crm_wire::EVENTS_STREAM.to_owned(),
        }
    }
}

/// `--stream-name`: a JetStream stream name (no whitespace, `.`, `*`, `>`, path separators).
pub fn parse_stream_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 255 {
        return Err("a stream name is 1 to 255 characters".to_owned());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(format!("a stream name cannot hold {bad:?}"));
    }
    Ok(text.to_owned())
}

fn parse_tenant(text: &str) -> Result<Tenant, String> {
    Tenant::parse(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_sets_prefix_and_stream_unless_given() {
        let tenant = ScopeArgs {
            tenant: Some(Tenant::parse("acme").unwrap()),
            subject_prefix: None,
        };
        assert_eq!(tenant.subjects().prefix(), "crm.t.acme");
        assert_eq!(tenant.stream_name(None), "CRM_EVENTS_acme");
        assert_eq!(tenant.stream_name(Some("OTHER")), "OTHER");
        let default = ScopeArgs::default();
        assert_eq!(default.subjects().prefix(), "crm");
        assert_eq!(default.stream_name(None), "CRM_EVENTS");
    }

    #[test]
    fn stream_names_are_checked() {
        assert!(parse_stream_name("CRM_EVENTS_acme-eu").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b"] {
            assert!(parse_stream_name(bad).is_err(), "{bad:?}");
        }
    }
}
