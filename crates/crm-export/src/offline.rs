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
use std::sync::mpsc::{self, SyncSender};

use crm_eventlog::{EventLog, LogConfig, LogError, Record, SLED_DIR_NAME};
use tracing::debug;

use crate::filter::{Filter, Plan};
use crate::sink::{Exporter, Summary};
use crate::ExportError;

/// Records per `read_all` page (the log caps it at its `read_page_events_max`).
const PAGE_EVENTS: usize = 4096;
/// Pages read ahead of the one being written: enough to keep both threads busy, few enough
/// to keep memory small.
const PAGES_AHEAD: usize = 2;

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
///
/// One thread reads pages while this one decodes and writes the previous page: reading and
/// encoding each take about half the time of an event, and the machine has cores to spare.
pub fn export_log<W: Write>(
    log: &EventLog,
    plan: Plan,
    filter: Filter,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, ExportError> {
    let mut exporter = Exporter::new(out, plan, filter);
    let result = std::thread::scope(|scope| {
        let (pages_tx, pages) = mpsc::sync_channel(PAGES_AHEAD);
        let reader = std::thread::Builder::new()
            .name("crm-export-reader".into())
            .spawn_scoped(scope, move || read_pages(log, plan, &pages_tx))
            .map_err(|e| ExportError::Reader(e.to_string()))?;
        let mut result = Ok(());
        for page in pages.iter() {
            if let Err(e) = page.and_then(|records| exporter.push(&records)) {
                result = Err(e);
                break;
            }
            debug!(to = exporter.next_position() - 1, "exported a page");
            progress(exporter.next_position() - 1);
        }
        // A reader blocked on a full channel stops once its receiver is gone.
        drop(pages);
        if reader.join().is_err() {
            result = result.and(Err(ExportError::Reader("it panicked".to_owned())));
        }
        result
    });
    match result {
        Ok(()) => exporter.finish(),
        Err(e) => {
            exporter.abandon();
            Err(e)
        }
    }
}

/// Sends the pages of `plan` in order, then returns; stops at the first error (sent too) or
/// when the receiver is gone.
fn read_pages(log: &EventLog, plan: Plan, pages: &SyncSender<Result<Vec<Record>, ExportError>>) {
    let mut from = plan.from;
    while from <= plan.to {
        let max = usize::try_from(plan.to - from + 1).map_or(PAGE_EVENTS, |n| n.min(PAGE_EVENTS));
        let page = match log.read_all(from, max) {
            Ok(records) if records.is_empty() => Err(ExportError::Truncated {
                at: from,
                head: log.head(),
            }),
            Ok(records) => Ok(records),
            Err(e) => Err(ExportError::Log(e)),
        };
        let next = page
            .as_ref()
            .ok()
            .and_then(|r| r.last())
            .map(|r| r.position + 1);
        if pages.send(page).is_err() {
            return;
        }
        match next {
            Some(next) => from = next,
            None => return,
        }
    }
}
