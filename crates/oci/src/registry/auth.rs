//! Credentials and auth challenges: `~/.docker/config.json` (`auths`, `credHelpers`,
//! `credsStore` through `docker-credential-<name> get`), and the `WWW-Authenticate` header.
//!
//! An identity token (`identitytoken` in `auths`, or a helper answering user `<token>`) is an
//! OAuth2 refresh token: it is exchanged at the token server (POST, `grant_type=refresh_token`)
//! and never sent as a password.

use super::RegistryError;
use base64::Engine as _;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A username and password (or token) for basic auth and token requests.
#[derive(Clone)]
pub struct Credential {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token, used instead of the password with bearer-token registries.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, <redacted>)", self.username)
    }
}

impl Credential {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// The outcome of a credential lookup, with where we looked (for error messages).
#[derive(Debug, Clone)]
pub struct Found {
    pub credential: Option<Credential>,
    /// E.g. `/root/.docker/config.json (auths["127.0.0.1:5000"])`.
    pub source: String,
}

/// The directory holding `config.json`: the option, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(option: Option<&Path>) -> PathBuf {
    if let Some(d) = option {
        return d.to_path_buf();
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    home.join(".docker")
}

#[derive(serde::Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The server name Docker keys Docker Hub credentials under.
const HUB_KEY: &str = "https://index.docker.io/v1/";

fn key_matches(key: &str, registry: &str) -> bool {
    if registry == crate::reference::DOCKER_HUB {
        return matches!(
            key.trim_end_matches('/'),
            "https://index.docker.io/v1"
                | "index.docker.io"
                | "docker.io"
                | "registry-1.docker.io"
                | "https://index.docker.io"
                | "https://registry-1.docker.io"
        );
    }
    let host = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    host.split('/').next() == Some(registry)
}

/// Looks up credentials for `registry` in `<dir>/config.json`. A missing file means no
/// credentials; a malformed one is an error.
pub fn lookup(dir: &Path, registry: &str) -> Result<Found, RegistryError> {
    let path = dir.join("config.json");
    let shown = path.display().to_string();
    let cfg: ConfigFile = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| RegistryError::Credentials {
            registry: registry.to_string(),
            detail: format!("parsing {shown}: {e}"),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Found { credential: None, source: format!("{shown} (file does not exist)") })
        }
        Err(e) => {
            return Err(RegistryError::Credentials {
                registry: registry.to_string(),
                detail: format!("reading {shown}: {e}"),
            })
        }
    };
    let server = if registry == crate::reference::DOCKER_HUB { HUB_KEY } else { registry };
    if let Some(helper) = cfg.cred_helpers.get(registry) {
        let credential = run_helper(helper, server, registry)?;
        return Ok(Found {
            credential,
            source: format!("docker-credential-{helper} (credHelpers in {shown})"),
        });
    }
    let entry = cfg.auths.iter().find(|(k, _)| key_matches(k, registry));
    if let Some((key, e)) = entry {
        let source = format!("{shown} (auths[{key:?}])");
        if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
            let Some((username, password)) = decoded else {
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    detail: format!("{source}: `auth` is not base64 of user:password"),
                });
            };
            return Ok(Found {
                credential: Some(Credential {
                    username,
                    password,
                    identity_token: e.identitytoken.clone(),
                }),
                source,
            });
        }
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            return Ok(Found {
                credential: Some(Credential {
                    username: u.clone(),
                    password: p.clone(),
                    identity_token: e.identitytoken.clone(),
                }),
                source,
            });
        }
        if let Some(t) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            let credential = Credential {
                username: e.username.clone().unwrap_or_default(),
                password: String::new(),
                identity_token: Some(t.clone()),
            };
            return Ok(Found { credential: Some(credential), source });
        }
    }
    if let Some(helper) = &cfg.creds_store {
        let credential = run_helper(helper, server, registry)?;
        return Ok(Found {
            credential,
            source: format!("docker-credential-{helper} (credsStore in {shown})"),
        });
    }
    Ok(Found { credential: None, source: format!("{shown} (no entry for {registry})") })
}

/// Runs `docker-credential-<helper> get` with the server name on stdin. "Not found" answers
/// mean no credentials; a missing program or another failure is an error naming it.
fn run_helper(
    helper: &str,
    server: &str,
    registry: &str,
) -> Result<Option<Credential>, RegistryError> {
    let prog = format!("docker-credential-{helper}");
    let err =
        |detail: String| RegistryError::Credentials { registry: registry.to_string(), detail };
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("running {prog} get: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(server.as_bytes()).map_err(|e| err(format!("writing to {prog}: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| err(format!("running {prog} get: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found")
            || String::from_utf8_lossy(&out.stderr).contains("credentials not found")
        {
            return Ok(None);
        }
        return Err(err(format!("{prog} get failed ({}): {}", out.status, stdout.trim())));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let a: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
        err(format!("{prog} get printed something other than credentials JSON: {e}"))
    })?;
    if a.username == "<token>" {
        let c = Credential {
            username: String::new(),
            password: String::new(),
            identity_token: Some(a.secret),
        };
        return Ok(Some(c));
    }
    Ok(Some(Credential { username: a.username, password: a.secret, identity_token: None }))
}

/// A parsed `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"` or `Basic …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: HashMap<String, String>,
}

impl Challenge {
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = HashMap::new();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let Some((key, after)) = rest.split_once('=') else { break };
            let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
            let after = after.trim_start();
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                // Quoted values may contain commas (scopes do); backslash escapes one character.
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        _ => value.push(c),
                    }
                }
                (value, &quoted[end..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            };
            params.insert(key, value);
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#).unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let b = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
    }

    #[test]
    fn reads_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("me:secret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example:5000":{{"username":"u","password":"p"}}}}}}"#),
        )
        .unwrap();
        let hub = lookup(dir.path(), "docker.io").unwrap();
        let c = hub.credential.unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "secret"));
        let other = lookup(dir.path(), "reg.example:5000").unwrap().credential.unwrap();
        assert_eq!(other.username, "u");
        let none = lookup(dir.path(), "elsewhere.example").unwrap();
        assert!(none.credential.is_none());
        assert!(none.source.contains("config.json"), "{}", none.source);
    }

    #[test]
    fn missing_helper_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers":{"r.example":"nonexistent-xyz"}}"#,
        )
        .unwrap();
        let e = lookup(dir.path(), "r.example").unwrap_err().to_string();
        assert!(e.contains("docker-credential-nonexistent-xyz"), "{e}");
    }
}
