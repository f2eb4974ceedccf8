//! A child process for system tests, with stdout and stderr captured to files in a temp dir.
//! Tests wait for lines it prints, then SIGKILL or SIGTERM it; dropping it kills it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::{self, LineScanner, POLL_INTERVAL};
use crate::TestkitError;

/// A spawned binary whose output goes to `stdout.log` and `stderr.log` in its own temp dir.
#[derive(Debug)]
pub struct ChildProcess {
    program: String,
    child: Child,
    /// Set once the child has been reaped.
    exit_status: Option<ExitStatus>,
    dir: tempfile::TempDir,
}

impl ChildProcess {
    /// Spawns `command` (program, args, env and working dir as the test set them) with stdin closed
    /// and stdout/stderr redirected to files.
    pub fn spawn(mut command: Command) -> Result<ChildProcess, TestkitError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let dir = tempfile::Builder::new()
            .prefix("crm-testkit-child-")
            .tempdir()
            .map_err(|source| TestkitError::TempDir {
                what: "child output directory",
                source,
            })?;
        let stdout = create(&dir.path().join("stdout.log"))?;
        let stderr = create(&dir.path().join("stderr.log"))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let child = command.spawn().map_err(|source| TestkitError::Spawn {
            program: program.clone(),
            source,
        })?;
        tracing::debug!(pid = child.id(), program, "child process spawned");
        Ok(ChildProcess {
            program,
            child,
            exit_status: None,
            dir,
        })
    }

    /// The child's pid (it may have exited since).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the child's stdout goes.
    pub fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("stdout.log")
    }

    /// Where the child's stderr goes.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> Result<String, TestkitError> {
        read_lossy(&self.stdout_path())
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> Result<String, TestkitError> {
        read_lossy(&self.stderr_path())
    }

    /// The last few KiB of stdout and stderr, for assertion messages.
    pub fn output_tail(&self) -> String {
        let stdout = process::file_tail(&self.stdout_path(), 0);
        let stderr = process::file_tail(&self.stderr_path(), 0);
        format!("{stdout}{stderr}")
    }

    /// Whether the child is still alive (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None))
    }

    /// The exit status if the child has exited (and reaps it), `None` while it runs.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>, TestkitError> {
        if self.exit_status.is_some() {
            return Ok(self.exit_status);
        }
        let pid = self.pid();
        let status = self
            .child
            .try_wait()
            .map_err(|source| TestkitError::Wait { pid, source })?;
        self.exit_status = status;
        Ok(status)
    }

    /// SIGKILL, like a crash or power loss; waits for the child to be reaped.
    pub fn kill_9(&mut self) -> Result<ExitStatus, TestkitError> {
        if let Some(status) = self.exit_status {
            return Ok(status);
        }
        let status = process::kill_and_reap(&mut self.child)?;
        tracing::debug!(
            pid = self.pid(),
            program = self.program,
            "child process killed"
        );
        self.exit_status = Some(status);
        Ok(status)
    }

    /// SIGTERM, then waits up to `timeout` for a graceful exit. If the child does not exit in time
    /// it is SIGKILLed and `ExitTimedOut` is returned.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, TestkitError> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        process::send_sigterm(&self.child)?;
        self.wait_for_exit(timeout)
    }

    /// Waits up to `timeout` for the child to exit by itself. If it does not, it is SIGKILLed
    /// and `ExitTimedOut` is returned.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<ExitStatus, TestkitError> {
        if let Some(status) = self.exit_status {
            return Ok(status);
        }
        if let Some(status) = process::wait_timeout(&mut self.child, timeout)? {
            self.exit_status = Some(status);
            return Ok(status);
        }
        self.kill_9()?;
        Err(TestkitError::ExitTimedOut {
            program: self.program.clone(),
            pid: self.pid(),
            waited_ms: timeout.as_millis(),
        })
    }

    /// Waits until stdout or stderr holds a line containing `pattern` (plain substring), and returns
    /// that line. Looks every 20 ms, for at most `timeout`; fails early if the child exits without it.
    pub fn wait_for_line(
        &mut self,
        pattern: &str,
        timeout: Duration,
    ) -> Result<String, TestkitError> {
        let started = Instant::now();
        let paths = [self.stdout_path(), self.stderr_path()];
        let mut scanners = [LineScanner::new(), LineScanner::new()];
        loop {
            // Look at the exit first: output scanned after it is complete.
            let exited = self.try_exit_status()?;
            for (scanner, path) in scanners.iter_mut().zip(&paths) {
                let found =
                    scanner
                        .find(path, pattern)
                        .map_err(|source| TestkitError::ReadFile {
                            path: path.clone(),
                            source,
                        })?;
                if let Some(line) = found {
                    return Ok(line);
                }
            }
            if let Some(status) = exited {
                return Err(TestkitError::ExitedBeforeLine {
                    program: self.program.clone(),
                    pattern: pattern.to_owned(),
                    status,
                    output_tail: self.output_tail(),
                });
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(TestkitError::LineNotFound {
                    program: self.program.clone(),
                    pattern: pattern.to_owned(),
                    waited_ms: waited.as_millis(),
                    output_tail: self.output_tail(),
                });
            }
            thread::sleep(POLL_INTERVAL.min(timeout - waited));
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.exit_status.is_none() {
            let _ = process::kill_and_reap(&mut self.child);
        }
    }
}

fn create(path: &Path) -> Result<File, TestkitError> {
    File::create(path).map_err(|source| TestkitError::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

fn read_lossy(path: &Path) -> Result<String, TestkitError> {
    let bytes = std::fs::read(path).map_err(|source| TestkitError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
