//! Rate limits for requests that fail to authenticate: a source (the
//! client's IP address) that collects [`MAX_FAILURES`] (or the server's
//! setting) 401 answers within a
//! minute gets 429 for the rest of that minute, whatever it asks — token
//! guessing and webhook spraying stop costing the server anything.
//! Requests without a known source (in-process tests) are not counted.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications a source may have per window.
pub const MAX_FAILURES: u32 = 120;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Limiter {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    max: u32,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(MAX_FAILURES)
    }
}

impl Limiter {
    /// At most `max` failed authentications per source per minute (0: no
    /// limit).
    pub fn new(max: u32) -> Limiter {
        Limiter {
            failures: Mutex::default(),
            max: if max == 0 { u32::MAX } else { max },
        }
    }

    /// Seconds until `ip` may try again (`None`: it may now).
    fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let map = self.failures.lock().ok()?;
        let (start, n) = map.get(&ip)?;
        let left = WINDOW.checked_sub(start.elapsed())?;
        (*n >= self.max).then(|| left.as_secs().max(1))
    }

    fn failed(&self, ip: IpAddr) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        // Forget finished windows now and then, so the map stays small.
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let e = map.entry(ip).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= WINDOW {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
    }
}

pub async fn guard(State(state): State<super::AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Health checks and the API's description stay open to everyone.
    let open = matches!(req.uri().path(), "/healthz" | "/api/openapi.json");
    let Some(ip) = ip.filter(|_| !open) else {
        return next.run(req).await;
    };
    if let Some(secs) = state.limiter.blocked(ip) {
        let mut res = super::ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed authentications from {ip}; try again in {secs} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let res = next.run(req).await;
    if res.status() == StatusCode::UNAUTHORIZED {
        state.limiter.failed(ip);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_blocked_after_too_many_failures_and_others_are_not() {
        let l = Limiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            l.failed(a);
        }
        assert_eq!(l.blocked(a), None);
        l.failed(a);
        assert!(l.blocked(a).is_some_and(|s| s <= 60));
        assert_eq!(l.blocked(b), None);
    }
}
