//! The proxy over real sockets: exact weights, zero failed requests while
//! replicas are swapped and drained under load, and retries past a dead
//! replica.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use launchway_proxy::{Backend, Proxy};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A replica answering its name (after `delay`); aborted to stop it.
async fn replica(name: &'static str, delay: Duration) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |_req: Request<hyper::body::Incoming>| async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            name,
                        ))))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

async fn proxy_on() -> (Arc<Proxy>, SocketAddr) {
    let proxy = Proxy::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy.clone().serve(listener));
    (proxy, addr)
}

/// One GET through a fresh connection: (status, body).
async fn get(addr: SocketAddr) -> Result<(u16, String), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::get("/predict")
        .header("host", "x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_traffic_is_split_exactly() {
    let (a, _ta) = replica("v1", Duration::ZERO).await;
    let (b, _tb) = replica("v2", Duration::ZERO).await;
    let (proxy, addr) = proxy_on().await;
    proxy.set_backends(vec![Backend::new(a, 9, "v1"), Backend::new(b, 1, "v2")]);
    let mut v2 = 0;
    for _ in 0..200 {
        let (status, body) = get(addr).await.unwrap();
        assert_eq!(status, 200);
        if body == "v2" {
            v2 += 1;
        }
    }
    assert_eq!(v2, 20);
    let m = proxy.metrics_text("prod");
    assert!(m.contains("revision=\"v2\"") && m.contains("} 20\n"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_releases_under_load_fails_no_request() {
    let (a, task_a) = replica("old", Duration::from_millis(20)).await;
    let (proxy, addr) = proxy_on().await;
    proxy.set_backends(vec![Backend::new(a, 1, "old")]);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let last = Arc::new(std::sync::Mutex::new(String::new()));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failed, last) = (stop.clone(), ok.clone(), failed.clone(), last.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match get(addr).await {
                    Ok((200, body)) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                        *last.lock().unwrap() = body;
                    }
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The new release is up (and would be health-checked) before the swap.
    let (b, _task_b) = replica("new", Duration::from_millis(5)).await;
    let old = proxy.set_backends(vec![Backend::new(b, 1, "new")]);
    assert!(
        Proxy::drain(&old, Duration::from_secs(5)).await,
        "old requests finish"
    );
    task_a.abort();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(
        ok.load(Ordering::SeqCst) > 100,
        "under load: {}",
        ok.load(Ordering::SeqCst)
    );
    assert_eq!(*last.lock().unwrap(), "new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_is_skipped_for_idempotent_requests() {
    let (a, task_a) = replica("alive", Duration::ZERO).await;
    let dead: SocketAddr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }; // closed at once: connections are refused
    let (proxy, addr) = proxy_on().await;
    proxy.set_backends(vec![Backend::new(dead, 1, "v1"), Backend::new(a, 1, "v1")]);
    for _ in 0..20 {
        assert_eq!(get(addr).await.unwrap(), (200, "alive".to_string()));
    }
    // Only dead replicas: a clear 502; none at all: 503.
    proxy.set_backends(vec![Backend::new(dead, 1, "v1")]);
    let (status, body) = get(addr).await.unwrap();
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("upstream failed"), "{body}");
    task_a.abort();
    proxy.set_backends(Vec::new());
    assert_eq!(get(addr).await.unwrap().0, 503);
}

/// One GET with headers: the body.
async fn get_with(addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().uri("/").header("host", "x");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = send
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Sticky sides: a user (by header or cookie) always lands on the same
/// side, about the canary's share of users on the canary; the testers'
/// header (configurable) overrides; mirroring copies stable requests to
/// the canary without changing the answers.
#[tokio::test]
async fn sticky_users_stay_on_their_side_and_mirrored_copies_are_discarded() {
    let (stable, _a) = replica("stable", Duration::ZERO).await;
    let (canary, _b) = replica("canary", Duration::ZERO).await;
    let (proxy, addr) = proxy_on().await;
    let c = Backend::new(canary, 50, "v2");
    proxy.set_route_with(
        vec![Backend::new(stable, 50, "v1"), c.clone()],
        Some("v2".into()),
        launchway_proxy::Policy {
            sticky_header: Some("x-user".into()),
            header: Some("x-side".into()),
            ..Default::default()
        },
    );
    let mut on_canary = 0;
    for user in 0..100 {
        let u = format!("user-{user}");
        let first = get_with(addr, &[("x-user", &u)]).await;
        for _ in 0..5 {
            assert_eq!(get_with(addr, &[("x-user", &u)]).await, first, "{u} moved");
        }
        on_canary += usize::from(first == "canary");
    }
    assert!(
        (30..=70).contains(&on_canary),
        "{on_canary} of 100 users on a 50% canary"
    );
    assert_eq!(get_with(addr, &[("x-side", "always")]).await, "canary");
    assert_eq!(get_with(addr, &[("x-side", "never")]).await, "stable");

    // Cookie stickiness, and mirroring: every stable answer also went to
    // the canary, whose answer nobody saw.
    let c = Backend::new(canary, 1, "v2");
    proxy.set_route_with(
        vec![Backend::new(stable, 99, "v1"), c.clone()],
        Some("v2".into()),
        launchway_proxy::Policy {
            sticky_cookie: Some("sid".into()),
            mirror: 100,
            ..Default::default()
        },
    );
    let mut stable_answers = 0;
    for i in 0..50 {
        let body = get_with(addr, &[("cookie", &format!("a=1; sid=s{i}"))]).await;
        stable_answers += usize::from(body == "stable");
    }
    assert!(stable_answers >= 45, "{stable_answers}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (requests, _) = c.counts();
    assert!(
        requests as usize >= stable_answers,
        "mirrored {requests} of {stable_answers} stable requests"
    );
}
