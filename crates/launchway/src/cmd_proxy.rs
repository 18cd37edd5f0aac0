//! `launchway proxy`: the built-in reverse proxy on its own, in front of
//! fixed backends (for trying it out and for `bench/proxy.sh`; the
//! environments' proxies are managed by the runtime).

use launchway_proxy::{Backend, Proxy};

#[derive(clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: String,
    /// A backend as HOST:PORT or HOST:PORT=WEIGHT (repeatable).
    #[arg(long = "backend", required = true)]
    backends: Vec<String>,
}

pub fn main(args: &ProxyArgs) -> u8 {
    let mut backends = Vec::new();
    for b in &args.backends {
        let (addr, weight) = match b.split_once('=') {
            Some((a, w)) => (a, w.parse::<u32>().ok()),
            None => (b.as_str(), Some(1)),
        };
        let (Ok(addr), Some(weight)) = (addr.parse(), weight) else {
            eprintln!("error: --backend {b}: expected HOST:PORT or HOST:PORT=WEIGHT");
            return 2;
        };
        backends.push(Backend::new(addr, weight, "fixed"));
    }
    crate::cmd_serve::block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        eprintln!(
            "launchway proxy listening on http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let proxy = Proxy::new();
        proxy.set_backends(backends);
        tokio::select! {
            () = proxy.serve(listener) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}
