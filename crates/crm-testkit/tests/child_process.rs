//! `ChildProcess` against real processes (`sh`): output capture, waiting for lines, signals.

use std::process::Command;
use std::time::{Duration, Instant};

use crm_testkit::{ChildProcess, TestkitError};

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

fn process_exists(pid: u32) -> bool {
    let raw = i32::try_from(pid).expect("pid fits in i32");
    let pid = rustix::process::Pid::from_raw(raw).expect("pid is positive");
    rustix::process::test_kill_process(pid).is_ok()
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn wait_for_line_sees_stdout_and_stderr() -> Result<(), TestkitError> {
    let mut command =
        sh("echo \"starting as $ROLE\"; echo 'listening on 127.0.0.1:4222' >&2; exec sleep 30");
    command.env("ROLE", "projector");
    let mut child = ChildProcess::spawn(command)?;
    assert_eq!(
        child.wait_for_line("starting", WAIT)?,
        "starting as projector"
    );
    assert_eq!(
        child.wait_for_line("listening on", WAIT)?,
        "listening on 127.0.0.1:4222"
    );
    assert!(child.is_running());
    assert!(child.stderr()?.contains("4222"));
    Ok(())
}

#[test]
fn kill_9_ends_the_child_at_once() -> Result<(), TestkitError> {
    let mut child = ChildProcess::spawn(sh("trap '' TERM; echo ready; exec sleep 30"))?;
    child.wait_for_line("ready", WAIT)?;
    let pid = child.pid();
    let status = child.kill_9()?;
    assert!(!status.success());
    assert!(!child.is_running());
    assert!(!process_exists(pid));
    Ok(())
}

#[test]
fn terminate_lets_the_child_shut_down_gracefully() -> Result<(), TestkitError> {
    let script = "trap 'echo shutting down; exit 0' TERM; echo ready; while :; do sleep 0.02; done";
    let mut child = ChildProcess::spawn(sh(script))?;
    child.wait_for_line("ready", WAIT)?;
    let status = child.terminate(WAIT)?;
    assert!(status.success(), "{status}");
    assert!(child.stdout()?.contains("shutting down"));
    Ok(())
}

#[test]
fn terminate_kills_a_child_that_ignores_sigterm() {
    let script = "trap '' TERM; echo ready; while :; do sleep 0.02; done";
    let mut child = ChildProcess::spawn(sh(script)).expect("spawn");
    child.wait_for_line("ready", WAIT).expect("ready");
    let result = child.terminate(Duration::from_millis(200));
    assert!(
        matches!(result, Err(TestkitError::ExitTimedOut { .. })),
        "{result:?}"
    );
    assert!(!child.is_running());
}

#[test]
fn wait_for_line_fails_fast_when_the_child_exits() {
    let mut child = ChildProcess::spawn(sh("echo bye; exit 3")).expect("spawn");
    let started = Instant::now();
    let result = child.wait_for_line("never printed", WAIT);
    assert!(started.elapsed() < Duration::from_secs(2));
    match result {
        Err(TestkitError::ExitedBeforeLine {
            status,
            output_tail,
            ..
        }) => {
            assert_eq!(status.code(), Some(3));
            assert!(output_tail.contains("bye"));
        }
        other => panic!("expected ExitedBeforeLine, got {other:?}"),
    }
}

#[test]
fn wait_for_line_times_out() {
    let mut child = ChildProcess::spawn(sh("echo something else; exec sleep 30")).expect("spawn");
    let result = child.wait_for_line("never printed", Duration::from_millis(150));
    assert!(
        matches!(result, Err(TestkitError::LineNotFound { .. })),
        "{result:?}"
    );
}

#[test]
fn drop_kills_the_child() -> Result<(), TestkitError> {
    let child = ChildProcess::spawn(sh("exec sleep 30"))?;
    let pid = child.pid();
    drop(child);
    assert!(!process_exists(pid));
    Ok(())
}

#[test]
fn spawning_a_missing_binary_fails() {
    let result = ChildProcess::spawn(Command::new("/nonexistent/crm-service"));
    assert!(
        matches!(result, Err(TestkitError::Spawn { .. })),
        "{result:?}"
    );
}
