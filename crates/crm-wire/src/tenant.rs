//! Tenants: one organisation's `crm serve` with its own log, its own event stream and its own
//! subject prefix, `crm.t.<tenant>`. A tenant's callers keep today's subjects
//! (`crm.cmd.lead.CreateLead`): their NATS account imports their tenant's subjects under those
//! names, so the server, not the caller, decides the tenant.

use std::fmt;

use crate::{DEFAULT_PREFIX, EVENTS_STREAM};

/// The token between the default prefix and a tenant's name: `crm.t.<tenant>`.
pub const TENANT_TOKEN: &str = "t";
/// Where the tenant's name is in a tenant subject (`crm`=1, `t`=2, `<tenant>`=3): the
/// `account_token_position` of the CRM account's exports.
pub const TENANT_TOKEN_POSITION: usize = 3;
/// Longest tenant name.
pub const TENANT_NAME_BYTES_MAX: usize = 32;

/// A tenant's name, checked: 1 to 32 of `a-z`, `0-9` and `-`, starting with a letter and not
/// ending with `-`. It is a subject token, part of a stream name and a NATS account name, and
/// (upper-cased, `-` as `_`) part of environment variable names, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tenant(String);

/// Why a tenant name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("a tenant name is 1 to {TENANT_NAME_BYTES_MAX} characters; {0:?} is not")]
    Length(String),
    #[error("a tenant name starts with a letter a-z; {0:?} does not")]
    Start(String),
    #[error("a tenant name holds only a-z, 0-9 and '-'; {name:?} holds {bad:?}")]
    Character { name: String, bad: char },
    #[error("a tenant name does not end with '-'; {0:?} does")]
    End(String),
}

impl Tenant {
    pub fn parse(name: &str) -> Result<Tenant, TenantError> {
        if name.is_empty() || name.len() > TENANT_NAME_BYTES_MAX {
            return Err(TenantError::Length(name.to_owned()));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(TenantError::Start(name.to_owned()));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(TenantError::Character {
                name: name.to_owned(),
                bad,
            });
        }
        if name.ends_with('-') {
            return Err(TenantError::End(name.to_owned()));
        }
        Ok(Tenant(name.to_owned()))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `crm.t.<tenant>`: the prefix of every subject of this tenant's `crm` processes.
    pub fn subject_prefix(&self) -> String {
        format!("{DEFAULT_PREFIX}.{TENANT_TOKEN}.{}", self.0)
    }

    /// `CRM_EVENTS_<tenant>`: the tenant's JetStream stream.
    pub fn stream_name(&self) -> String {
        format!("{EVENTS_STREAM}_{}", self.0)
    }

    /// The name in environment variables: upper case, `-` as `_` (`acme-eu` -> `ACME_EU`).
    /// Distinct tenants never share one, since `_` is not allowed in a name.
    pub fn env_name(&self) -> String {
        self.0.to_ascii_uppercase().replace('-', "_")
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Tenant {
    type Err = TenantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tenant::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subjects;

    #[test]
    fn a_tenant_names_its_prefix_stream_and_variables() {
        let tenant = Tenant::parse("acme-eu").unwrap();
        assert_eq!(tenant.subject_prefix(), "crm.t.acme-eu");
        assert_eq!(tenant.stream_name(), "CRM_EVENTS_acme-eu");
        assert_eq!(tenant.env_name(), "ACME_EU");
        let subjects = Subjects::new(&tenant.subject_prefix());
        let subject = subjects.query("kpi.get");
        assert_eq!(
            subject.split('.').nth(TENANT_TOKEN_POSITION - 1),
            Some("acme-eu")
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for (name, expected) in [
            ("", TenantError::Length(String::new())),
            ("1acme", TenantError::Start("1acme".into())),
            ("Acme", TenantError::Start("Acme".into())),
            (
                "ac.me",
                TenantError::Character {
                    name: "ac.me".into(),
                    bad: '.',
                },
            ),
            (
                "ac_me",
                TenantError::Character {
                    name: "ac_me".into(),
                    bad: '_',
                },
            ),
            (
                "ac*",
                TenantError::Character {
                    name: "ac*".into(),
                    bad: '*',
                },
            ),
            ("acme-", TenantError::End("acme-".into())),
        ] {
            assert_eq!(Tenant::parse(name), Err(expected), "{name:?}");
        }
        assert!(Tenant::parse(&"a".repeat(TENANT_NAME_BYTES_MAX)).is_ok());
        assert!(matches!(
            Tenant::parse(&"a".repeat(TENANT_NAME_BYTES_MAX + 1)),
            Err(TenantError::Length(_))
        ));
    }
}
