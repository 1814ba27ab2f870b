//! Registries that stop sending or trickle: a pull must fail after bounded retries with an error
//! that says so, not hang. A TCP proxy (`baleen_testkit::registry::Proxy`) sits in front of the
//! real docker-registry and goes silent (or drips a byte at a time) partway into each
//! connection; the deadlines are lowered so the test takes seconds. A watchdog turns a hang
//! into a failure.

use baleen_oci::registry::Stall;
use baleen_oci::{
    pull_blocking, push_blocking, Platform, PullError, PullOptions, Reference, RegistryError,
    RegistryOptions, Store,
};
use baleen_testkit::image::{BuiltImage, ImageBuilder};
use baleen_testkit::layers::file;
use baleen_testkit::registry::{Proxy, Registry};
use std::time::Duration;

/// Longer than any bounded failure below takes, far shorter than a hang.
const WATCHDOG: Duration = Duration::from_secs(120);

fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn big_image() -> BuiltImage {
    ImageBuilder::new().layer(&[file("big", &noise(1 << 20))]).build()
}

fn publish(img: &BuiltImage, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    img.write_layout(dir.path(), name);
    let r = Reference::parse(name).unwrap();
    push_blocking(&Store::open(dir.path()).unwrap(), &r, &r, &Default::default()).unwrap();
}

fn impatient() -> PullOptions {
    PullOptions {
        registry: RegistryOptions {
            retries: 1,
            stall_timeout: Duration::from_secs(2),
            min_rate: 1024,
            rate_window: Duration::from_secs(4),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Pulls `r` on a thread; panics when it runs past the watchdog.
fn pull_with_watchdog(r: Reference) -> Result<baleen_oci::Image, PullError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let _ = tx.send(pull_blocking(
            &store,
            &r,
            &Platform::new("linux", "amd64", None),
            &impatient(),
        ));
    });
    rx.recv_timeout(WATCHDOG).expect("the pull hung instead of failing")
}

fn stalled(e: &PullError) -> Option<(&Stall, u32)> {
    match e {
        PullError::Registry { source, .. } => match &**source {
            RegistryError::Stalled { stall, attempts, .. } => Some((stall, *attempts)),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn a_registry_that_goes_silent_mid_blob_fails_the_pull_after_bounded_retries() {
    let Some(reg) = Registry::plain() else { return };
    let img = big_image();
    publish(&img, &format!("{}/test/silent:v1", reg.host));
    let proxy = Proxy::start(reg.port, 0);
    // Manifests and config pass; the 1 MiB layer stops after 64 KiB on every connection.
    proxy.stall_after(64 << 10);
    let r = Reference::parse(&format!("{}/test/silent:v1", proxy.host)).unwrap();
    let err = pull_with_watchdog(r).expect_err("a silent registry must fail the pull");
    let msg = baleen_testkit::boot::chain(&err);
    assert!(msg.contains(&img.layers[0].digest), "names the blob: {msg}");
    assert!(msg.contains("sent no data for 2 s"), "says what happened: {msg}");
    assert_eq!(stalled(&err), Some((&Stall::Silent(Duration::from_secs(2)), 2)), "{msg}");
}

#[test]
fn a_registry_that_trickles_fails_the_pull_by_the_minimum_rate() {
    let Some(reg) = Registry::plain() else { return };
    let img = big_image();
    publish(&img, &format!("{}/test/trickle:v1", reg.host));
    let proxy = Proxy::start(reg.port, 0);
    // One byte every 200 ms: never silent for 2 s, far below 1 KiB/s.
    proxy.trickle_after(64 << 10, Duration::from_millis(200));
    let r = Reference::parse(&format!("{}/test/trickle:v1", proxy.host)).unwrap();
    let err = pull_with_watchdog(r).expect_err("a trickling registry must fail the pull");
    let msg = baleen_testkit::boot::chain(&err);
    assert!(msg.contains("below the minimum of 1024 bytes/s"), "says what happened: {msg}");
    assert!(matches!(stalled(&err), Some((Stall::Slow { .. }, 2))), "{msg}");
}

#[test]
fn a_registry_that_never_answers_a_manifest_request_fails_after_bounded_retries() {
    let Some(reg) = Registry::plain() else { return };
    let img = big_image();
    publish(&img, &format!("{}/test/mute:v1", reg.host));
    let proxy = Proxy::start(reg.port, 0);
    proxy.stall_requests("/manifests/");
    let r = Reference::parse(&format!("{}/test/mute:v1", proxy.host)).unwrap();
    let err = pull_with_watchdog(r).expect_err("an unanswered request must fail the pull");
    let msg = baleen_testkit::boot::chain(&err);
    assert!(msg.contains("fetching manifest") && msg.contains("sent no data for 2 s"), "{msg}");
    assert_eq!(stalled(&err), Some((&Stall::Silent(Duration::from_secs(2)), 2)), "{msg}");
}

#[test]
fn a_registry_that_answers_nothing_fails_at_the_first_contact() {
    let Some(reg) = Registry::plain() else { return };
    let proxy = Proxy::start(reg.port, 0);
    proxy.stall_requests("GET ");
    let r = Reference::parse(&format!("{}/test/none:v1", proxy.host)).unwrap();
    let err = pull_with_watchdog(r).expect_err("a silent registry must fail the pull");
    let msg = baleen_testkit::boot::chain(&err);
    assert!(msg.contains("probing registry") && msg.contains("sent no data for 2 s"), "{msg}");
}

/// What the [`trickling_server`] does with a request, by its path.
#[derive(Clone, Copy)]
enum Route {
    /// `401` with a Bearer challenge whose realm is this server's `/token`.
    Challenge,
    /// `200` announcing a body of this many bytes, then sent one byte every 200 ms: never
    /// silent for the 2 s stall timeout, far below 1 KiB/s.
    Trickle(usize),
}

/// A registry of its own (no docker-registry needed) that answers by `route(path)`. TLS hellos
/// are hung up on, so the client falls back to plain HTTP as it does for any loopback host.
fn trickling_server(route: fn(&str) -> Route) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let realm = format!("http://{host}/token");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let realm = realm.clone();
            std::thread::spawn(move || loop {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut byte) {
                        Ok(1) if head.is_empty() && byte[0] == 0x16 => return,
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                let sent = match route(&path) {
                    Route::Challenge => conn.write_all(
                        format!(
                            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\
                             WWW-Authenticate: Bearer realm=\"{realm}\",service=\"trickle\"\r\n\r\n"
                        )
                        .as_bytes(),
                    ),
                    Route::Trickle(len) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\
                             Content-Type: application/json\r\n\r\n"
                        );
                        conn.write_all(head.as_bytes()).and_then(|()| {
                            (0..len).try_for_each(|_| {
                                std::thread::sleep(Duration::from_millis(200));
                                conn.write_all(b" ")
                            })
                        })
                    }
                };
                if sent.is_err() {
                    return;
                }
            });
        }
    });
    host
}

/// The registry error of a pull of `host/test/trickle:v1`, under the watchdog.
fn pull_error(host: &str) -> RegistryError {
    let r = Reference::parse(&format!("{host}/test/trickle:v1")).unwrap();
    match pull_with_watchdog(r).expect_err("a trickling registry must fail the pull") {
        PullError::Registry { source, .. } => *source,
        other => panic!("not a registry error: {other}"),
    }
}

#[test]
fn a_registry_that_trickles_a_manifest_fails_by_the_minimum_rate() {
    // 150 bytes at 5 bytes/s: 30 s before, when only blobs were held to the minimum rate (a
    // 4 MiB manifest at one byte per 29 s would take 4 years); now cut after the 4 s window.
    let host = trickling_server(|path| match path {
        "/v2/" => Route::Trickle(0),
        _ => Route::Trickle(150),
    });
    let err = pull_error(&host);
    let msg = baleen_testkit::boot::chain(&err);
    assert!(msg.contains("fetching manifest"), "names what was read: {msg}");
    assert!(msg.contains("below the minimum of 1024 bytes/s"), "says what happened: {msg}");
    assert!(matches!(err, RegistryError::Stalled { stall: Stall::Slow { .. }, .. }), "{msg}");
}

#[test]
fn a_token_server_that_trickles_fails_by_the_minimum_rate() {
    let host = trickling_server(|path| {
        if path.starts_with("/token") {
            Route::Trickle(150)
        } else {
            Route::Challenge
        }
    });
    let err = pull_error(&host);
    let msg = baleen_testkit::boot::chain(&err);
    assert!(msg.contains("fetching a token from http://"), "names what was read: {msg}");
    assert!(msg.contains("below the minimum of 1024 bytes/s"), "says what happened: {msg}");
    assert!(matches!(err, RegistryError::Stalled { stall: Stall::Slow { .. }, .. }), "{msg}");
}
