//! `crm replay <model>`: the answer of one query from the read model as it stood at a point of
//! the log (a position, or the last event recorded at or before a time), folded into a scratch
//! store that never touches the live read models.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Args;

use crm_domain::Timestamp;
use crm_eventlog::EventLog;
use crm_projector::{position_at, LogSource};
use crm_wire::query::QueryReply;

use crate::{log_dir, nats_opts, projections, BadInput, LimitArgs};

#[derive(Args)]
pub struct ReplayArgs {
    /// The read model to replay.
    #[arg(value_parser = projections::name_parser(false))]
    name: String,
    /// A stopped service's data directory: its log is read (never changed). Without
    /// --nats-url this is where the log comes from.
    #[arg(long, env = "CRM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A running service's NATS server: the log is read over `crm.log.read`.
    #[command(flatten)]
    nats: nats_opts::NatsArgs,
    #[command(flatten)]
    scope: crate::scope::ScopeArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Where the log is cut: a position (the events up to it), or an RFC 3339 time (the
    /// events recorded at or before it: `recorded_at` never decreases with position, so
    /// that is a prefix of the log). Default: the head when the replay starts.
    #[arg(long, value_parser = parse_until)]
    until: Option<Until>,
    /// The query's JSON body, as a caller would send it to `crm.query.<query>`.
    #[arg(long, default_value = "{}")]
    query: String,
    /// Which of the model's queries to answer; default: its first one.
    #[arg(long)]
    query_name: Option<String>,
    /// Keep the replayed store in this directory (new or empty) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    #[command(flatten)]
    read_models: projections::ReadModelArgs,
}

/// Where a replay cuts the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Position(u64),
    Time(Timestamp),
}

fn parse_until(text: &str) -> Result<Until, String> {
    if let Ok(position) = text.parse::<u64>() {
        return Ok(Until::Position(position));
    }
    Timestamp::parse_rfc3339(text)
        .map(Until::Time)
        .map_err(|_| format!("`{text}` is neither a log position nor an RFC 3339 time"))
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let kind = crm_read_models::find(&args.name)?;
    let query = args
        .query_name
        .clone()
        .or_else(|| kind.queries().first().map(|q| (*q).to_owned()))
        .unwrap_or_default();
    if !kind.queries().contains(&query.as_str()) {
        return Err(BadInput(format!(
            "read model `{}` answers no query `{query}`; it answers: {}",
            kind.name(),
            kind.queries().join(", ")
        ))
        .into());
    }
    let request: serde_json::Value = serde_json::from_str(&args.query)
        .map_err(|e| BadInput(format!("--query is not JSON: {e}")))?;

    let source = match (args.nats.url(), &args.data_dir) {
        (Some(url), _) => LogSource::Nats {
            client: args.nats.connect_once(&url, "crm replay").await?,
            subjects: args.scope.subjects(),
            record_limits: args.limits.log_config().record_limits(),
        },
        (None, Some(data_dir)) => LogSource::Local(
            EventLog::open(&log_dir(data_dir), args.limits.log_config()).with_context(|| {
                format!(
                    "opening the event log in {} (is crm serve running? then pass --nats-url)",
                    data_dir.display()
                )
            })?,
        ),
        (None, None) => {
            return Err(BadInput("crm replay needs --data-dir or --nats-url".into()).into())
        }
    };
    let head = source.head().await?;
    let until = match args.until {
        None => head,
        Some(Until::Position(position)) if position > head => {
            return Err(BadInput(format!(
                "--until {position} is beyond the log's head ({head})"
            ))
            .into())
        }
        Some(Until::Position(position)) => position,
        Some(Until::Time(time)) => position_at(&source, time).await?,
    };

    let scratch;
    let dir = match &args.keep {
        Some(dir) => {
            let empty = match std::fs::read_dir(dir) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => bail!("cannot read --keep {}: {e}", dir.display()),
            };
            if !empty {
                return Err(BadInput(format!(
                    "--keep {} is not empty; a replay writes a new store",
                    dir.display()
                ))
                .into());
            }
            dir.clone()
        }
        None => {
            scratch = tempfile::Builder::new()
                .prefix("crm-replay-")
                .tempdir()
                .context("creating a scratch directory")?;
            scratch.path().join(kind.name())
        }
    };
    let mut progress = projections::progress_lines("replaying", kind.name());
    let answer = kind
        .replay(
            &dir,
            source,
            args.read_models.config(&args.scope.subjects()),
            crm_projector::ReplayQuery {
                until,
                query: &query,
                request: &request,
            },
            &mut progress,
        )
        .await
        .map_err(|e| match e {
            crm_projector::ReplayError::Query(e) => anyhow::Error::from(BadInput(e.to_string())),
            other => other.into(),
        })?;
    let reply = QueryReply {
        position: answer.position,
        data: answer.answer,
    };
    println!("{}", serde_json::to_string(&reply)?);
    Ok(())
}
