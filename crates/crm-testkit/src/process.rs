//! Helpers shared by the nats-server fixture and `ChildProcess`: signals, bounded waits, output tails.
//! Signals go through rustix because the workspace forbids `unsafe` (so no `libc::kill`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::TestkitError;

/// How often bounded waits look at a child or a file.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How much of a log or output file goes into an error message.
pub(crate) const OUTPUT_TAIL_BYTES_MAX: u64 = 4096;

/// Sends SIGTERM to a child that has not been reaped yet (so its pid cannot have been reused).
pub(crate) fn send_sigterm(child: &Child) -> Result<(), TestkitError> {
    send_signal(child, Signal::TERM, "SIGTERM")
}

/// Sends SIGHUP (nats-server: reload the config file) to a child that has not been reaped yet.
pub(crate) fn send_sighup(child: &Child) -> Result<(), TestkitError> {
    send_signal(child, Signal::HUP, "SIGHUP")
}

fn send_signal(
    child: &Child,
    signal: Signal,
    signal_name: &'static str,
) -> Result<(), TestkitError> {
    let pid = child.id();
    let signal_error = |source| TestkitError::Signal {
        pid,
        signal: signal_name,
        source,
    };
    let raw = i32::try_from(pid).map_err(|_| signal_error(io::ErrorKind::InvalidInput.into()))?;
    let pid_checked =
        Pid::from_raw(raw).ok_or_else(|| signal_error(io::ErrorKind::InvalidInput.into()))?;
    rustix::process::kill_process(pid_checked, signal).map_err(|errno| signal_error(errno.into()))
}

/// SIGKILLs the child and reaps it.
pub(crate) fn kill_and_reap(child: &mut Child) -> Result<ExitStatus, TestkitError> {
    let pid = child.id();
    if let Some(status) = child
        .try_wait()
        .map_err(|source| TestkitError::Wait { pid, source })?
    {
        return Ok(status);
    }
    child.kill().map_err(|source| TestkitError::Signal {
        pid,
        signal: "SIGKILL",
        source,
    })?;
    child
        .wait()
        .map_err(|source| TestkitError::Wait { pid, source })
}

/// Waits up to `timeout` for the child to exit; `None` if it is still running.
pub(crate) fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
) -> Result<Option<ExitStatus>, TestkitError> {
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|source| TestkitError::Wait { pid, source })?
        {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// The last `OUTPUT_TAIL_BYTES_MAX` bytes of `path` written at or after byte `from`, lossily decoded,
/// headed by the file name; empty if the file is missing or has nothing new.
pub(crate) fn file_tail(path: &Path, from: u64) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let Ok(len) = file.metadata().map(|meta| meta.len()) else {
        return String::new();
    };
    let start = from.max(len.saturating_sub(OUTPUT_TAIL_BYTES_MAX));
    if start >= len || file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file
        .take(OUTPUT_TAIL_BYTES_MAX)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return String::new();
    }
    let elided = if start > from { "...\n" } else { "" };
    format!(
        "--- {} ---\n{elided}{}",
        path.display(),
        String::from_utf8_lossy(&bytes)
    )
}

/// The length of `path`, 0 if it does not exist yet.
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

/// Finds lines containing a pattern in a file that is still being written, reading only new bytes.
#[derive(Debug)]
pub(crate) struct LineScanner {
    offset: u64,
    partial: Vec<u8>,
}

/// The longest unterminated line the scanner holds on to; longer ones are cut, keeping the end.
const PARTIAL_LINE_BYTES_MAX: usize = 1 << 20;

impl LineScanner {
    pub(crate) fn new() -> LineScanner {
        LineScanner {
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Reads what was appended since the last call and returns the first line containing `pattern`.
    /// The unterminated last line counts too: a pattern already in it will stay in it.
    pub(crate) fn find(&mut self, path: &Path, pattern: &str) -> io::Result<Option<String>> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        let read = file.read_to_end(&mut fresh)?;
        self.offset += read as u64;
        self.partial.extend_from_slice(&fresh);

        let pattern = pattern.as_bytes();
        let mut consumed = 0;
        while let Some(newline) = self.partial[consumed..]
            .iter()
            .position(|&byte| byte == b'\n')
        {
            let line = &self.partial[consumed..consumed + newline];
            consumed += newline + 1;
            if contains(line, pattern) {
                let found = String::from_utf8_lossy(line).into_owned();
                self.partial.drain(..consumed);
                return Ok(Some(found));
            }
        }
        self.partial.drain(..consumed);
        if contains(&self.partial, pattern) {
            return Ok(Some(String::from_utf8_lossy(&self.partial).into_owned()));
        }
        if self.partial.len() > PARTIAL_LINE_BYTES_MAX {
            let excess = self.partial.len() - PARTIAL_LINE_BYTES_MAX;
            self.partial.drain(..excess);
        }
        Ok(None)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn scanner_finds_lines_as_they_are_appended() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out");
        let mut scanner = LineScanner::new();
        assert_eq!(scanner.find(&path, "ready").expect("scan"), None);

        let mut file = File::create(&path).expect("create");
        file.write_all(b"starting\nlistening on 127.0.0.1:")
            .expect("write");
        assert_eq!(scanner.find(&path, "ready").expect("scan"), None);
        assert_eq!(
            scanner.find(&path, "listening").expect("scan").as_deref(),
            Some("listening on 127.0.0.1:")
        );
        file.write_all(b"4222\nready to serve\n").expect("write");
        assert_eq!(
            scanner.find(&path, "ready").expect("scan").as_deref(),
            Some("ready to serve")
        );
    }

    #[test]
    fn tail_is_bounded_and_starts_at_offset() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("log");
        std::fs::write(&path, b"old run\nnew run\n").expect("write");
        let tail = file_tail(&path, 8);
        assert!(
            tail.contains("new run") && !tail.contains("old run"),
            "{tail}"
        );
        std::fs::write(&path, vec![b'x'; 10_000]).expect("write");
        assert!(file_tail(&path, 0).len() < 4096 + 200);
        assert_eq!(file_tail(&dir.path().join("missing"), 0), "");
    }
}
