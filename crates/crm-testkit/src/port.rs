//! Free loopback ports for servers started by tests.
//! Ports handed out once are never handed out again by this process, so parallel tests do not collide.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock};

use crate::TestkitError;

/// How many times to ask the kernel for a port before giving up.
const BIND_ATTEMPTS_MAX: u32 = 64;

/// A port on 127.0.0.1 that was free a moment ago; panics if none can be found.
///
/// Test support: a machine without a free loopback port cannot run the test anyway.
pub fn free_loopback_port() -> u16 {
    match try_free_loopback_port() {
        Ok(port) => port,
        Err(error) => panic!("{error}"),
    }
}

/// A port on 127.0.0.1 that was free a moment ago, not handed out before by this process.
pub fn try_free_loopback_port() -> Result<u16, TestkitError> {
    let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    let mut last_error = None;
    for _ in 0..BIND_ATTEMPTS_MAX {
        let port = match bind_ephemeral() {
            Ok(port) => port,
            Err(error) => {
                last_error = Some(error);
                continue;
            }
        };
        // A poisoned lock only means another test panicked while holding it; the set is still valid.
        let mut ports = handed_out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if ports.insert(port) {
            return Ok(port);
        }
    }
    let source = last_error
        .unwrap_or_else(|| std::io::Error::other("every port offered was handed out before"));
    Err(TestkitError::NoFreePort { source })
}

static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();

fn bind_ephemeral() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    assert_ne!(port, 0, "the kernel assigned port 0");
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let ports: HashSet<u16> = (0..20).map(|_| free_loopback_port()).collect();
        assert_eq!(ports.len(), 20);
    }

    #[test]
    fn free_port_can_be_bound() {
        let port = free_loopback_port();
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port is free");
    }
}
