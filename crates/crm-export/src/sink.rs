//! The part both sources share: records in position order in, filtered lines out.

use std::io::Write;

use crm_eventlog::Record;

use crate::filter::{Filter, Plan};
use crate::line::append_line;
use crate::ExportError;

/// Lines are collected in one buffer and written in chunks of about this size: few write
/// calls, and a write error never leaves half a line behind.
const CHUNK_BYTES: usize = 256 * 1024;

/// What an export did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The positions it scanned.
    pub plan: Plan,
    /// Lines written (events that passed the filter).
    pub events: u64,
}

/// Takes the records of a [`Plan`] in position order and writes the selected ones as lines.
pub struct Exporter<W: Write> {
    out: W,
    buf: Vec<u8>,
    plan: Plan,
    filter: Filter,
    next: u64,
    events: u64,
}

impl<W: Write> Exporter<W> {
    pub fn new(out: W, plan: Plan, filter: Filter) -> Exporter<W> {
        Exporter {
            out,
            buf: Vec::with_capacity(CHUNK_BYTES + 64 * 1024),
            plan,
            filter,
            next: plan.from,
            events: 0,
        }
    }

    /// The next position the export needs.
    pub fn next_position(&self) -> u64 {
        self.next
    }

    /// Whether every position of the plan has been taken.
    pub fn is_done(&self) -> bool {
        self.next > self.plan.to
    }

    /// Positions of the plan not taken yet.
    pub fn remaining(&self) -> u64 {
        if self.is_done() {
            0
        } else {
            self.plan.to - self.next + 1
        }
    }

    /// Takes the next records. They must continue at [`next_position`](Self::next_position)
    /// without a gap; records beyond the plan are ignored.
    pub fn push(&mut self, records: &[Record]) -> Result<(), ExportError> {
        for record in records {
            if self.is_done() {
                break;
            }
            if record.position != self.next {
                return Err(ExportError::BadRecord {
                    position: self.next,
                    reason: format!("missing: the log gave position {} instead", record.position),
                });
            }
            if self.filter.matches(&record.stream, &record.event_type) {
                append_line(record, &mut self.buf)?;
                self.events += 1;
                if self.buf.len() >= CHUNK_BYTES {
                    self.write_buffered()?;
                }
            }
            self.next += 1;
        }
        Ok(())
    }

    /// Writes out every complete line and flushes the output.
    pub fn finish(mut self) -> Result<Summary, ExportError> {
        self.write_buffered()?;
        self.out.flush().map_err(ExportError::Write)?;
        Ok(Summary {
            plan: self.plan,
            events: self.events,
        })
    }

    /// After a failure: writes what is complete so far (every line in the buffer is), so the
    /// output holds exactly the events before the failure. A write error here is dropped: the
    /// first error is the one reported.
    pub fn abandon(mut self) {
        if self.write_buffered().is_ok() {
            let _ = self.out.flush();
        }
    }

    fn write_buffered(&mut self) -> Result<(), ExportError> {
        let written = self.out.write_all(&self.buf);
        self.buf.clear();
        written.map_err(ExportError::Write)
    }
}
