//! `crm nats-accounts`: the NATS account configuration of a multi-tenant deployment
//! (docs/SCALING.md), from the per-service users of deploy/nats/auth.conf (built in, or an
//! operator's edited copy).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use crm_accounts::{AuthConf, RenderOptions, READ_REPLICAS_MAX};
use crm_wire::Tenant;

use crate::BadInput;

#[derive(Args)]
pub struct AccountsArgs {
    /// The tenants (repeat the flag or separate with commas).
    #[arg(
        long = "tenant",
        required = true,
        value_delimiter = ',',
        value_parser = parse_tenant
    )]
    tenants: Vec<Tenant>,
    /// Read replicas per read model to grant consumers for (`crm project --replica N`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=READ_REPLICAS_MAX as i64))]
    read_replicas: u32,
    /// The per-service users to start from [default: the built-in deploy/nats/auth.conf].
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Print the password variables the configuration needs (one `NAME=` line each, for an
    /// env file) instead of the configuration.
    #[arg(long)]
    env: bool,
}

fn parse_tenant(text: &str) -> Result<Tenant, String> {
    Tenant::parse(text).map_err(|e| e.to_string())
}

/// Prints the accounts block (or the variables) on stdout.
pub fn run(args: &AccountsArgs) -> anyhow::Result<()> {
    let source = match &args.users {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            AuthConf::parse(&text).map_err(|e| BadInput(format!("{}: {e}", path.display())))?
        }
        None => AuthConf::shipped().context("the built-in auth.conf")?,
    };
    let options = RenderOptions::default().with_read_replicas(args.read_replicas);
    let accounts = crm_accounts::Accounts::plan(&source, &args.tenants, &options)
        .map_err(|e| BadInput(e.to_string()))?;
    if args.env {
        for name in accounts.required_env() {
            println!("{name}=");
        }
    } else {
        print!("{}", accounts.render());
    }
    Ok(())
}
