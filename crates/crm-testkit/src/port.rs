//! Free loopback ports for servers started by tests.
//!
//! Ports are taken from below the kernel's ephemeral range (`ip_local_port_range`), so no
//! outgoing connection and no `bind(0)` anywhere on the machine can take one between the
//! moment it is handed out and the moment a server binds it. Each process starts at its own
//! offset (from its pid) and never hands out a port twice, so parallel test processes seldom
//! try the same one, and a port found busy is skipped. Where the range cannot be read, or
//! leaves too little room below it, the kernel's `bind(0)` is the fallback.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, OnceLock};

use crate::TestkitError;

/// How many times to ask for a port before giving up.
const BIND_ATTEMPTS_MAX: u32 = 64;
/// Lowest port handed out: above the well-known and most registered service ports.
const FIXED_RANGE_START: u16 = 10_000;
/// Fewest ports the fixed range must hold to be used instead of `bind(0)`.
const FIXED_RANGE_LEN_MIN: u16 = 4_096;
const EPHEMERAL_RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

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
    let state = STATE.get_or_init(|| Mutex::new(PortState::new()));
    // A poisoned lock only means another test panicked while holding it; the state is valid.
    let mut state = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut last_error = None;
    for _ in 0..BIND_ATTEMPTS_MAX {
        let candidate = match state.fixed.as_mut() {
            Some(fixed) => fixed.next_candidate(),
            None => match bind_ephemeral() {
                Ok(port) => port,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            },
        };
        if state.handed_out.contains(&candidate) {
            continue;
        }
        if state.fixed.is_some() {
            if let Err(error) = TcpListener::bind((Ipv4Addr::LOCALHOST, candidate)) {
                last_error = Some(error);
                continue;
            }
        }
        state.handed_out.insert(candidate);
        return Ok(candidate);
    }
    let source = last_error
        .unwrap_or_else(|| std::io::Error::other("every port offered was handed out before"));
    Err(TestkitError::NoFreePort { source })
}

static STATE: OnceLock<Mutex<PortState>> = OnceLock::new();

struct PortState {
    handed_out: HashSet<u16>,
    fixed: Option<FixedRange>,
}

impl PortState {
    fn new() -> PortState {
        let ephemeral_start = std::fs::read_to_string(EPHEMERAL_RANGE_FILE)
            .ok()
            .and_then(|text| parse_range_start(&text));
        PortState {
            handed_out: HashSet::new(),
            fixed: ephemeral_start.and_then(|end| FixedRange::below(end, std::process::id())),
        }
    }
}

/// Ports `start..end`, walked from a per-process offset, wrapping.
struct FixedRange {
    start: u16,
    len: u16,
    next: u16,
}

impl FixedRange {
    fn below(end: u16, seed: u32) -> Option<FixedRange> {
        let len = end.checked_sub(FIXED_RANGE_START)?;
        if len < FIXED_RANGE_LEN_MIN {
            return None;
        }
        // Spread processes apart: consecutive pids start 97 ports from each other.
        let next = u16::try_from(seed.wrapping_mul(97) % u32::from(len)).unwrap_or(0);
        Some(FixedRange {
            start: FIXED_RANGE_START,
            len,
            next,
        })
    }

    fn next_candidate(&mut self) -> u16 {
        let port = self.start + self.next;
        self.next = (self.next + 1) % self.len;
        port
    }
}

/// The first number of `ip_local_port_range` ("32768\t60999\n").
fn parse_range_start(text: &str) -> Option<u16> {
    text.split_whitespace().next()?.parse().ok()
}

fn bind_ephemeral() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    if port == 0 {
        return Err(std::io::Error::other("the kernel assigned port 0"));
    }
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

    #[test]
    fn fixed_ports_stay_below_the_ephemeral_range_and_wrap() {
        let mut range = FixedRange::below(32_768, 12_345).expect("room below 32768");
        let ports: Vec<u16> = (0..30_000).map(|_| range.next_candidate()).collect();
        assert!(ports
            .iter()
            .all(|&p| (FIXED_RANGE_START..32_768).contains(&p)));
        assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 22_768);
        assert!(FixedRange::below(12_000, 1).is_none(), "too little room");
        assert!(FixedRange::below(1_024, 1).is_none(), "below the start");
    }

    #[test]
    fn the_range_file_is_parsed() {
        assert_eq!(parse_range_start("32768\t60999\n"), Some(32_768));
        assert_eq!(parse_range_start(""), None);
        assert_eq!(parse_range_start("x 1"), None);
    }
}
