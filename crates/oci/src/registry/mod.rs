//! A focused client for the OCI distribution API v2 on `reqwest` + `tokio`.
//!
//! Why not `oci-client`: baleen must stream every blob straight into the store's ingest file
//! while hashing it and stop the moment a blob runs past its descriptor size; it also needs
//! Docker's `config.json` credential lookup and loopback/insecure scheme fallback. Those are most
//! of the work and `oci-client` would sit in the way of each, so the client here is small:
//! endpoint selection, auth (Bearer token flow and Basic), bounded retries, and typed errors.
//!
//! A registry that sends nothing for [`RegistryOptions::stall_timeout`], or trickles a blob
//! below [`RegistryOptions::min_rate`], is treated as a dropped connection (retried, bounded)
//! and said so on stderr. Manifests, indexes and token answers are held to the same two rules
//! (one attempt: they are small); an error answer's body is read for at most 4 KiB and 30 s.
//!
//! A blob whose connection drops resumes with a Range request within the same pull; across
//! runs only whole verified blobs are reused. Non-goals: OAuth2 refresh tokens; Docker schema 1
//! manifests.

pub mod auth;
mod stall;

pub use stall::Stall;
use stall::{read_body, Cut, RateWatch};

use crate::digest::Digest;
use crate::manifest::ACCEPT_MANIFESTS;
use crate::reference::{Reference, DOCKER_HUB};
use crate::store::{Blob, Ingest, Store, StoreError};
use auth::{Challenge, Found};
use oci_spec::image::Descriptor;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Blob downloads one client runs at once: enough to fill a link, few enough not to look like
/// abuse to a registry.
pub const MAX_BLOB_DOWNLOADS: usize = 8;

/// How to reach registries. `Default` is what `baleen` uses without flags.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Hosts (`host[:port]`) that may be reached over plain HTTP or with an unverified
    /// certificate. Loopback hosts may always fall back to plain HTTP.
    pub insecure: Vec<String>,
    /// Extra PEM CA certificates to trust, besides the system and webpki roots.
    pub ca_certs: Vec<PathBuf>,
    /// Directory holding `config.json`; default `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config: Option<PathBuf>,
    /// Extra attempts after a dropped connection or a 5xx/429 answer (backoff 250 ms, doubling).
    pub retries: u32,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: u64,
    /// A registry that sends nothing for this long (no answer, or no byte of a body) is given
    /// up on for this attempt: retried (a blob resumes with a Range request), then failed.
    pub stall_timeout: Duration,
    /// The slowest a blob, manifest or token answer may arrive, in bytes per second, averaged
    /// over each `rate_window`: a registry trickling bytes just often enough never to stall is
    /// retried (a blob), then failed.
    pub min_rate: u64,
    pub rate_window: Duration,
}

/// The longest wait for any read outside [`RegistryOptions::stall_timeout`]'s watch: a
/// registry may take a while to acknowledge an upload (it hashes or copies what it received).
const SLOW_ANSWER: Duration = Duration::from_secs(120);

/// The largest token answer accepted (a JWT is a few KiB).
const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// Default [`RegistryOptions::stall_timeout`]: long enough for a registry busy assembling a
/// large blob, short against the 2 minutes a stalled connection used to hang per attempt.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`RegistryOptions::min_rate`]: 1 KiB/s, a seventh of a 56k modem and 88 MB a day;
/// a link slower than that cannot usefully pull images.
pub const MIN_RATE: u64 = 1024;
/// Default [`RegistryOptions::rate_window`].
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Environment variables overriding the defaults (for tests and odd links): seconds of silence,
/// and bytes per second.
pub const STALL_TIMEOUT_ENV: &str = "BALEEN_REGISTRY_STALL_SECS";
pub const MIN_RATE_ENV: &str = "BALEEN_REGISTRY_MIN_RATE";

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            tracing::warn!("ignoring {name}={v:?}: not a whole number");
            None
        }
    }
}

impl Default for RegistryOptions {
    /// The defaults above, with `$BALEEN_REGISTRY_STALL_SECS` and `$BALEEN_REGISTRY_MIN_RATE`
    /// applied when set; the rate window is twice the stall timeout when that is overridden.
    fn default() -> Self {
        let stall = env_number(STALL_TIMEOUT_ENV).filter(|&s| s > 0).map(Duration::from_secs);
        RegistryOptions {
            insecure: Vec::new(),
            ca_certs: Vec::new(),
            docker_config: None,
            retries: 3,
            max_manifest_bytes: crate::manifest::MAX_MANIFEST_BYTES,
            stall_timeout: stall.unwrap_or(STALL_TIMEOUT),
            min_rate: env_number(MIN_RATE_ENV).unwrap_or(MIN_RATE),
            rate_window: stall.map_or(RATE_WINDOW, |s| s * 2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("reading CA certificate {path}: {detail}")]
    CaCert { path: PathBuf, detail: String },
    #[error("setting up the HTTP client: {0}")]
    Client(String),
    #[error("connecting to registry {registry}: {}", crate::printable(detail))]
    Connect { registry: String, detail: String },
    #[error("{what}: registry {registry} answered {status}: {}", crate::printable(body))]
    Status { what: String, registry: String, status: u16, body: String },
    #[error("manifest unknown: {reference}")]
    ManifestUnknown { reference: String },
    #[error("blob unknown: {digest} in {repository}")]
    BlobUnknown { repository: String, digest: Digest },
    #[error("registry {registry} requires authentication, and no credentials for it were found (looked in {looked})")]
    NoCredentials { registry: String, looked: String },
    #[error("registry {registry} rejected the credentials from {source_name} (401 Unauthorized)")]
    BadCredentials { registry: String, source_name: String },
    #[error("looking up credentials for {registry}: {}", crate::printable(detail))]
    Credentials { registry: String, detail: String },
    #[error(
        "registry {registry}: token server {}: {}",
        crate::printable(realm),
        crate::printable(detail)
    )]
    Token { registry: String, realm: String, detail: String },
    #[error("{what}: larger than the {limit}-byte limit")]
    TooLarge { what: String, limit: u64 },
    #[error("{what}: registry announced {announced} bytes, the descriptor says {expected}")]
    WrongLength { what: String, announced: u64, expected: u64 },
    #[error(
        "{what}: connection to {registry} lost after {received} bytes: {}",
        crate::printable(detail)
    )]
    Interrupted { what: String, registry: String, received: u64, detail: String },
    #[error("{what}: registry {registry} {stall} ({received} bytes received); gave up after {attempts} attempts")]
    Stalled { what: String, registry: String, stall: Stall, received: u64, attempts: u32 },
    #[error("{what}")]
    Store { what: String, source: Box<StoreError> },
    #[error("{what}: {}", crate::printable(detail))]
    Protocol { what: String, detail: String },
}

/// The error and its sources on one line: reqwest's own message rarely says why.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[derive(Default)]
struct RegistryState {
    /// `https://host` or `http://host`, chosen on first contact.
    base: Option<String>,
    credentials: Option<Found>,
    /// Basic auth applies to every request; bearer tokens are per scope.
    basic: Option<String>,
    tokens: HashMap<String, String>,
}

/// One client for many requests and registries; share it (`&Client`) across concurrent pulls
/// so that connections, schemes and tokens are reused.
pub struct Client {
    http: reqwest::Client,
    /// For hosts listed in `insecure`: accepts any certificate.
    http_insecure: reqwest::Client,
    opts: RegistryOptions,
    state: Mutex<HashMap<String, RegistryState>>,
    /// Blob downloads in flight at once, over all pulls sharing this client.
    blob_slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("opts", &self.opts).finish_non_exhaustive()
    }
}

fn is_loopback(registry: &str) -> bool {
    let host =
        registry
            .rsplit_once(':')
            .map_or(registry, |(h, p)| if p.contains(']') { registry } else { h });
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

impl Client {
    pub fn new(opts: &RegistryOptions) -> Result<Client, RegistryError> {
        let mut roots = Vec::new();
        for path in &opts.ca_certs {
            let pem = std::fs::read(path)
                .map_err(|e| RegistryError::CaCert { path: path.clone(), detail: e.to_string() })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| RegistryError::CaCert { path: path.clone(), detail: chain(&e) })?;
            if certs.is_empty() {
                return Err(RegistryError::CaCert {
                    path: path.clone(),
                    detail: "no PEM certificate in it".into(),
                });
            }
            roots.extend(certs);
        }
        let build = |insecure: bool| {
            let mut b = reqwest::Client::builder()
                .user_agent(concat!("baleen/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(SLOW_ANSWER)
                .danger_accept_invalid_certs(insecure);
            for c in &roots {
                b = b.add_root_certificate(c.clone());
            }
            b.build().map_err(|e| RegistryError::Client(chain(&e)))
        };
        Ok(Client {
            http: build(false)?,
            http_insecure: build(true)?,
            opts: opts.clone(),
            state: Mutex::default(),
            blob_slots: tokio::sync::Semaphore::new(MAX_BLOB_DOWNLOADS),
        })
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    fn client_for(&self, registry: &str) -> &reqwest::Client {
        if self.opts.insecure.iter().any(|h| h == registry) {
            &self.http_insecure
        } else {
            &self.http
        }
    }

    /// `https://host` or, for loopback and insecure hosts that do not speak TLS, `http://host`.
    async fn base(&self, registry: &str) -> Result<String, RegistryError> {
        if let Some(b) = self.state.lock().expect("lock").get(registry).and_then(|s| s.base.clone())
        {
            return Ok(b);
        }
        let host = if registry == DOCKER_HUB { "registry-1.docker.io" } else { registry };
        let https = format!("https://{host}");
        let may_fall_back =
            is_loopback(registry) || self.opts.insecure.iter().any(|h| h == registry);
        let base = if !may_fall_back {
            https
        } else {
            let client = self.client_for(registry);
            let stall = self.opts.stall_timeout;
            let silent = || RegistryError::Stalled {
                what: format!("probing registry {registry}"),
                registry: registry.into(),
                stall: Stall::Silent(stall),
                received: 0,
                attempts: 1,
            };
            let probe = |url: String| tokio::time::timeout(stall, client.get(url).send());
            match probe(format!("{https}/v2/")).await.map_err(|_| silent())? {
                Ok(_) => https,
                Err(tls_err) => {
                    let http = format!("http://{host}");
                    match probe(format!("{http}/v2/")).await.map_err(|_| silent())? {
                        Ok(r) if r.status() == StatusCode::BAD_REQUEST => {
                            // A TLS server answering plain HTTP: the HTTPS failure is the story.
                            return Err(RegistryError::Connect {
                                registry: registry.into(),
                                detail: with_tls_hint(chain(&tls_err)),
                            });
                        }
                        Ok(_) => http,
                        Err(e) => {
                            return Err(RegistryError::Connect {
                                registry: registry.into(),
                                detail: chain(&e),
                            })
                        }
                    }
                }
            }
        };
        tracing::debug!(registry, %base, "registry endpoint");
        self.state.lock().expect("lock").entry(registry.to_string()).or_default().base =
            Some(base.clone());
        Ok(base)
    }

    fn cached_auth(&self, registry: &str, scope: &str) -> Option<String> {
        let st = self.state.lock().expect("lock");
        let s = st.get(registry)?;
        s.tokens.get(scope).cloned().or_else(|| s.basic.clone())
    }

    fn credentials(&self, registry: &str) -> Result<Found, RegistryError> {
        if let Some(f) =
            self.state.lock().expect("lock").get(registry).and_then(|s| s.credentials.clone())
        {
            return Ok(f);
        }
        let dir = auth::config_dir(self.opts.docker_config.as_deref());
        let found = auth::lookup(&dir, registry)?;
        self.state.lock().expect("lock").entry(registry.to_string()).or_default().credentials =
            Some(found.clone());
        Ok(found)
    }

    /// Answers a 401 challenge: caches a Basic header or fetches a bearer token for `scope`.
    async fn authenticate(
        &self,
        registry: &str,
        scope: &str,
        challenge: Option<&str>,
    ) -> Result<(), RegistryError> {
        let found = self.credentials(registry)?;
        let challenge = challenge.and_then(Challenge::parse);
        let no_creds = || RegistryError::NoCredentials {
            registry: registry.into(),
            looked: found.source.clone(),
        };
        match challenge {
            Some(c) if c.scheme == "bearer" => {
                let realm = c.params.get("realm").cloned().unwrap_or_default();
                let token_err = |detail: String| RegistryError::Token {
                    registry: registry.into(),
                    realm: realm.clone(),
                    detail,
                };
                let mut url = reqwest::Url::parse(&realm)
                    .map_err(|e| token_err(format!("invalid realm URL: {e}")))?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = c.params.get("service") {
                        q.append_pair("service", service);
                    }
                    q.append_pair("scope", scope);
                }
                let identity = found.credential.as_ref().and_then(|c| c.identity_token.clone());
                let req = match identity {
                    // OAuth2: trade the refresh token for an access token; the realm URL
                    // without our query, the parameters in a form body.
                    Some(refresh) => {
                        let mut form = reqwest::Url::parse("http://form.invalid/").expect("valid");
                        form.query_pairs_mut()
                            .append_pair("grant_type", "refresh_token")
                            .append_pair("refresh_token", &refresh)
                            .append_pair(
                                "service",
                                c.params.get("service").map_or("", String::as_str),
                            )
                            .append_pair("scope", scope)
                            .append_pair("client_id", "baleen");
                        let body = form.query().unwrap_or_default().to_string();
                        let mut post_url = url.clone();
                        post_url.set_query(None);
                        self.client_for(registry)
                            .post(post_url)
                            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(body)
                    }
                    None => {
                        let mut req = self.client_for(registry).get(url);
                        if let Some(cred) = &found.credential {
                            req = req.header(AUTHORIZATION, cred.basic_header());
                        }
                        req
                    }
                };
                let what = format!("fetching a token from {realm}");
                let stall = self.opts.stall_timeout;
                let resp = tokio::time::timeout(stall, req.send())
                    .await
                    .map_err(|_| RegistryError::Stalled {
                        what: what.clone(),
                        registry: registry.into(),
                        stall: Stall::Silent(stall),
                        received: 0,
                        attempts: 1,
                    })?
                    .map_err(|e| token_err(chain(&e)))?;
                match resp.status() {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                        if found.credential.is_some() =>
                    {
                        return Err(RegistryError::BadCredentials {
                            registry: registry.into(),
                            source_name: found.source,
                        });
                    }
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(no_creds()),
                    s if !s.is_success() => return Err(token_err(format!("answered {s}"))),
                    _ => {}
                }
                #[derive(serde::Deserialize)]
                struct TokenAnswer {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body = read_body(resp, &self.opts, MAX_TOKEN_BYTES, &what, registry).await?;
                let t: TokenAnswer = serde_json::from_slice(&body)
                    .map_err(|e| token_err(format!("unreadable answer: {e}")))?;
                let token = t
                    .token
                    .or(t.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| token_err("answer holds no token".into()))?;
                self.state
                    .lock()
                    .expect("lock")
                    .entry(registry.into())
                    .or_default()
                    .tokens
                    .insert(scope.into(), format!("Bearer {token}"));
                Ok(())
            }
            _ => {
                // Basic (or an unparseable challenge, which registries only send for Basic).
                let cred = found.credential.as_ref().ok_or_else(no_creds)?;
                if cred.identity_token.is_some() && cred.password.is_empty() {
                    return Err(RegistryError::Credentials {
                        registry: registry.into(),
                        detail: format!(
                            "{} holds an identity token, but the registry asks for a password (Basic auth)",
                            found.source
                        ),
                    });
                }
                self.state.lock().expect("lock").entry(registry.into()).or_default().basic =
                    Some(cred.basic_header());
                Ok(())
            }
        }
    }

    async fn backoff(attempt: u32) {
        tokio::time::sleep(Duration::from_millis(250u64 << attempt.min(6))).await;
    }

    /// Sends a request built by `build(client, base_url)` to `r`'s registry with auth for
    /// `repository:<repo>:<actions>`, answering one auth challenge and retrying dropped
    /// connections and 5xx/429 answers a bounded number of times.
    pub(crate) async fn send(
        &self,
        registry: &str,
        repository: &str,
        actions: &str,
        what: &str,
        build: &(dyn Fn(&reqwest::Client, &str) -> RequestBuilder + Sync),
    ) -> Result<Response, RegistryError> {
        let base = self.base(registry).await?;
        let client = self.client_for(registry);
        let scope = format!("repository:{repository}:{actions}");
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            let mut req = build(client, &base);
            if let Some(h) = self.cached_auth(registry, &scope) {
                req = req.header(AUTHORIZATION, h);
            }
            // A read (GET/HEAD) must be answered within the stall timeout; an upload keeps the
            // client's longer read timeout, SLOW_ANSWER.
            let is_read = req
                .try_clone()
                .and_then(|r| r.build().ok())
                .is_some_and(|r| matches!(*r.method(), Method::GET | Method::HEAD));
            let (n, of) = (attempt + 2, self.opts.retries + 1);
            let sent = if is_read {
                tokio::time::timeout(self.opts.stall_timeout, req.send()).await.ok()
            } else {
                Some(req.send().await)
            };
            let Some(sent) = sent else {
                let stall = Stall::Silent(self.opts.stall_timeout);
                if attempt < self.opts.retries {
                    tracing::warn!("{what}: {registry} {stall}, retrying ({n}/{of})");
                    Self::backoff(attempt).await;
                    attempt += 1;
                    continue;
                }
                return Err(RegistryError::Stalled {
                    what: what.into(),
                    registry: registry.into(),
                    stall,
                    received: 0,
                    attempts: attempt + 1,
                });
            };
            match sent {
                Err(e)
                    if attempt < self.opts.retries
                        && !e.is_builder()
                        && !chain(&e).contains("certificate") =>
                {
                    if e.is_timeout() {
                        let secs = SLOW_ANSWER.as_secs();
                        tracing::warn!(
                            "{what}: no answer from {registry} for {secs} s, retrying ({n}/{of})"
                        );
                    } else {
                        tracing::debug!("{what}: {}; retrying", chain(&e));
                    }
                    Self::backoff(attempt).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(RegistryError::Connect {
                        registry: registry.into(),
                        detail: with_tls_hint(format!("{what}: {}", chain(&e))),
                    })
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    if authenticated {
                        let found = self.credentials(registry)?;
                        return Err(match found.credential {
                            Some(_) => RegistryError::BadCredentials {
                                registry: registry.into(),
                                source_name: found.source,
                            },
                            None => RegistryError::NoCredentials {
                                registry: registry.into(),
                                looked: found.source,
                            },
                        });
                    }
                    let challenge = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    self.authenticate(registry, &scope, challenge.as_deref()).await?;
                    authenticated = true;
                }
                Ok(resp)
                    if (resp.status().is_server_error()
                        || resp.status() == StatusCode::TOO_MANY_REQUESTS)
                        && attempt < self.opts.retries =>
                {
                    tracing::debug!("{what}: {}; retrying", resp.status());
                    Self::backoff(attempt).await;
                    attempt += 1;
                }
                Ok(resp) => return Ok(resp),
            }
        }
    }

    /// Turns an unexpected answer into an error carrying the registry's own message.
    pub(crate) async fn unexpected(registry: &str, what: &str, resp: Response) -> RegistryError {
        let status = resp.status().as_u16();
        let body = stall::error_body(resp).await;
        let body: String = body.trim().chars().take(400).collect();
        RegistryError::Status { what: what.into(), registry: registry.into(), status, body }
    }

    /// Fetches a manifest or index by tag or digest: bytes (capped) and Content-Type.
    pub async fn get_manifest(
        &self,
        r: &Reference,
        key: &str,
    ) -> Result<(Vec<u8>, Option<String>), RegistryError> {
        let what = format!("fetching manifest {}/{}:{key}", r.registry, r.repository);
        let path = format!("/v2/{}/manifests/{key}", r.repository);
        let resp = self
            .send(&r.registry, &r.repository, "pull", &what, &|c, base| {
                c.get(format!("{base}{path}")).header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            let shown = if key.contains(':') {
                format!("{}@{key}", r.locator())
            } else {
                format!("{}:{key}", r.locator())
            };
            return Err(RegistryError::ManifestUnknown { reference: shown });
        }
        if !resp.status().is_success() {
            return Err(Self::unexpected(&r.registry, &what, resp).await);
        }
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
        let limit = self.opts.max_manifest_bytes;
        let body = read_body(resp, &self.opts, limit, &what, &r.registry).await?;
        Ok((body, ctype))
    }

    /// Streams a blob into the store, verifying size while it arrives and the digest at the end.
    /// A dropped connection restarts the blob (bounded); a wrong size or digest does not.
    pub async fn fetch_blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        store: &Store,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<Blob, RegistryError> {
        let digest = Digest::from_oci(desc.digest()).map_err(|e| RegistryError::Protocol {
            what: format!("fetching a blob of {r}"),
            detail: e.to_string(),
        })?;
        let expected = desc.size();
        let what = format!("fetching blob {digest} of {}", r.locator());
        let path = format!("/v2/{}/blobs/{digest}", r.repository);
        // Bounds the connections of many concurrent pulls (all images of a build).
        let _slot = self.blob_slots.acquire().await.expect("the semaphore is never closed");
        let store_err =
            |source| RegistryError::Store { what: what.clone(), source: Box::new(source) };
        // Kept across attempts: after a dropped connection the blob resumes with a Range
        // request where it broke off (hashing continues; the digest is still checked whole).
        let mut partial: Option<Ingest> = None;
        let mut attempt = 0;
        loop {
            let offset = partial.as_ref().map_or(0, Ingest::len);
            let range = (offset > 0).then(|| format!("bytes={offset}-"));
            let mut resp = self
                .send(&r.registry, &r.repository, "pull", &what, &|c, base| {
                    let req = c.get(format!("{base}{path}"));
                    match &range {
                        Some(v) => req.header(RANGE, v.as_str()),
                        None => req,
                    }
                })
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(RegistryError::BlobUnknown { repository: r.locator(), digest });
            }
            let resumed = offset > 0
                && resp.status() == StatusCode::PARTIAL_CONTENT
                && resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with(&format!("bytes {offset}-")));
            if !resumed {
                if resp.status() != StatusCode::OK {
                    return Err(Self::unexpected(&r.registry, &what, resp).await);
                }
                // The whole blob again (the registry ignored the range): start over.
                partial = None;
            }
            let remaining = if resumed { expected - offset } else { expected };
            if let Some(announced) = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            {
                if announced != remaining {
                    return Err(RegistryError::WrongLength {
                        what,
                        announced,
                        expected: remaining,
                    });
                }
            }
            let mut ingest = match partial.take() {
                Some(i) => i,
                None => store.ingest(Some(&digest), Some(expected)).map_err(store_err)?,
            };
            if let Some(pb) = progress {
                pb.set_position(ingest.len());
            }
            let mut rate = RateWatch::new(&self.opts);
            let interrupted = loop {
                let chunk = tokio::time::timeout(self.opts.stall_timeout, resp.chunk()).await;
                match chunk {
                    Ok(Ok(Some(c))) => {
                        // Writing to the page cache is quick; a blocking write here costs less
                        // than a hop to a blocking thread per chunk.
                        ingest.write(&c).map_err(store_err)?;
                        if let Some(pb) = progress {
                            pb.inc(c.len() as u64);
                        }
                        if let Some(slow) = rate.arrived(c.len() as u64) {
                            break Some(Cut::Stalled(slow));
                        }
                    }
                    Ok(Ok(None)) => break None,
                    Ok(Err(e)) => break Some(Cut::Dropped(chain(&e))),
                    Err(_) => break Some(Cut::Stalled(Stall::Silent(self.opts.stall_timeout))),
                }
            };
            let (n, of) = (attempt + 2, self.opts.retries + 1);
            match interrupted {
                None => {
                    return ingest.commit(Some(&digest), Some(expected)).map_err(store_err);
                }
                Some(Cut::Dropped(e)) if attempt < self.opts.retries => {
                    tracing::info!("{what}: {e} after {} bytes; resuming", ingest.len());
                }
                Some(Cut::Stalled(stall)) if attempt < self.opts.retries => {
                    tracing::warn!("{what}: {} {stall}, retrying ({n}/{of})", r.registry);
                }
                Some(Cut::Dropped(detail)) => {
                    return Err(RegistryError::Interrupted {
                        what,
                        registry: r.registry.clone(),
                        received: ingest.len(),
                        detail,
                    })
                }
                Some(Cut::Stalled(stall)) => {
                    return Err(RegistryError::Stalled {
                        what,
                        registry: r.registry.clone(),
                        stall,
                        received: ingest.len(),
                        attempts: attempt + 1,
                    })
                }
            }
            partial = Some(ingest);
            Self::backoff(attempt).await;
            attempt += 1;
        }
    }
}

/// Certificate failures get a hint at the two ways out.
fn with_tls_hint(detail: String) -> String {
    if detail.contains("certificate") {
        format!("{detail} (trust the registry's CA with --cert-file, or list the host with --insecure-registry)")
    } else {
        detail
    }
}
