//! Which nats-server releases the project runs on, and how a version is read from
//! `nats-server --version` ("nats-server: v2.14.6") or a client's INFO (`"version":"2.14.6"`).

use std::cmp::Ordering;
use std::fmt;

/// The oldest nats-server the project supports: the test kit refuses an older binary, and
/// `crm serve` refuses to start one or to use an external server that reports an older
/// version. Older releases are out of support and have JetStream data-loss and split-brain
/// bugs fixed in 2.12.3 (and 2.10.23), among them a race in the `Nats-Expected-Last-Sequence`
/// check that the tailer's gap-free, in-order publishing relies on. The release the project
/// installs and tests on is pinned in scripts/ensure-nats-server.sh (and docker-compose.yml).
pub const NATS_SERVER_VERSION_MIN: NatsServerVersion = NatsServerVersion {
    major: 2,
    minor: 12,
    patch: 3,
    prerelease: false,
};

/// A nats-server release number. A pre-release (`2.12.3-RC.1`) orders below its release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatsServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// Whether the version had a `-suffix` (release candidate, beta, …).
    pub prerelease: bool,
}

impl NatsServerVersion {
    /// Reads `2.14.6`, `v2.14.6`, `2.12.0-RC.1` or a whole `nats-server: v2.14.6` line;
    /// `None` for anything else.
    pub fn parse(text: &str) -> Option<NatsServerVersion> {
        let text = text.trim();
        let text = text.strip_prefix("nats-server:").unwrap_or(text).trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let (numbers, suffix) = text.split_at(text.find(['-', '+']).unwrap_or(text.len()));
        if suffix.len() == 1 {
            return None; // a bare `-` or `+`
        }
        let prerelease = suffix.starts_with('-');
        let mut parts = numbers.split('.');
        let mut number = || -> Option<u32> {
            let part = parts.next()?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (major, minor, patch) = (number()?, number()?, number()?);
        if parts.next().is_some() {
            return None;
        }
        Some(NatsServerVersion {
            major,
            minor,
            patch,
            prerelease,
        })
    }

    /// Whether this release is at least [`NATS_SERVER_VERSION_MIN`].
    pub fn is_supported(&self) -> bool {
        *self >= NATS_SERVER_VERSION_MIN
    }
}

impl Ord for NatsServerVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch, !self.prerelease).cmp(&(
            other.major,
            other.minor,
            other.patch,
            !other.prerelease,
        ))
    }
}

impl PartialOrd for NatsServerVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for NatsServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if self.prerelease {
            f.write_str(" (pre-release)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> NatsServerVersion {
        NatsServerVersion {
            major,
            minor,
            patch,
            prerelease: false,
        }
    }

    #[test]
    fn parses_the_version_line_and_the_info_field() {
        assert_eq!(
            NatsServerVersion::parse("nats-server: v2.14.6\n"),
            Some(v(2, 14, 6))
        );
        assert_eq!(NatsServerVersion::parse("2.9.10"), Some(v(2, 9, 10)));
        assert_eq!(NatsServerVersion::parse("v2.12.3"), Some(v(2, 12, 3)));
        assert_eq!(
            NatsServerVersion::parse("2.12.3+build.7"),
            Some(v(2, 12, 3))
        );
    }

    #[test]
    fn a_prerelease_orders_below_its_release() {
        let rc = NatsServerVersion::parse("2.12.3-RC.1").expect("parses");
        assert!(rc.prerelease);
        assert!(rc < v(2, 12, 3));
        assert!(rc > v(2, 12, 2));
        assert!(!rc.is_supported());
        assert_eq!(rc.to_string(), "2.12.3 (pre-release)");
    }

    #[test]
    fn rejects_what_is_not_a_version() {
        for text in [
            "",
            "nats-server",
            "2.14",
            "2.14.6.1",
            "2..6",
            "v",
            "x.y.z",
            "-1.2.3",
            "2.14.6-",
        ] {
            assert_eq!(NatsServerVersion::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_minimum_is_supported_and_debian_bookworms_is_not() {
        assert!(NATS_SERVER_VERSION_MIN.is_supported());
        assert!(v(2, 14, 6).is_supported());
        assert!(v(3, 0, 0).is_supported());
        assert!(!v(2, 9, 10).is_supported());
        assert!(!v(2, 12, 2).is_supported());
        assert!(!v(2, 10, 26).is_supported());
    }
}
