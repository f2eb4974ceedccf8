//! Export from a stopped log on this machine.
//!
//! What opening touches: [`EventLog::open`] takes the directory's lock (an advisory `flock`
//! on `eventlog.lock`; no content is written) and opens sled read-write, as every opener does;
//! sled has no read-only mode. The first opener after the log's writer stopped (the export,
//! `crm verify` or the next `crm serve`, whichever comes first) lets sled finish its recovery:
//! it writes a new `sled/snap.*` file and may rewrite the tail of `sled/db`. No record, index
//! or head changes (no append is ever made), and every later opener writes nothing at all
//! (tests/export.rs checks both). A directory without a log is refused here rather than
//! opened, since opening would create an empty log in it.

use std::io::Write;
use std::path::Path;

use crm_eventlog::{EventLog, LogConfig, LogError, SLED_DIR_NAME};
use tracing::debug;

use crate::filter::{Filter, Plan};
use crate::sink::{Exporter, Summary};
use crate::ExportError;

/// Records per `read_all` page (the log caps it at its `read_page_events_max`).
const PAGE_EVENTS: usize = 4096;

/// Opens the log in `log_dir` for an export. Refuses a missing directory, one without a log
/// in it, and a log another process holds (a running `crm serve`).
pub fn open_stopped_log(log_dir: &Path, config: LogConfig) -> Result<EventLog, ExportError> {
    let no_log = |reason: String| ExportError::NoLog {
        dir: log_dir.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(log_dir).map_err(|e| no_log(e.to_string()))?;
    if !meta.is_dir() {
        return Err(no_log("not a directory".to_owned()));
    }
    std::fs::read_dir(log_dir).map_err(|e| no_log(e.to_string()))?;
    if !log_dir.join(SLED_DIR_NAME).is_dir() {
        return Err(no_log(format!("no {SLED_DIR_NAME}/ inside")));
    }
    EventLog::open(log_dir, config).map_err(|e| match e {
        LogError::Locked { dir } => ExportError::LogHeld { dir },
        other => ExportError::Log(other),
    })
}

/// Writes the events of `plan` that pass `filter` to `out`, one line each. `progress` hears
/// the last position taken after each page. On an error the lines before it are written.
pub fn export_log<W: Write>(
    log: &EventLog,
    plan: Plan,
    filter: Filter,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ExportError> {
    let mut exporter = Exporter::new(out, plan, filter);
    match pages(log, &mut exporter, progress) {
        Ok(()) => exporter.finish(),
        Err(e) => {
            exporter.abandon();
            Err(e)
        }
    }
}

fn pages<W: Write>(
    log: &EventLog,
    exporter: &mut Exporter<W>,
    progress: &mut dyn FnMut(u64),
) -> Result<(), ExportError> {
    while !exporter.is_done() {
        let from = exporter.next_position();
        let max = PAGE_EVENTS.min(usize::try_from(exporter.remaining()).unwrap_or(PAGE_EVENTS));
        let records = log.read_all(from, max)?;
        if records.is_empty() {
            return Err(ExportError::Truncated {
                at: from,
                head: log.head(),
            });
        }
        exporter.push(&records)?;
        debug!(from, to = exporter.next_position() - 1, "exported a page");
        progress(exporter.next_position() - 1);
    }
    Ok(())
}
