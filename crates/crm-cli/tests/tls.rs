//! `crm` against a real nats-server (2.9.10 here) over TLS with client certificates, and with
//! a JWT credentials file in operator mode. Every key, certificate and JWT is made at test
//! time: the PKI with rcgen, the operator, account and user with nkeys, the JWTs by hand.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use crm_testkit::{ChildProcess, NatsServer, NatsServerOptions, TempDataDir};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SignatureAlgorithm,
};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;
use support::send_until_answered;

/// How long `crm serve` may take to become ready (a debug build on a busy machine).
const READY_WAIT_MAX: Duration = Duration::from_secs(30);
/// A bound on one-shot `crm` runs, so that a `crm` that hangs fails the test instead of
/// hanging it. A refused connection ends in well under a second.
const EXIT_WAIT_MAX: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Encodings the test needs and no dependency provides: base64 (PEM, JWT), base32 (the JWT
// id), and just enough DER to turn a PKCS#8 EC key into its SEC1 form.

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 of `bytes` in `alphabet`, with `=` padding when `pad`.
fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..4 {
            if i < symbols {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 4648 base32 without padding, as the NATS JWT library writes a JWT's id.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0_u32, 0_u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64(der, BASE64_STANDARD, true);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// One DER element: (tag, content, what follows it).
fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let (tag, first) = (input[0], input[1]);
    let (length, header) = match first {
        0..=0x7f => (usize::from(first), 2),
        0x81 => (usize::from(input[2]), 3),
        0x82 => ((usize::from(input[2]) << 8) | usize::from(input[3]), 4),
        _ => panic!("a DER length this test does not need: {first:#x}"),
    };
    (
        tag,
        &input[header..header + length],
        &input[header + length..],
    )
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// The SEC1 `EC PRIVATE KEY` form of a PKCS#8 P-256 key, with the curve named in it as
/// OpenSSL writes it.
fn sec1_from_pkcs8_p256(pkcs8: &[u8]) -> Vec<u8> {
    const PRIME256V1: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let (_, outer, _) = der_element(pkcs8);
    let (_, _version, rest) = der_element(outer);
    let (_, _algorithm, rest) = der_element(rest);
    let (_, ec_private_key, _) = der_element(rest);
    let (_, fields, _) = der_element(ec_private_key);
    let (_, version, rest) = der_element(fields);
    let (_, secret, rest) = der_element(rest);
    let mut content = der(0x02, version);
    content.extend(der(0x04, secret));
    content.extend(der(0xa0, &PRIME256V1));
    content.extend_from_slice(rest); // [1] the public key
    der(0x30, &content)
}

// ---------------------------------------------------------------------------------------
// The PKI.

/// How the client key is written for `--nats-tls-key`.
#[derive(Clone, Copy, Debug)]
enum KeyForm {
    /// `BEGIN PRIVATE KEY` of an ECDSA P-256 key (what rcgen writes).
    Pkcs8P256,
    /// `BEGIN PRIVATE KEY` of an ECDSA P-384 key.
    Pkcs8P384,
    /// `BEGIN PRIVATE KEY` of an Ed25519 key.
    Pkcs8Ed25519,
    /// `BEGIN EC PRIVATE KEY` (SEC1, as `openssl ecparam -genkey` writes) of a P-256 key.
    Sec1P256,
}

impl KeyForm {
    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyForm::Pkcs8P256 | KeyForm::Sec1P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyForm::Pkcs8P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyForm::Pkcs8Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    fn pem(self, key: &KeyPair) -> String {
        match self {
            KeyForm::Sec1P256 => pem(
                "EC PRIVATE KEY",
                &sec1_from_pkcs8_p256(&key.serialize_der()),
            ),
            _ => key.serialize_pem(),
        }
    }
}

/// A CA and what it signed, as files in a temp dir.
struct Pki {
    dir: TempDataDir,
    ca: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = TempDataDir::new().expect("temp dir");
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("crm test CA {name}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write ca.pem");
        Pki {
            dir,
            ca: Issuer::new(params, key),
        }
    }

    fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Writes `<name>.pem` and `<name>-key.pem`: a certificate for `names` (IP addresses or
    /// DNS names) with the given usage, signed by this CA; returns (cert, key) paths.
    fn issue(
        &self,
        name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
        form: KeyForm,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate_for(form.algorithm()).expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, form.pem(&key)).expect("write key");
        (cert_path, key_path)
    }

    fn server(&self) -> (PathBuf, PathBuf) {
        self.issue(
            "server",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
            KeyForm::Pkcs8P256,
        )
    }

    fn client(&self, name: &str, form: KeyForm) -> (PathBuf, PathBuf) {
        self.issue(name, &[], ExtendedKeyUsagePurpose::ClientAuth, form)
    }
}

/// A nats-server that requires TLS and a client certificate signed by `pki`'s CA.
fn tls_server(pki: &Pki) -> NatsServer {
    let (cert, key) = pki.server();
    NatsServer::start_with(NatsServerOptions::with_config(format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n  \
         timeout: 5\n}}\n",
        cert.display().to_string(),
        key.display().to_string(),
        pki.ca_pem().display().to_string(),
    )))
    .expect("start nats-server with TLS")
}

fn tls_url(nats: &NatsServer) -> String {
    format!("tls://127.0.0.1:{}", nats.port())
}

/// The TLS flags of `crm`: a CA, and a client certificate and key when given.
fn tls_args(ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> Vec<String> {
    let mut args = vec!["--nats-tls-ca".to_owned(), ca.display().to_string()];
    if let Some((cert, key)) = client {
        args.extend([
            "--nats-tls-cert".to_owned(),
            cert.display().to_string(),
            "--nats-tls-key".to_owned(),
            key.display().to_string(),
        ]);
    }
    args
}

/// A `crm` command with no NATS settings inherited from the environment.
fn crm(args: &[&str]) -> Process {
    let mut command = Process::new(env!("CARGO_BIN_EXE_crm"));
    command.args(args);
    for name in [
        "CRM_NATS_URL",
        "NATS_URL",
        "CRM_NATS_CREDS",
        "CRM_NATS_NKEY",
        "CRM_NATS_TLS_CA",
        "CRM_NATS_TLS_CERT",
        "CRM_NATS_TLS_KEY",
        "CRM_NATS_INBOX_PREFIX",
        "CRM_LOG_FORMAT",
    ] {
        command.env_remove(name);
    }
    // anyhow adds a backtrace to the error when these ask for one.
    command
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0");
    command
}

/// Runs a one-shot `crm` to its end (killed after [`EXIT_WAIT_MAX`]): (exit code, stdout,
/// stderr).
fn run(command: Process) -> (Option<i32>, String, String) {
    let mut child = ChildProcess::spawn(command).expect("spawn crm");
    let status = match child.wait_for_exit(EXIT_WAIT_MAX) {
        Ok(status) => status,
        Err(e) => panic!("crm did not exit: {e}\n{}", child.output_tail()),
    };
    (
        status.code(),
        child.stdout().expect("stdout"),
        child.stderr().expect("stderr"),
    )
}

/// `crm serve` without read models on a fresh data dir, with `nats_args`.
fn spawn_serve(dir: &TempDataDir, nats_args: &[String]) -> ChildProcess {
    let mut command = crm(&["serve", "--projections", ""]);
    command
        .arg("--data-dir")
        .arg(dir.path())
        .args(nats_args)
        .env("RUST_LOG", "info");
    let mut serve = ChildProcess::spawn(command).expect("spawn crm serve");
    if let Err(e) = serve.wait_for_line("crm serve ready", READY_WAIT_MAX) {
        panic!("crm serve not ready: {e}\n{}", serve.output_tail());
    }
    serve
}

/// One CreateLead through `client` is accepted (so `crm serve`'s connection works both ways).
async fn create_a_lead(client: &async_nats::Client) {
    let body = json!({"lead_id": Uuid::now_v7(), "name": "Ada", "source": "web"});
    let reply = send_until_answered(client, "lead.CreateLead", Uuid::now_v7(), &body).await;
    assert_eq!(reply["status"], "accepted", "{reply}");
}

fn stop(serve: &mut ChildProcess) {
    match serve.terminate(Duration::from_secs(20)) {
        Ok(status) => assert!(status.success(), "{status:?}\n{}", serve.output_tail()),
        Err(e) => panic!("crm serve did not stop: {e}\n{}", serve.output_tail()),
    }
}

/// The error of a failed `crm` run: one line, the last on stderr (after any log lines, such
/// as async-nats's own about the refusal), naming the server it tried.
fn one_line_error(code: Option<i32>, stderr: &str, url: &str) -> String {
    assert!(code.is_some_and(|c| c != 0), "crm succeeded: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "not one error line:\n{stderr}");
    assert_eq!(lines.last(), errors.first().copied(), "{stderr}");
    assert!(
        errors[0].starts_with(&format!("Error: connecting to NATS at {url}: ")),
        "{stderr}"
    );
    (*errors[0]).to_owned()
}

// ---------------------------------------------------------------------------------------
// TLS.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_status_and_health_work_over_tls_with_a_client_certificate() {
    let pki = Pki::new("main");
    let nats = tls_server(&pki);
    let client_files = pki.client("crm", KeyForm::Pkcs8P256);
    let mut nats_args = vec!["--nats-url".to_owned(), tls_url(&nats)];
    nats_args.extend(tls_args(&pki.ca_pem(), Some(&client_files)));
    let dir = TempDataDir::new().unwrap();
    let mut serve = spawn_serve(&dir, &nats_args);

    let client = nats
        .connect_with(
            crm_testkit::test_connect_options()
                .require_tls(true)
                .add_root_certificates(pki.ca_pem())
                .add_client_certificate(client_files.0.clone(), client_files.1.clone()),
        )
        .await
        .expect("a test client connects over TLS");
    create_a_lead(&client).await;

    let (code, stdout, stderr) = run({
        let mut command = crm(&["status"]);
        command.args(&nats_args);
        command
    });
    assert_eq!(code, Some(0), "crm status failed:\n{stdout}{stderr}");
    assert!(stdout.contains("(serve, crm, version"), "{stdout}");

    let (code, stdout, stderr) = run({
        let mut command = crm(&["health"]);
        command.args(&nats_args);
        command
    });
    assert_eq!(code, Some(0), "crm health failed:\n{stdout}{stderr}");
    assert!(stdout.starts_with("healthy: "), "{stdout}");

    stop(&mut serve);
}

/// Each key form connects: `crm health` gets as far as "no crm instance answered", which it
/// only says after its subscription and request went through the TLS connection.
#[test]
fn client_keys_in_pkcs8_and_sec1_form_are_accepted() {
    let pki = Pki::new("forms");
    let nats = tls_server(&pki);
    for form in [
        KeyForm::Pkcs8P256,
        KeyForm::Pkcs8P384,
        KeyForm::Pkcs8Ed25519,
        KeyForm::Sec1P256,
    ] {
        let client_files = pki.client(&format!("{form:?}"), form);
        let key_text = std::fs::read_to_string(&client_files.1).unwrap();
        let label = match form {
            KeyForm::Sec1P256 => "-----BEGIN EC PRIVATE KEY-----",
            _ => "-----BEGIN PRIVATE KEY-----",
        };
        assert!(key_text.starts_with(label), "{form:?}: {key_text}");
        let mut command = crm(&["health", "--wait-ms", "200", "--nats-url", &tls_url(&nats)]);
        command.args(tls_args(&pki.ca_pem(), Some(&client_files)));
        let (code, stdout, stderr) = run(command);
        assert_eq!(
            (code, stdout.trim()),
            (Some(1), "unhealthy: no crm instance answered"),
            "{form:?}: {stderr}"
        );
    }
}

#[test]
fn without_a_client_certificate_crm_fails_at_once_with_one_line() {
    let pki = Pki::new("nocert");
    let nats = tls_server(&pki);
    let url = tls_url(&nats);
    let dir = TempDataDir::new().unwrap();
    // serve, too: it must not wait for a connection that will never be allowed.
    let mut command = crm(&["serve", "--projections", ""]);
    command
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--nats-url", &url])
        .args(tls_args(&pki.ca_pem(), None))
        .env("RUST_LOG", "off");
    let (code, stdout, stderr) = run(command);
    let error = one_line_error(code, &stderr, &url);
    // nats-server 2.9 answers a missing client certificate with a bad_certificate alert.
    assert!(
        error.contains("BadCertificate") || error.contains("CertificateRequired"),
        "{error}"
    );
    assert!(!stdout.contains("crm serve ready"), "{stdout}");

    let mut command = crm(&["status", "--nats-url", &url]);
    command.args(tls_args(&pki.ca_pem(), None));
    let (code, _, stderr) = run(command);
    one_line_error(code, &stderr, &url);
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("server-side");
    let other = Pki::new("other");
    let nats = tls_server(&pki);
    let url = tls_url(&nats);
    let client_files = pki.client("crm", KeyForm::Pkcs8P256);
    let mut command = crm(&["status", "--nats-url", &url]);
    command.args(tls_args(&other.ca_pem(), Some(&client_files)));
    let (code, _, stderr) = run(command);
    let error = one_line_error(code, &stderr, &url);
    assert!(error.contains("UnknownIssuer"), "{error}");
    // A health check says the same as its one line of verdict, exit status 1.
    let mut command = crm(&["health", "--nats-url", &url]);
    command.args(tls_args(&other.ca_pem(), Some(&client_files)));
    let (code, stdout, _) = run(command);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!("unhealthy: connecting to NATS at {url}: "))
            && stdout.contains("UnknownIssuer"),
        "{stdout}"
    );
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("trusted");
    let other = Pki::new("untrusted");
    let nats = tls_server(&pki);
    let url = tls_url(&nats);
    let client_files = other.client("intruder", KeyForm::Pkcs8P256);
    let mut command = crm(&["status", "--nats-url", &url]);
    command.args(tls_args(&pki.ca_pem(), Some(&client_files)));
    let (code, _, stderr) = run(command);
    let error = one_line_error(code, &stderr, &url);
    assert!(
        error.contains("alert") || error.contains("certificate"),
        "{error}"
    );
}

/// Files `crm` cannot use are named with what is wrong, before any connection is tried (the
/// URL is a closed port).
#[test]
fn unusable_tls_files_are_named_with_the_formats_crm_takes() {
    let pki = Pki::new("files");
    let (cert, key) = pki.client("crm", KeyForm::Pkcs8P256);
    let (_, other_key) = pki.client("other", KeyForm::Pkcs8P256);
    let encrypted = pki.dir.join("encrypted-key.pem");
    std::fs::write(
        &encrypted,
        pem("ENCRYPTED PRIVATE KEY", b"not really encrypted"),
    )
    .unwrap();
    let empty = pki.dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let url = format!("tls://127.0.0.1:{}", crm_testkit::free_loopback_port());
    let ca = pki.ca_pem();
    let cases: [(&Path, &Path, &Path, &[&str]); 5] = [
        // The certificate given as the key: the manual try's "could not add certificate or key".
        (
            &ca,
            &cert,
            &cert,
            &["holds no private key", "PKCS#8", "PKCS#1", "SEC1"],
        ),
        (
            &ca,
            &cert,
            &other_key,
            &["is not the key of the certificate"],
        ),
        (&ca, &cert, &encrypted, &["is an encrypted key", "PKCS#8"]),
        (
            &ca,
            &key,
            &key,
            &["--nats-tls-cert", "holds no PEM certificate"],
        ),
        (
            &empty,
            &cert,
            &key,
            &["--nats-tls-ca", "holds no PEM certificate"],
        ),
    ];
    for (ca, cert, key, expected) in cases {
        let mut command = crm(&["status", "--nats-url", &url]);
        command.args(tls_args(ca, Some(&(cert.to_owned(), key.to_owned()))));
        let (code, _, stderr) = run(command);
        assert_eq!(code, Some(1), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{text:?} not in: {stderr}");
        }
        for file in [cert, key] {
            let text = std::fs::read_to_string(file).unwrap();
            let base64_line = text.lines().nth(1).unwrap_or("-");
            assert!(
                !stderr.contains(base64_line),
                "file content in the error: {stderr}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// JWT credentials (operator mode).

/// A NATS JWT v2 of `nats` claims about `subject`, issued and signed by `issuer`: the id is
/// the base32 SHA-512/256 of the standard claims without it, as the NATS JWT library does.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: Value) -> String {
    use sha2::Digest as _;
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    // The standard claims in the library's field order (aud, exp, jti, iat, iss, name, nbf,
    // sub), empty ones left out.
    let standard = format!(
        "{{\"iat\":{iat},\"iss\":{},\"name\":{},\"sub\":{}}}",
        json!(issuer.public_key()),
        json!(name),
        json!(subject)
    );
    let jti = base32(&sha2::Sha512_256::digest(standard.as_bytes()));
    let claims = json!({
        "jti": jti,
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let header = base64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#, BASE64_URL, false);
    let payload = base64(claims.to_string().as_bytes(), BASE64_URL, false);
    let signed = format!("{header}.{payload}");
    let signature = issuer.sign(signed.as_bytes()).expect("sign the JWT");
    format!("{signed}.{}", base64(&signature, BASE64_URL, false))
}

fn account_jwt(
    operator: &nkeys::KeyPair,
    account: &nkeys::KeyPair,
    name: &str,
    js: bool,
) -> String {
    let jetstream = if js { -1 } else { 0 };
    jwt(
        operator,
        &account.public_key(),
        name,
        json!({
            "limits": {
                "subs": -1, "data": -1, "payload": -1,
                "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
                "mem_storage": jetstream, "disk_storage": jetstream,
                "streams": jetstream, "consumer": jetstream,
            },
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2,
        }),
    )
}

/// A `.creds` file for `user` in `account`, in the format `nsc` writes.
fn write_creds(path: &Path, account: &nkeys::KeyPair, user: &nkeys::KeyPair) {
    let user_jwt = jwt(
        account,
        &user.public_key(),
        "crm",
        json!({
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2,
        }),
    );
    let seed = user.seed().expect("user seed");
    std::fs::write(
        path,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n"
        ),
    )
    .expect("write the creds file");
}

/// An operator-mode nats-server: a MEMORY resolver preloaded with a system account and the
/// account `account` (JetStream on), the operator JWT naming the system account.
fn operator_server(account: &nkeys::KeyPair) -> NatsServer {
    let operator = nkeys::KeyPair::new_operator();
    let system = nkeys::KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "crm-test-operator",
        json!({"system_account": system.public_key(), "type": "operator", "version": 2}),
    );
    let config = format!(
        "operator: {operator_jwt}\nsystem_account: {system}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {system}: {system_jwt}\n  {account_key}: {account_jwt}\n}}\n",
        system = system.public_key(),
        system_jwt = account_jwt(&operator, &system, "SYS", false),
        account_key = account.public_key(),
        account_jwt = account_jwt(&operator, account, "CRM", true),
    );
    NatsServer::start_with(NatsServerOptions::with_config(config))
        .expect("start nats-server in operator mode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_authenticates_with_a_jwt_credentials_file_in_operator_mode() {
    let account = nkeys::KeyPair::new_account();
    let nats = operator_server(&account);
    let dir = TempDataDir::new().unwrap();
    let creds = dir.join("crm.creds");
    write_creds(&creds, &account, &nkeys::KeyPair::new_user());
    let nats_args = vec![
        "--nats-url".to_owned(),
        nats.url(),
        "--nats-creds".to_owned(),
        creds.display().to_string(),
    ];
    let mut serve = spawn_serve(&dir, &nats_args);

    let caller_creds = dir.join("caller.creds");
    write_creds(&caller_creds, &account, &nkeys::KeyPair::new_user());
    let client = nats
        .connect_with(
            crm_testkit::test_connect_options()
                .credentials_file(&caller_creds)
                .await
                .expect("read the caller's creds"),
        )
        .await
        .expect("a test client connects with its creds");
    create_a_lead(&client).await;

    let (code, stdout, stderr) = run({
        let mut command = crm(&["health"]);
        command.args(&nats_args);
        command
    });
    assert_eq!(code, Some(0), "crm health failed:\n{stdout}{stderr}");
    stop(&mut serve);
    let output = format!("{}{}", serve.stdout().unwrap(), serve.stderr().unwrap());
    let creds_text = std::fs::read_to_string(&creds).unwrap();
    let seed_line = creds_text.lines().find(|l| l.starts_with("SU")).unwrap();
    assert!(
        !output.contains(seed_line),
        "the seed was printed:\n{output}"
    );
}

#[test]
fn credentials_of_an_unknown_account_fail_at_once_with_one_line() {
    let nats = operator_server(&nkeys::KeyPair::new_account());
    let dir = TempDataDir::new().unwrap();
    let creds = dir.join("stranger.creds");
    write_creds(
        &creds,
        &nkeys::KeyPair::new_account(),
        &nkeys::KeyPair::new_user(),
    );
    let mut command = crm(&["status", "--nats-url", &nats.url(), "--nats-creds"]);
    command.arg(&creds);
    let (code, _, stderr) = run(command);
    let error = one_line_error(code, &stderr, &nats.url());
    assert!(error.contains("authorization violation"), "{error}");
}

#[test]
fn the_encodings_match_their_rfc_examples() {
    // RFC 4648, section 10.
    for (input, b64, b32) in [
        ("", "", ""),
        ("f", "Zg==", "MY"),
        ("fo", "Zm8=", "MZXQ"),
        ("foo", "Zm9v", "MZXW6"),
        ("foob", "Zm9vYg==", "MZXW6YQ"),
        ("fooba", "Zm9vYmE=", "MZXW6YTB"),
        ("foobar", "Zm9vYmFy", "MZXW6YTBOI"),
    ] {
        assert_eq!(base64(input.as_bytes(), BASE64_STANDARD, true), b64);
        assert_eq!(base32(input.as_bytes()), b32);
    }
    assert_eq!(base64(&[0xfb, 0xff], BASE64_URL, false), "-_8");
}
