//! The accounts made from a source and a tenant list, as data: who is in which account with
//! which subjects, what the CRM account exports and each tenant imports. Rendering it
//! ([`Accounts::render`]) cannot fail, so every refusal happens here.

use std::collections::{BTreeMap, BTreeSet};

use crm_wire::{Tenant, DEFAULT_PREFIX, TENANT_TOKEN};

use crate::rewrite::{self, Carried, DropReason, TOKEN_WILDCARD};
use crate::{AccountsError, AuthConf, Direction, User};

/// The account of the platform: every tenant's responders and event streams, the operator.
pub const CRM_ACCOUNT: &str = "CRM";
/// The source user that becomes the platform operator, across tenants.
pub const OPERATOR_USER: &str = "operator";
/// Every password variable starts so (deploy/nats/.env.example).
pub const PASSWORD_VAR_PREFIX: &str = "CRM_NATS_PASSWORD_";
/// Most read replicas of one read model: bounds the output.
pub const READ_REPLICAS_MAX: u32 = 64;

/// How to render.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderOptions {
    /// How many read replicas of each read model run (`crm project --replica N`): replica N
    /// uses its own durable consumer `crm-proj-<model>-rN`, which its user must be granted.
    pub read_replicas: u32,
}

impl Default for RenderOptions {
    fn default() -> RenderOptions {
        RenderOptions { read_replicas: 1 }
    }
}

impl RenderOptions {
    pub fn with_read_replicas(mut self, read_replicas: u32) -> RenderOptions {
        self.read_replicas = read_replicas;
        self
    }
}

/// A subject of a source user left out of a tenant's account, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub direction: Direction,
    pub subject: String,
    pub reason: DropReason,
}

/// One user of the rendered accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUser {
    name: String,
    source: String,
    tenant: Option<Tenant>,
    publish: Vec<String>,
    subscribe: Vec<String>,
    allow_responses: bool,
    dropped: Vec<Dropped>,
}

impl AccountUser {
    /// `crm-acme`, `acme-sales-app`, `operator`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source user it is made from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The tenant it serves or belongs to; `None` for the operator (every tenant).
    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }

    /// The environment variable its password comes from: `CRM_NATS_PASSWORD_` and its name
    /// upper-cased with `-` as `_` (`CRM_NATS_PASSWORD_CRM_PROJECTOR_ACME_EU`). Names hold only
    /// `a-z0-9-`, so distinct users never share one.
    pub fn password_var(&self) -> String {
        password_var(&self.name)
    }

    /// Empty for a responder that may publish only its replies, or (rendered as a deny of
    /// everything) a caller left with nothing to publish.
    pub fn publish(&self) -> &[String] {
        &self.publish
    }

    pub fn subscribe(&self) -> &[String] {
        &self.subscribe
    }

    pub fn allow_responses(&self) -> bool {
        self.allow_responses
    }

    /// What of its source user's subjects it does not get (callers only).
    pub fn dropped(&self) -> &[Dropped] {
        &self.dropped
    }
}

fn password_var(name: &str) -> String {
    format!(
        "{PASSWORD_VAR_PREFIX}{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// A service import of a tenant's account: `subject` of the CRM account as `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// `crm.t.<tenant>.cmd.>`
    pub subject: String,
    /// `crm.cmd.>`
    pub to: String,
}

/// The account of one tenant: its callers and its imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantAccount {
    tenant: Tenant,
    users: Vec<AccountUser>,
    imports: Vec<Import>,
}

impl TenantAccount {
    /// Also the account's name: the exports' `account_token_position` requires it.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    pub fn users(&self) -> &[AccountUser] {
        &self.users
    }

    pub fn imports(&self) -> &[Import] {
        &self.imports
    }
}

/// The whole configuration, before it is written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    tenants: Vec<Tenant>,
    read_replicas: u32,
    crm_users: Vec<AccountUser>,
    families: Vec<String>,
    tenant_accounts: Vec<TenantAccount>,
}

impl Accounts {
    /// The accounts of `tenants` (sorted; a duplicate, or none, is an error) from the users of
    /// `source`: each responder once per tenant in the CRM account, each other user (a caller,
    /// the operator included) once in each tenant's account, and the operator once more in the
    /// CRM account, for every tenant.
    pub fn plan(
        source: &AuthConf,
        tenants: &[Tenant],
        options: &RenderOptions,
    ) -> Result<Accounts, AccountsError> {
        if !(1..=READ_REPLICAS_MAX).contains(&options.read_replicas) {
            return Err(AccountsError::ReadReplicas {
                given: options.read_replicas,
                max: READ_REPLICAS_MAX,
            });
        }
        let tenants = sorted_tenants(tenants)?;
        let responders: Vec<&User> = source
            .users()
            .iter()
            .filter(|u| u.allow_responses() && u.name() != OPERATOR_USER)
            .collect();
        if responders.is_empty() {
            return Err(AccountsError::NoResponder);
        }
        // The operator too: a tenant's own operator sees that tenant's status and rebuilds.
        let callers: Vec<&User> = source
            .users()
            .iter()
            .filter(|u| !u.allow_responses())
            .collect();
        let names: BTreeSet<&str> = source.users().iter().map(User::name).collect();

        let mut crm_users = Vec::new();
        for tenant in &tenants {
            for user in &responders {
                crm_users.push(responder(user, tenant, options.read_replicas)?);
            }
        }
        if let Some(user) = source.user(OPERATOR_USER) {
            crm_users.push(operator(user, &tenants, options.read_replicas));
        }

        let mut tenant_accounts = Vec::new();
        for tenant in &tenants {
            let users = callers
                .iter()
                .map(|user| caller(user, tenant, &names))
                .collect::<Result<Vec<_>, _>>()?;
            tenant_accounts.push(TenantAccount {
                tenant: tenant.clone(),
                users,
                imports: Vec::new(),
            });
        }
        let families = families(&callers)?;
        for account in &mut tenant_accounts {
            account.imports = families
                .iter()
                .map(|family| Import {
                    subject: format!("{}.{family}", account.tenant.subject_prefix()),
                    to: format!("{DEFAULT_PREFIX}.{family}"),
                })
                .collect();
        }
        let accounts = Accounts {
            tenants,
            read_replicas: options.read_replicas,
            crm_users,
            families,
            tenant_accounts,
        };
        accounts.check_unique_names()?;
        Ok(accounts)
    }

    /// The tenants, sorted.
    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    pub fn read_replicas(&self) -> u32 {
        self.read_replicas
    }

    /// The users of the CRM account: each tenant's responders, then the operator.
    pub fn crm_users(&self) -> &[AccountUser] {
        &self.crm_users
    }

    /// The CRM account's service exports, `crm.t.*.<family>`, sorted.
    pub fn exports(&self) -> Vec<String> {
        self.families
            .iter()
            .map(|family| format!("{}.{family}", export_prefix()))
            .collect()
    }

    pub fn tenant_accounts(&self) -> &[TenantAccount] {
        &self.tenant_accounts
    }

    /// Every user of every account.
    pub fn users(&self) -> impl Iterator<Item = &AccountUser> {
        self.crm_users
            .iter()
            .chain(self.tenant_accounts.iter().flat_map(|a| a.users.iter()))
    }

    /// Every password variable the configuration references, sorted: what the server's
    /// environment (an `.env` file) must set.
    pub fn required_env(&self) -> Vec<String> {
        let vars: BTreeSet<String> = self.users().map(AccountUser::password_var).collect();
        vars.into_iter().collect()
    }

    /// nats-server wants user names unique across the whole configuration; `<user>-<tenant>`
    /// and `<tenant>-<user>` can meet (`crm` of tenant `sales-app`, `sales-app` of `crm`).
    fn check_unique_names(&self) -> Result<(), AccountsError> {
        let mut seen: BTreeMap<&str, String> = BTreeMap::new();
        for user in self.users() {
            let description = match &user.tenant {
                Some(tenant) => format!("`{}` of tenant `{tenant}`", user.source),
                None => format!("`{}`", user.source),
            };
            if let Some(first) = seen.insert(&user.name, description.clone()) {
                return Err(AccountsError::NameClash {
                    name: user.name.clone(),
                    first,
                    second: description,
                });
            }
        }
        Ok(())
    }
}

/// `crm.t.*`: the tenant token is the wildcard, at crm_wire::TENANT_TOKEN_POSITION.
pub(crate) fn export_prefix() -> String {
    format!("{DEFAULT_PREFIX}.{TENANT_TOKEN}.{TOKEN_WILDCARD}")
}

fn sorted_tenants(tenants: &[Tenant]) -> Result<Vec<Tenant>, AccountsError> {
    if tenants.is_empty() {
        return Err(AccountsError::NoTenants);
    }
    let mut sorted = tenants.to_vec();
    sorted.sort();
    for pair in sorted.windows(2) {
        if let [a, b] = pair {
            if a == b {
                return Err(AccountsError::DuplicateTenant(a.name().to_owned()));
            }
        }
    }
    Ok(sorted)
}

/// A subject list in first-seen order without repeats (a replica's subject the source also
/// lists, the same subject twice): linear, since a source may hold many thousands.
#[derive(Default)]
struct Subjects {
    list: Vec<String>,
    seen: BTreeSet<String>,
}

impl Subjects {
    fn extend(&mut self, subjects: impl IntoIterator<Item = String>) {
        for subject in subjects {
            if self.seen.insert(subject.clone()) {
                self.list.push(subject);
            }
        }
    }
}

fn responder(user: &User, tenant: &Tenant, replicas: u32) -> Result<AccountUser, AccountsError> {
    let mut lists = [Subjects::default(), Subjects::default()];
    for (list, direction) in lists
        .iter_mut()
        .zip([Direction::Publish, Direction::Subscribe])
    {
        for entry in user.subjects(direction) {
            let rewritten = rewrite::responder(user.name(), tenant, entry).map_err(|reason| {
                AccountsError::Unconfinable {
                    line: user.line(),
                    user: user.name().to_owned(),
                    direction,
                    subject: entry.clone(),
                    reason,
                }
            })?;
            list.extend(rewrite::with_replicas(&rewritten, replicas));
        }
    }
    let [publish, subscribe] = lists.map(|l| l.list);
    Ok(AccountUser {
        name: format!("{}-{tenant}", user.name()),
        source: user.name().to_owned(),
        tenant: Some(tenant.clone()),
        publish,
        subscribe,
        allow_responses: true,
        dropped: Vec::new(),
    })
}

fn operator(user: &User, tenants: &[Tenant], replicas: u32) -> AccountUser {
    let mut lists = [Subjects::default(), Subjects::default()];
    for (list, direction) in lists
        .iter_mut()
        .zip([Direction::Publish, Direction::Subscribe])
    {
        for entry in user.subjects(direction) {
            for rewritten in rewrite::operator(entry, tenants) {
                list.extend(rewrite::with_replicas(&rewritten, replicas));
            }
        }
    }
    let [publish, subscribe] = lists.map(|l| l.list);
    AccountUser {
        name: user.name().to_owned(),
        source: user.name().to_owned(),
        tenant: None,
        publish,
        subscribe,
        allow_responses: user.allow_responses(),
        dropped: Vec::new(),
    }
}

fn caller(
    user: &User,
    tenant: &Tenant,
    names: &BTreeSet<&str>,
) -> Result<AccountUser, AccountsError> {
    let mut lists = [Subjects::default(), Subjects::default()];
    let mut dropped = Vec::new();
    for (list, direction) in lists
        .iter_mut()
        .zip([Direction::Publish, Direction::Subscribe])
    {
        for entry in user.subjects(direction) {
            let carried = rewrite::caller(user.name(), tenant, entry, names).map_err(|reason| {
                AccountsError::Unconfinable {
                    line: user.line(),
                    user: user.name().to_owned(),
                    direction,
                    subject: entry.clone(),
                    reason,
                }
            })?;
            match carried {
                Carried::Keep(subject) => list.extend([subject]),
                Carried::Drop(reason) => dropped.push(Dropped {
                    direction,
                    subject: entry.clone(),
                    reason,
                }),
            }
        }
    }
    let [publish, subscribe] = lists.map(|l| l.list);
    Ok(AccountUser {
        name: format!("{tenant}-{}", user.name()),
        source: user.name().to_owned(),
        tenant: Some(tenant.clone()),
        publish,
        subscribe,
        allow_responses: false,
        dropped,
    })
}

/// The service families the callers publish to (after `crm.`), each only once and none
/// covered by another: `cmd.>`, `log.head`, `log.read`, `projector.>`, `query.>`,
/// `status.*` for auth.conf.
fn families(callers: &[&User]) -> Result<Vec<String>, AccountsError> {
    let mut families = BTreeSet::new();
    for user in callers {
        for subject in user.publish() {
            // JetStream and discovery are dropped for callers; nothing else starts with crm.
            let family =
                rewrite::service_family(subject).map_err(|reason| AccountsError::NoExport {
                    line: user.line(),
                    user: user.name().to_owned(),
                    subject: subject.clone(),
                    reason,
                })?;
            families.extend(family);
        }
    }
    Ok(families
        .iter()
        .filter(|family| !rewrite::family_covered(family, &families))
        .cloned()
        .collect())
}
