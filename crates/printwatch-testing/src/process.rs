//! Running printwatch's own binaries as real processes in tests, so a test
//! can SIGKILL and restart a service the way an orchestrator would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The path of a workspace binary (`printwatch-agent`, `printwatch`…),
/// built by the same `cargo test` / `cargo nextest` run as the tests.
pub fn workspace_bin(name: &str) -> anyhow::Result<PathBuf> {
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().context("locating the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target folder")?;
    let path = profile_dir.join(name);
    if !path.exists() {
        bail!(
            "{} is not built; run the tests with `cargo nextest run --workspace`",
            path.display()
        );
    }
    Ok(path)
}

/// `deploy/dev/<name>` of this repository, or the path in the environment
/// variable `override_var` when it is set (a bed script kept elsewhere).
pub fn dev_script(name: &str, override_var: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(override_var).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("deploy")
        .join("dev")
        .join(name)
}

/// Runs a test-bed script (`bash SCRIPT ARGS…` with `env` added) to
/// completion; a failure carries `what` (which bed), the
/// exit status and the script's output.
pub fn run_bed_script(
    script: &Path,
    args: &[&str],
    env: &[(&str, String)],
    what: &str,
) -> anyhow::Result<Output> {
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} {args:?}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} {args:?} ({what}) failed ({}):\n{}{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs a workspace binary to completion with `args`, returning its output.
pub fn run_bin(name: &str, args: &[&str]) -> anyhow::Result<Output> {
    Command::new(workspace_bin(name)?)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {name}"))
}

/// A service process, killed (SIGKILL) on drop. Its stderr goes to a log
/// file that a test can read.
pub struct Service {
    child: Option<Child>,
    name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Service {
    /// Starts `name` with `args`, logging to `log` (appended across restarts).
    pub fn start(name: &str, args: &[&str], log: &Path) -> anyhow::Result<Service> {
        Self::start_with_env(name, args, &[], log)
    }

    /// [`Service::start`] with extra environment variables.
    pub fn start_with_env(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> anyhow::Result<Service> {
        let mut s = Service {
            child: None,
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            log: log.to_owned(),
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(workspace_bin(&self.name)?)
            .args(&self.args)
            .env("RUST_LOG", "info,printwatch_agent=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("process is not running")?;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("sending SIGTERM")?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not exit within {timeout:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the process again with the same arguments.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    /// Whether the process has exited (and with what).
    pub fn try_wait(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => Ok(None),
        }
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?.port())
}

/// A GET of `path` on a loopback HTTP port: the status code and the body.
pub async fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .context("no HTTP answer within 10s")??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
