//! A private `nats-server` with JetStream for one test.
//!
//! Each test gets its own server on a free port with its own store folder,
//! so tests run in parallel and never touch a nats-server the machine may
//! already run on 4222. The server is killed when the handle is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running private nats-server.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a nats-server with JetStream on a free loopback port.
    pub fn start() -> anyhow::Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("pw-nats-")
            .tempdir()
            .context("creating the nats-server folder")?;
        let store = dir.path().join("store");
        let mut server = NatsServer {
            child: None,
            port: 0,
            store,
            dir,
        };
        server.launch()?;
        Ok(server)
    }

    /// Spawns the process on `self.port` (a free one while it is 0) and
    /// waits until it accepts connections.
    fn launch(&mut self) -> anyhow::Result<()> {
        let ports_dir = self.dir.path().join("ports");
        std::fs::create_dir_all(&ports_dir).context("creating the ports folder")?;
        // A restart must not read the ports file of the previous process.
        for entry in std::fs::read_dir(&ports_dir)?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        let port_arg = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.path().join("nats.log"))
            .context("opening nats.log")?;
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(&self.store)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting nats-server (is it installed? the test script installs it)")?;
        self.child = Some(child);
        let port = self.wait_for_port(&ports_dir, Duration::from_secs(10))?;
        anyhow::ensure!(
            self.port == 0 || port == self.port,
            "nats-server came back on port {port}, not {}",
            self.port
        );
        self.port = port;
        Ok(())
    }

    fn wait_for_port(&mut self, ports_dir: &Path, timeout: Duration) -> anyhow::Result<u16> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(port) = read_ports_file(ports_dir)
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(port);
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("nats-server exited with {status}; log: {}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server did not listen within {timeout:?}; log: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connects a client.
    pub async fn client(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(self.url())
            .await
            .with_context(|| format!("connecting to {}", self.url()))
    }

    /// Stops the server (SIGKILL) keeping its store, so [`restart`] brings
    /// the same JetStream state back on the same port.
    ///
    /// [`restart`]: NatsServer::restart
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.launch()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nats_server_binary() -> PathBuf {
    std::env::var_os("NATS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// Reads the client port from the `--ports_file_dir` JSON
/// (`{"nats": ["nats://127.0.0.1:PORT"], …}`).
fn read_ports_file(dir: &Path) -> Option<u16> {
    let entry = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "ports"))?;
    let text = std::fs::read_to_string(entry.path()).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = json.get("nats")?.as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}
