//! The NATS accounts of a multi-tenant deployment, made from the per-service users of
//! `deploy/nats/auth.conf` (docs/PERMISSIONS.md).
//!
//! Stage 1, "a log per tenant": tenant T is one `crm serve --subject-prefix crm.t.T` with its
//! stream `CRM_EVENTS_T`, plus `crm project` processes. NATS routes and isolates with accounts:
//!
//! - the account `CRM` (JetStream on) holds every tenant's responders, each user confined to
//!   its tenant (`crm-acme` may use `crm.t.acme.>`, `CRM_EVENTS_acme`, `_INBOX_crm-acme`), and
//!   the platform operator (`crm.t.*.`); it exports the callers' services as
//!   `crm.t.*.<family>` with `account_token_position` 3, so only the account named `acme` may
//!   import `crm.t.acme.<family>`;
//! - each tenant has an account named like it, holding its callers (`acme-sales-app`, and
//!   `acme-operator` for that tenant alone), who keep today's subjects (`crm.cmd.lead.CreateLead`) through imports of their tenant's
//!   services under those names. The server, not the caller, picks the tenant.
//!
//! [`AuthConf::parse`] reads the source (the shipped one is [`SOURCE_AUTH_CONF`]),
//! [`Accounts::plan`] makes the accounts and refuses what it cannot carry over,
//! [`Accounts::render`] writes them, [`Accounts::required_env`] lists the password variables.
//! Pure functions: nothing here reads files or the environment.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod conf;
mod error;
mod plan;
mod render;
mod rewrite;
mod source;

use crm_wire::Tenant;

pub use error::{AccountsError, Direction, SyntaxError};
pub use plan::{
    AccountUser, Accounts, Dropped, Import, RenderOptions, TenantAccount, CRM_ACCOUNT,
    OPERATOR_USER, PASSWORD_VAR_PREFIX, READ_REPLICAS_MAX,
};
pub use rewrite::DropReason;
pub use source::{AuthConf, User, INPUT_BYTES_MAX, USER_NAME_BYTES_MAX};

/// deploy/nats/auth.conf as built in, so the accounts can be rendered without the repository.
pub const SOURCE_AUTH_CONF: &str = include_str!("../../../deploy/nats/auth.conf");

impl AuthConf {
    /// The built-in [`SOURCE_AUTH_CONF`], parsed.
    pub fn shipped() -> Result<AuthConf, AccountsError> {
        AuthConf::parse(SOURCE_AUTH_CONF)
    }
}

/// The configuration of `tenants` from `source`: [`Accounts::plan`], then [`Accounts::render`].
pub fn render(
    source: &AuthConf,
    tenants: &[Tenant],
    options: &RenderOptions,
) -> Result<String, AccountsError> {
    Ok(Accounts::plan(source, tenants, options)?.render())
}

/// The password variables that configuration references, sorted (for an `.env` file).
pub fn required_env(
    source: &AuthConf,
    tenants: &[Tenant],
    options: &RenderOptions,
) -> Result<Vec<String>, AccountsError> {
    Ok(Accounts::plan(source, tenants, options)?.required_env())
}

#[cfg(test)]
mod tests;
