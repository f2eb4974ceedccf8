//! `crm serve` refuses a nats-server older than `crm_wire::NATS_SERVER_VERSION_MIN`: a local
//! binary by its `--version`, an external server by the version in its INFO. Neither needs an
//! old server: a script stands in for the binary, a few lines of protocol for the server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use crm_testkit::{ChildProcess, TempDataDir};

/// Generous: `crm serve` refuses before it does anything slow.
const EXIT_WAIT_MAX: Duration = Duration::from_secs(60);

fn crm_serve(data_dir: &Path, args: &[&str]) -> ChildProcess {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CRM_NATS_URL")
        .env_remove("NATS_URL")
        .env("RUST_LOG", "warn");
    ChildProcess::spawn(command).expect("spawn crm serve")
}

fn refused(mut serve: ChildProcess) -> String {
    let status = serve.wait_for_exit(EXIT_WAIT_MAX).expect("crm serve exits");
    let stderr = serve.stderr().expect("stderr");
    assert!(!status.success(), "crm serve started: {stderr}");
    assert!(
        !serve.stdout().expect("stdout").contains("crm serve ready"),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_local_nats_server_older_than_the_minimum_is_not_started() {
    let dir = TempDataDir::new().expect("data dir");
    let fake = dir.path().join("old-nats-server");
    // Answers `--version` like Debian's 2.9.10; anything else would be a start, and fails.
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = --version ] && echo 'nats-server: v2.9.10' && exit 0\nexit 3\n",
    )
    .expect("write the fake binary");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let fake = fake.display().to_string();
    let stderr = refused(crm_serve(
        &dir.path().join("data"),
        &["--nats-server-bin", &fake],
    ));
    assert!(stderr.contains("nats-server 2.9.10"), "{stderr}");
    assert!(stderr.contains("2.12.3 or later"), "{stderr}");
    assert!(stderr.contains("scripts/ensure-nats-server.sh"), "{stderr}");
    assert!(
        !dir.path().join("data/nats/nats-server.pid").exists(),
        "nothing was started"
    );
}

#[test]
fn a_binary_that_reports_no_version_is_not_started() {
    let dir = TempDataDir::new().expect("data dir");
    // `true --version` prints coreutils' version (or nothing), not a nats-server's.
    let stderr = refused(crm_serve(dir.path(), &["--nats-server-bin", "true"]));
    assert!(stderr.contains("no nats-server version"), "{stderr}");
    assert!(stderr.contains("scripts/ensure-nats-server.sh"), "{stderr}");
}

/// A server that speaks just enough of the protocol for a client to connect: its INFO names
/// `version`, then PONG to every PING. Serves connections until the test ends.
fn fake_server(version: &str) -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let url = format!("nats://{}", listener.local_addr().expect("address"));
    let info = format!(
        "INFO {{\"server_id\":\"FAKE\",\"server_name\":\"fake\",\"version\":\"{version}\",\
         \"proto\":1,\"headers\":true,\"max_payload\":1048576,\"jetstream\":true}}\r\n"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let info = info.clone();
            std::thread::spawn(move || {
                if stream.write_all(info.as_bytes()).is_err() {
                    return;
                }
                let Ok(reader) = stream.try_clone() else {
                    return;
                };
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { return };
                    if line.starts_with("PING") && stream.write_all(b"PONG\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn an_external_nats_server_older_than_the_minimum_is_refused() {
    let dir = TempDataDir::new().expect("data dir");
    let url = fake_server("2.9.10");
    let stderr = refused(crm_serve(dir.path(), &["--nats-url", &url]));
    assert!(stderr.contains("nats-server 2.9.10"), "{stderr}");
    assert!(stderr.contains("2.12.3 or later"), "{stderr}");
}

#[test]
fn an_external_server_with_an_unreadable_version_is_refused() {
    let dir = TempDataDir::new().expect("data dir");
    let url = fake_server("not-a-version");
    let stderr = refused(crm_serve(dir.path(), &["--nats-url", &url]));
    assert!(stderr.contains("not a nats-server version"), "{stderr}");
}
