//! `crm status` and `crm health`: every instance of the service that answers `$SRV.STATS.crm`
//! (scatter-gather over NATS), in one view; and a yes/no verdict for health checks. Both print
//! their result on stdout (it is what a script or a container health check reads).

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures::StreamExt;
use serde::Serialize;

use crm_wire::discovery::{EndpointStats, InstanceStatus, StatsResponse, Verb, SERVICE_NAME};
use crm_wire::query::ProjectorState;

use crate::nats_opts;

#[derive(Args)]
pub struct StatusArgs {
    /// The NATS server of the instances (--nats-url, else NATS_URL) and how to authenticate.
    #[command(flatten)]
    nats: nats_opts::NatsArgs,
    /// How long to collect answers, in milliseconds (instances answer as they can).
    #[arg(long, default_value_t = 1000)]
    wait_ms: u64,
    /// Only this instance (its id, as `crm serve` prints it and `crm status` lists it).
    #[arg(long)]
    instance: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Only the instances serving this subject prefix: `--tenant T` for one tenant of a
    /// platform (`crm.t.T`), `--subject-prefix P` for another installation.
    #[command(flatten)]
    scope: crate::scope::ScopeArgs,
}

#[derive(Args)]
pub struct HealthArgs {
    #[command(flatten)]
    status: StatusArgs,
    /// Largest read-model lag accepted, in seconds of event time.
    #[arg(long, default_value_t = 60.0)]
    lag_max_s: f64,
}

/// One instance as `crm status --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    pub status: InstanceStatus,
    pub endpoints: Vec<EndpointStats>,
}

/// Asks every instance (or the one named) for its stats and status.
async fn gather(args: &StatusArgs) -> anyhow::Result<Vec<Seen>> {
    let Some(url) = args.nats.url() else {
        anyhow::bail!("needs --nats-url (or CRM_NATS_URL, or NATS_URL): the NATS server of crm");
    };
    let client = args.nats.connect_once(&url, "crm status").await?;
    // Without --tenant or --subject-prefix: every instance that answers, whatever it serves.
    let wanted_subjects = (args.scope.tenant.is_some() || args.scope.subject_prefix.is_some())
        .then(|| args.scope.subjects());
    let wanted_prefix = wanted_subjects.as_ref().map(|s| s.prefix());
    let subject = match &args.instance {
        Some(id) => Verb::Stats.subjects(SERVICE_NAME, id)[2].clone(),
        None => Verb::Stats.subjects(SERVICE_NAME, "")[1].clone(),
    };
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .context("subscribing to the reply inbox")?;
    client
        .publish_with_reply(subject, inbox, "".into())
        .await
        .context("asking for stats")?;
    client.flush().await.context("flushing")?;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(args.wait_ms);
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, replies.next()).await {
        let Ok(stats) = serde_json::from_slice::<StatsResponse>(&message.payload) else {
            continue; // another service of the same name, or a damaged reply
        };
        if let Some(status) = stats
            .instance_status()
            .filter(|status| wanted_prefix.is_none_or(|p| p == status.subject_prefix))
        {
            seen.push(Seen {
                status,
                endpoints: stats.endpoints,
            });
        }
        if args.instance.is_some() {
            break;
        }
    }
    seen.sort_by(|a, b| {
        (a.status.role.as_str(), a.status.instance.as_str())
            .cmp(&(b.status.role.as_str(), b.status.instance.as_str()))
    });
    Ok(seen)
}

pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let seen = gather(&args).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "instances": seen }))?
        );
    } else {
        print!("{}", render(&seen));
    }
    if seen.is_empty() {
        anyhow::bail!("no crm instance answered within {} ms", args.wait_ms);
    }
    Ok(())
}

/// Exit status 0 when healthy; otherwise the reason on one line and exit status 1.
pub async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let verdict = match gather(&args.status).await {
        Ok(seen) => verdict(&seen, args.lag_max_s),
        Err(e) => Err(format!("{e:#}")),
    };
    match verdict {
        Ok(summary) => {
            println!("healthy: {summary}");
            Ok(())
        }
        Err(reason) => {
            println!("unhealthy: {reason}");
            std::process::exit(1);
        }
    }
}

/// Healthy when at least one instance answered, every log is writable and its tailer runs,
/// and no read model has failed, stalled or lags past `lag_max_s`.
pub fn verdict(seen: &[Seen], lag_max_s: f64) -> Result<String, String> {
    if seen.is_empty() {
        return Err("no crm instance answered".to_owned());
    }
    let mut models = 0;
    for Seen { status, .. } in seen {
        let id = &status.instance;
        if let Some(log) = &status.log {
            if !log.writable {
                return Err(format!(
                    "instance {id}: the log is read-only after a failed flush; restart it"
                ));
            }
            if let Some(error) = &log.tailer_error {
                return Err(format!("instance {id}: the tailer stopped: {error}"));
            }
        }
        for model in &status.read_models {
            models += 1;
            let name = &model.name;
            match model.state {
                ProjectorState::Failed | ProjectorState::Stalled => {
                    let state = serde_json::to_value(model.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let why = model.error.as_deref().unwrap_or("no reason given");
                    return Err(format!("instance {id}: read model {name} {state}: {why}"));
                }
                _ if model.lag_seconds > lag_max_s => {
                    return Err(format!(
                        "instance {id}: read model {name} lags {:.1} s (more than {lag_max_s} s), {} events",
                        model.lag_seconds, model.lag_events
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(format!(
        "{} instance{}, {models} read model{} within {lag_max_s} s",
        seen.len(),
        if seen.len() == 1 { "" } else { "s" },
        if models == 1 { "" } else { "s" },
    ))
}

/// The text view: one block per instance.
pub fn render(seen: &[Seen]) -> String {
    let mut out = String::new();
    for Seen { status, endpoints } in seen {
        out += &format!(
            "instance {} ({}, {}, version {}, started {})\n",
            status.instance, status.role, status.subject_prefix, status.version, status.started
        );
        if let Some(log) = &status.log {
            out += &format!(
                "  log: head {}, published {} ({} behind), {}{}\n",
                crate::thousands(log.head),
                crate::thousands(log.published),
                crate::thousands(log.head.saturating_sub(log.published)),
                if log.writable {
                    "writable"
                } else {
                    "READ-ONLY"
                },
                log.tailer_error
                    .as_deref()
                    .map(|e| format!(", tailer stopped: {e}"))
                    .unwrap_or_default()
            );
        }
        for model in &status.read_models {
            let state = serde_json::to_value(model.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out += &format!(
                "  read model {}: {state}, checkpoint {}, lag {} events / {:.1} s{}\n",
                model.name,
                crate::thousands(model.checkpoint),
                crate::thousands(model.lag_events),
                model.lag_seconds,
                model
                    .error
                    .as_deref()
                    .map(|e| format!(", error: {e}"))
                    .unwrap_or_default()
            );
        }
        let requests: u64 = endpoints.iter().map(|e| e.num_requests).sum();
        let errors: u64 = endpoints.iter().map(|e| e.num_errors).sum();
        out += &format!(
            "  requests: {} answered, {} refused, over {} endpoints\n",
            crate::thousands(requests),
            crate::thousands(errors),
            endpoints.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_wire::discovery::LogStatus;
    use crm_wire::query::ProjectorStatus;

    fn model(name: &str, state: ProjectorState, lag_seconds: f64) -> ProjectorStatus {
        ProjectorStatus {
            checkpoint: 10,
            error: (state == ProjectorState::Failed).then(|| "unknown event type".to_owned()),
            lag_events: 3,
            lag_seconds,
            last_rebuild_error: None,
            log_head: 13,
            name: name.to_owned(),
            rebuild: None,
            rebuilds_completed: 0,
            state,
        }
    }

    fn seen(writable: bool, models: Vec<ProjectorStatus>) -> Seen {
        Seen {
            status: InstanceStatus {
                instance: "abc".into(),
                subject_prefix: "crm".to_owned(),
                role: "serve".into(),
                version: "0.1.0".into(),
                started: "2026-12-02T00:00:00Z".into(),
                log: Some(LogStatus {
                    head: 13,
                    published: 13,
                    writable,
                    tailer_error: None,
                }),
                read_models: models,
            },
            endpoints: vec![],
        }
    }

    #[test]
    fn health_says_why_in_one_line() {
        let fine = seen(true, vec![model("kpis", ProjectorState::Running, 0.5)]);
        assert_eq!(
            verdict(std::slice::from_ref(&fine), 60.0),
            Ok("1 instance, 1 read model within 60 s".to_owned())
        );
        assert_eq!(
            verdict(&[], 60.0),
            Err("no crm instance answered".to_owned())
        );
        let read_only = seen(false, vec![]);
        assert!(verdict(&[read_only], 60.0)
            .unwrap_err()
            .contains("read-only"));
        let failed = seen(true, vec![model("kpis", ProjectorState::Failed, 0.0)]);
        assert_eq!(
            verdict(&[fine.clone(), failed], 60.0),
            Err("instance abc: read model kpis failed: unknown event type".to_owned())
        );
        let lagging = seen(true, vec![model("funnel", ProjectorState::Running, 90.0)]);
        let reason = verdict(&[lagging], 60.0).unwrap_err();
        assert!(reason.contains("funnel lags 90.0 s"), "{reason}");
        assert!(!reason.contains('\n'));
    }

    #[test]
    fn the_text_view_names_every_part() {
        let text = render(&[seen(
            true,
            vec![model("kpis", ProjectorState::Running, 0.0)],
        )]);
        assert!(text.contains("instance abc (serve"), "{text}");
        assert!(
            text.contains("log: head 13, published 13 (0 behind), writable"),
            "{text}"
        );
        assert!(
            text.contains("read model kpis: running, checkpoint 10, lag 3 events"),
            "{text}"
        );
    }
}
