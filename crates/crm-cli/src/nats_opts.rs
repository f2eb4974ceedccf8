//! How the CLI reaches NATS: one option group shared by every subcommand that connects (the
//! URL, credentials, nkey and TLS files, as the NATS tools take them, and the reply inbox
//! prefix), the one function that turns it into `async_nats::ConnectOptions`, the first
//! connection (which reports a TLS or authentication failure instead of retrying it), and the
//! redaction of URLs before they are shown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use async_nats::rustls;
use clap::Args;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The environment variable the NATS tools read a server URL from; used when neither
/// `--nats-url` nor `CRM_NATS_URL` is given.
pub const NATS_URL_ENV: &str = "NATS_URL";

/// What `--nats-tls-key` takes, for the errors about a key `crm` cannot use.
const KEY_FORMATS: &str = "an unencrypted PEM key in PKCS#8 (BEGIN PRIVATE KEY), PKCS#1 \
     (BEGIN RSA PRIVATE KEY) or SEC1 (BEGIN EC PRIVATE KEY) form, of an RSA, ECDSA P-256 or \
     P-384, or Ed25519 key";

/// Where the NATS server is and how to authenticate to it.
#[derive(Args, Clone, Debug, Default)]
pub struct NatsArgs {
    /// NATS server URL(s), comma separated. Falls back to the NATS_URL environment variable.
    /// A server not reachable yet is retried until it answers; a TLS or authentication failure
    /// on the first attempt ends `crm` with the error instead.
    #[arg(long, env = "CRM_NATS_URL")]
    pub nats_url: Option<String>,
    /// A NATS credentials file (JWT and nkey seed), as `nats --creds` takes.
    #[arg(
        long,
        env = "CRM_NATS_CREDS",
        value_name = "FILE",
        conflicts_with = "nats_nkey"
    )]
    pub nats_creds: Option<PathBuf>,
    /// A file holding an nkey seed (a line starting with `SU`), as `nats --nkey` takes.
    #[arg(long, env = "CRM_NATS_NKEY", value_name = "FILE")]
    pub nats_nkey: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for the server's certificate (instead of the
    /// system's); requires TLS.
    #[arg(long, env = "CRM_NATS_TLS_CA", value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// A PEM client certificate, optionally followed by its chain (needs --nats-tls-key);
    /// requires TLS.
    #[arg(long, env = "CRM_NATS_TLS_CERT", value_name = "FILE")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The PEM private key of --nats-tls-cert, unencrypted: PKCS#8 (BEGIN PRIVATE KEY),
    /// PKCS#1 (BEGIN RSA PRIVATE KEY) or SEC1 (BEGIN EC PRIVATE KEY); RSA, ECDSA P-256 or
    /// P-384, or Ed25519.
    #[arg(long, env = "CRM_NATS_TLS_KEY", value_name = "FILE")]
    pub nats_tls_key: Option<PathBuf>,
    /// The subject prefix of this client's reply inboxes (`_INBOX` when not given). The
    /// shipped deploy/nats/auth.conf lets each user receive replies only under its own,
    /// `_INBOX_<user>` (docs/PERMISSIONS.md).
    #[arg(
        long,
        env = "CRM_NATS_INBOX_PREFIX",
        value_name = "PREFIX",
        value_parser = parse_inbox_prefix
    )]
    pub nats_inbox_prefix: Option<String>,
}

/// An inbox prefix: a NATS subject without wildcards (`_INBOX_crm`, `tenant.a._INBOX`): dot
/// separated non-empty tokens of printable characters other than `*` and `>`.
pub fn parse_inbox_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the inbox prefix is empty".to_owned());
    }
    if let Some(bad) = text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '*' || *c == '>')
    {
        return Err(format!(
            "the inbox prefix {text:?} holds {bad:?}: it must be a subject without wildcards"
        ));
    }
    if text.split('.').any(str::is_empty) {
        return Err(format!(
            "the inbox prefix {text:?} has an empty token (a leading, trailing or double dot)"
        ));
    }
    Ok(text.to_owned())
}

impl NatsArgs {
    /// The server URL: `--nats-url` / `CRM_NATS_URL`, else `NATS_URL`, else none.
    pub fn url(&self) -> Option<String> {
        self.url_or(std::env::var(NATS_URL_ENV).ok())
    }

    fn url_or(&self, nats_url_env: Option<String>) -> Option<String> {
        self.nats_url
            .clone()
            .or(nats_url_env)
            .filter(|url| !url.trim().is_empty())
    }

    fn uses_tls(&self) -> bool {
        self.nats_tls_ca.is_some() || self.nats_tls_cert.is_some() || self.nats_tls_key.is_some()
    }

    /// Checks the combinations clap cannot (a certificate without its key, either way round),
    /// whether they came from flags or the environment.
    pub fn validate(&self) -> anyhow::Result<()> {
        match (&self.nats_tls_cert, &self.nats_tls_key) {
            (Some(_), None) => {
                bail!("--nats-tls-cert (CRM_NATS_TLS_CERT) needs --nats-tls-key (CRM_NATS_TLS_KEY)")
            }
            (None, Some(_)) => {
                bail!("--nats-tls-key (CRM_NATS_TLS_KEY) needs --nats-tls-cert (CRM_NATS_TLS_CERT)")
            }
            _ => {}
        }
        if self.nats_creds.is_some() && self.nats_nkey.is_some() {
            bail!("pass either --nats-creds or --nats-nkey, not both");
        }
        Ok(())
    }

    /// The connect options every NATS client of the CLI uses: the client name, a connect
    /// timeout, and the credentials and TLS settings given (their files checked, so that a
    /// key `crm` cannot use is named with the formats it takes). Retries on the initial
    /// connect are [`NatsArgs::connect`]'s.
    pub async fn connect_options(&self, name: &str) -> anyhow::Result<async_nats::ConnectOptions> {
        self.validate()?;
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &self.nats_creds {
            options = options
                .credentials_file(path)
                .await
                .with_context(|| format!("reading the NATS credentials file {}", path.display()))?;
        }
        if let Some(path) = &self.nats_nkey {
            options = options.nkey(read_nkey_seed(path)?);
        }
        if let Some(path) = &self.nats_tls_ca {
            read_pem_certificates(path, "--nats-tls-ca")?;
            options = options.add_root_certificates(path.clone());
        }
        if let (Some(cert), Some(key)) = (&self.nats_tls_cert, &self.nats_tls_key) {
            check_client_certificate(cert, key)?;
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.uses_tls() {
            options = options.require_tls(true);
        }
        if let Some(prefix) = &self.nats_inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok(options)
    }

    /// Connects to `url` with [`NatsArgs::connect_options`]; errors name the URL redacted.
    /// async-nats ignores credentials in the URL, so a user and password (or a token) there
    /// are passed as options, as the NATS tools do, unless a creds or nkey file is given.
    ///
    /// The first attempt is made once: a TLS failure (an untrusted server certificate, a
    /// client certificate the server refuses) or an authentication failure ends here with
    /// the error on one line, since retrying cannot fix it (async-nats would retry it
    /// forever). A server that is not reachable yet (refused, timed out, not resolved) is
    /// retried in the background until it answers, as before, with a warning.
    pub async fn connect(&self, url: &str, name: &str) -> anyhow::Result<async_nats::Client> {
        let shown = redact_url(url);
        match self.first_attempt(url, name).await? {
            Ok(client) => return Ok(client),
            Err(error) if fails_for_good(&error) => {
                bail!("connecting to NATS at {shown}: {}", one_line(&error));
            }
            Err(error) => tracing::warn!(
                url = %shown,
                error = %one_line(&error),
                "NATS is not reachable yet; retrying until it answers"
            ),
        }
        self.options_with_url_auth(url, name)
            .await?
            .retry_on_initial_connect()
            .connect(server_list(url))
            .await
            .with_context(|| format!("connecting to NATS at {shown}"))
    }

    /// [`NatsArgs::connect`] for one-shot tools (export, replay, rebuild, status, health):
    /// a server that does not answer the first attempt is an error too, reported on one line,
    /// instead of a background retry.
    pub async fn connect_once(&self, url: &str, name: &str) -> anyhow::Result<async_nats::Client> {
        self.first_attempt(url, name).await?.map_err(|error| {
            anyhow::anyhow!(
                "connecting to NATS at {}: {} (is the server reachable?)",
                redact_url(url),
                one_line(&error)
            )
        })
    }

    /// One connection attempt, without retries. async-nats logs server addresses at debug
    /// level: it gets them without credentials.
    async fn first_attempt(
        &self,
        url: &str,
        name: &str,
    ) -> anyhow::Result<Result<async_nats::Client, async_nats::ConnectError>> {
        let options = self.options_with_url_auth(url, name).await?;
        Ok(options.connect(server_list(url)).await)
    }

    /// [`NatsArgs::connect_options`] plus the credentials carried in `url`, if any.
    async fn options_with_url_auth(
        &self,
        url: &str,
        name: &str,
    ) -> anyhow::Result<async_nats::ConnectOptions> {
        let mut options = self.connect_options(name).await?;
        if self.nats_creds.is_none() && self.nats_nkey.is_none() {
            match url_auth(url) {
                Some(UrlAuth::UserPassword(user, password)) => {
                    options = options.user_and_password(user, password);
                }
                Some(UrlAuth::Token(token)) => options = options.token(token),
                None => {}
            }
        }
        Ok(options)
    }
}

/// Whether a failed connection attempt cannot succeed by retrying: TLS (the handshake, or a
/// TLS alert from the server after it, which async-nats reports as an I/O error of kind
/// `InvalidData`), authentication and authorization failures, and unparsable URLs.
fn fails_for_good(error: &async_nats::ConnectError) -> bool {
    use async_nats::ConnectErrorKind as Kind;
    match error.kind() {
        Kind::Tls | Kind::Authentication | Kind::AuthorizationViolation | Kind::ServerParse => true,
        Kind::Io => {
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                if cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
                {
                    return true;
                }
                source = cause.source();
            }
            false
        }
        _ => false,
    }
}

/// An error and its causes on one line, each cause once (async-nats's errors repeat their
/// source in their own text).
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text.replace(['\n', '\r'], " ")
}

/// Credentials carried in a server URL.
#[derive(Debug, PartialEq, Eq)]
enum UrlAuth {
    UserPassword(String, String),
    Token(String),
}

/// The credentials of the first of the comma-separated URLs that carries any, decoded.
fn url_auth(urls: &str) -> Option<UrlAuth> {
    urls.split(',').find_map(|url| {
        let address = url.trim().parse::<async_nats::ServerAddr>().ok()?;
        let user = percent_decode(address.username()?);
        Some(match address.password() {
            Some(password) => UrlAuth::UserPassword(user, percent_decode(password)),
            None => UrlAuth::Token(user),
        })
    })
}

/// `%XX` escapes decoded; anything malformed is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The PEM certificates in `path` (at least one), as async-nats will read them; errors name
/// the flag and the file.
fn read_pem_certificates(path: &Path, flag: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{flag}: cannot read {}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow!(
                "{flag}: {} is not a readable PEM file ({e})",
                path.display()
            )
        })?;
    if certificates.is_empty() {
        bail!(
            "{flag}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certificates)
}

/// Checks that `key` is a private key `crm` can sign with and that it belongs to the first
/// certificate of `cert`, as async-nats will need; its own error for any of these is only
/// "could not add certificate or key". The key's content is never put in an error.
fn check_client_certificate(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let chain = read_pem_certificates(cert, "--nats-tls-cert")?;
    let bytes = std::fs::read(key)
        .with_context(|| format!("--nats-tls-key: cannot read {}", key.display()))?;
    let key_der = match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key_der) => key_der,
        Err(_) if bytes.windows(9).any(|w| w == b"ENCRYPTED") => bail!(
            "--nats-tls-key: {} is an encrypted key; crm takes {KEY_FORMATS}",
            key.display()
        ),
        Err(e) => bail!(
            "--nats-tls-key: {} holds no private key crm can read ({e}); crm takes {KEY_FORMATS}",
            key.display()
        ),
    };
    let format = match &key_der {
        PrivateKeyDer::Pkcs1(_) => "PKCS#1",
        PrivateKeyDer::Sec1(_) => "SEC1",
        PrivateKeyDer::Pkcs8(_) => "PKCS#8",
        _ => "PEM",
    };
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| {
            anyhow!(
                "--nats-tls-key: {} is a {format} key crm cannot use ({e}); crm takes {KEY_FORMATS}",
                key.display()
            )
        })?;
    match rustls::sign::CertifiedKey::new(chain, signing_key).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => bail!(
            "--nats-tls-key: {} is not the key of the certificate in --nats-tls-cert {} (their \
             public keys differ)",
            key.display(),
            cert.display()
        ),
        Err(e) => bail!(
            "--nats-tls-cert: {}: its first certificate cannot be used ({e})",
            cert.display()
        ),
    }
}

/// The seed in an nkey file: the first line starting with `S` (a seed), trimmed. The file's
/// content is never put in an error.
fn read_nkey_seed(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the nkey file {}", path.display()))?;
    match text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with('S') && line.len() > 2)
    {
        Some(seed) => Ok(seed.to_owned()),
        None => bail!("the nkey file {} holds no nkey seed", path.display()),
    }
}

/// `url` with the userinfo (user and password, or a token) of each comma-separated URL
/// replaced by `***`: `nats://alice:secret@host:4222` becomes `nats://***@host:4222`. A URL
/// without userinfo is returned unchanged; any input is accepted.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| replace_userinfo(one, "***@"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The servers of `url`, one per comma-separated URL (a cluster's nodes, for failover), each
/// without its userinfo (the credentials are passed to async-nats as options instead).
/// async-nats parses a string as one URL, so the list is handed over as a list.
fn server_list(url: &str) -> Vec<String> {
    url.split(',')
        .map(str::trim)
        .filter(|one| !one.is_empty())
        .map(|one| replace_userinfo(one, ""))
        .collect()
}

fn replace_userinfo(url: &str, replacement: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            let host = &authority[at + 1..];
            // Keep leading whitespace of a list like "a, b" as it was.
            let indent_len = scheme.len() + authority.len() - authority.trim_start().len();
            let indent = if scheme.is_empty() {
                &url[..indent_len]
            } else {
                ""
            };
            format!("{indent}{scheme}{replacement}{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NATS options as the subcommands flatten them.
    #[derive(clap::Parser, Debug)]
    struct Parsed {
        #[command(flatten)]
        nats: NatsArgs,
    }

    #[test]
    fn the_inbox_prefix_is_a_subject_without_wildcards() {
        use clap::Parser as _;
        let parsed = Parsed::try_parse_from(["crm", "--nats-inbox-prefix", "_INBOX_crm"]).unwrap();
        assert_eq!(parsed.nats.nats_inbox_prefix.as_deref(), Some("_INBOX_crm"));
        let parsed = Parsed::try_parse_from(["crm"]).unwrap();
        assert_eq!(parsed.nats.nats_inbox_prefix, None);
        let command = <Parsed as clap::CommandFactory>::command();
        let env = command
            .get_arguments()
            .find(|arg| arg.get_id() == "nats_inbox_prefix")
            .and_then(|arg| arg.get_env());
        assert_eq!(env.and_then(|e| e.to_str()), Some("CRM_NATS_INBOX_PREFIX"));
        assert_eq!(
            parse_inbox_prefix("tenant-a._INBOX").as_deref(),
            Ok("tenant-a._INBOX")
        );
        for bad in [
            "", "_INBOX.*", "_INBOX.>", ">", "a b", "a.", ".a", "a..b", "a\tb", "a\nb",
        ] {
            assert!(parse_inbox_prefix(bad).is_err(), "{bad:?} was accepted");
            assert!(
                Parsed::try_parse_from(["crm", "--nats-inbox-prefix", bad]).is_err(),
                "{bad:?} was accepted by the flag"
            );
        }
    }

    #[tokio::test]
    async fn connect_options_take_the_inbox_prefix() {
        let args = NatsArgs {
            nats_inbox_prefix: Some("_INBOX_crm".into()),
            ..NatsArgs::default()
        };
        assert!(args.connect_options("t").await.is_ok());
    }

    #[test]
    fn user_and_password_are_redacted() {
        assert_eq!(
            redact_url("nats://alice:secret@host:4222"),
            "nats://***@host:4222"
        );
    }

    #[test]
    fn each_server_is_handed_over_without_its_userinfo() {
        assert_eq!(
            server_list("nats://a:pw@h1:4222, tls://tok@h2,"),
            ["nats://h1:4222", "tls://h2"]
        );
        assert_eq!(server_list("nats://h:1"), ["nats://h:1"]);
        // async-nats takes each as one server address; a joined list would not parse.
        for one in server_list("nats://h1:4222,nats://h2:4223") {
            assert!(one.parse::<async_nats::ServerAddr>().is_ok(), "{one}");
        }
    }

    #[test]
    fn a_token_is_redacted() {
        assert_eq!(redact_url("tls://s3cr3tt0ken@host"), "tls://***@host");
    }

    #[test]
    fn each_of_several_urls_is_redacted() {
        assert_eq!(
            redact_url("nats://a:pw@h1:4222,nats://h2:4222,nats://b:pw2@h3"),
            "nats://***@h1:4222,nats://h2:4222,nats://***@h3"
        );
        assert_eq!(redact_url("a:pw@h1, b:pw@h2"), "***@h1, ***@h2");
    }

    #[test]
    fn a_url_without_userinfo_is_unchanged() {
        for url in [
            "nats://127.0.0.1:4222",
            "localhost",
            "nats://h/path?x=1@y",
            "",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn a_password_holding_at_signs_is_redacted_whole() {
        let redacted = redact_url("nats://u:p@ss@w0rd@host:1");
        assert_eq!(redacted, "nats://***@host:1");
    }

    #[test]
    fn garbage_never_panics_and_never_shows_userinfo() {
        for input in [
            "@",
            "://@",
            "://",
            "@@@",
            ",,,",
            "é:ü@ß",
            "nats://ü:é@",
            "\u{0}@\u{0}",
            "a@b@c,",
            " :// @ / ",
        ] {
            let redacted = redact_url(input);
            assert!(!redacted.contains("ü:é"), "{input:?} -> {redacted:?}");
        }
        assert_eq!(redact_url("é:ü@ß"), "***@ß");
    }

    #[test]
    fn credentials_in_the_url_are_used_for_the_connection() {
        assert_eq!(
            url_auth("nats://h1:4222,nats://alice:p%40ss@h2:4222"),
            Some(UrlAuth::UserPassword("alice".into(), "p@ss".into()))
        );
        assert_eq!(
            url_auth("nats://t0ken@h:4222"),
            Some(UrlAuth::Token("t0ken".into()))
        );
        assert_eq!(url_auth("nats://h:4222"), None);
        assert_eq!(url_auth("::garbage::"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn nats_url_is_the_fallback_of_the_flag() {
        let mut args = NatsArgs::default();
        assert_eq!(
            args.url_or(Some("nats://env:1".into())).as_deref(),
            Some("nats://env:1")
        );
        assert_eq!(args.url_or(Some(" ".into())), None);
        assert_eq!(args.url_or(None), None);
        args.nats_url = Some("nats://flag:1".into());
        assert_eq!(
            args.url_or(Some("nats://env:1".into())).as_deref(),
            Some("nats://flag:1")
        );
    }

    #[tokio::test]
    async fn a_certificate_without_its_key_is_a_usage_error() {
        let args = NatsArgs {
            nats_tls_cert: Some("cert.pem".into()),
            ..NatsArgs::default()
        };
        let error = args.connect_options("t").await.err().map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("needs --nats-tls-key")),
            "{error:?}"
        );
        let args = NatsArgs {
            nats_tls_key: Some("key.pem".into()),
            ..NatsArgs::default()
        };
        assert!(args.connect_options("t").await.is_err());
    }

    #[tokio::test]
    async fn missing_files_are_named_in_the_error() {
        for args in [
            NatsArgs {
                nats_creds: Some("/nonexistent/crm.creds".into()),
                ..NatsArgs::default()
            },
            NatsArgs {
                nats_nkey: Some("/nonexistent/crm.nk".into()),
                ..NatsArgs::default()
            },
            NatsArgs {
                nats_tls_ca: Some("/nonexistent/ca.pem".into()),
                ..NatsArgs::default()
            },
        ] {
            let error = args
                .connect_options("t")
                .await
                .err()
                .map(|e| format!("{e:#}"));
            assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("/nonexistent/")),
                "{error:?}"
            );
        }
    }

    #[test]
    fn an_nkey_file_yields_its_seed_line_and_never_its_content_in_errors() {
        let dir = std::env::temp_dir().join(format!("crm-nkey-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let good = dir.join("user.nk");
        std::fs::write(&good, "# a comment\n  SUAEXAMPLESEED  \n").unwrap();
        assert_eq!(read_nkey_seed(&good).unwrap(), "SUAEXAMPLESEED");
        let bad = dir.join("bad.nk");
        std::fs::write(&bad, "not-a-seed-secret\n").unwrap();
        let error = read_nkey_seed(&bad).unwrap_err().to_string();
        assert!(error.contains("holds no nkey seed"), "{error}");
        assert!(!error.contains("not-a-seed-secret"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
