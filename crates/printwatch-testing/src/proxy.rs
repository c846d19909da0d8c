//! A TCP proxy a test can cut and restore, to make a shared server (the
//! mail bed's Postfix) unreachable for one test without stopping it for the
//! others running at the same time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:<port>` to a target address while up; while down,
/// refuses new connections and has cut the open ones.
pub struct TcpProxy {
    port: u16,
    target: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    accept: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts forwarding a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the proxy")?;
        let port = listener.local_addr()?.port();
        let (cut, _) = watch::channel(0);
        let mut proxy = TcpProxy {
            port,
            target,
            up: Arc::new(AtomicBool::new(true)),
            cut,
            accept: None,
        };
        proxy.accept = Some(proxy.serve(listener));
        Ok(proxy)
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let target = self.target;
        let up = self.up.clone();
        let cut = self.cut.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let mut cut = cut.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        })
    }

    /// Makes the target unreachable: open connections are cut and the port
    /// refuses new ones (connection refused) until [`TcpProxy::up`].
    pub fn down(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        self.cut.send_modify(|n| *n += 1);
    }

    /// Forwards again, on the same port.
    pub async fn up(&mut self) -> anyhow::Result<()> {
        if self.accept.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .with_context(|| format!("re-binding the proxy on port {}", self.port))?;
        self.up.store(true, Ordering::SeqCst);
        self.accept = Some(self.serve(listener));
        Ok(())
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.down();
    }
}
