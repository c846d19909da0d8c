//! The SNMP test bed (`deploy/dev/snmpbed.sh`): a private net-snmp `snmpd`
//! on loopback serving a simulated printer's Printer-MIB and Host-Resources
//! data from a data file that a test rewrites.
//!
//! The bed serves one data file, so tests that change what the printer
//! reports each run their own snmpd ([`SnmpBed::private`]: own state folder,
//! own free UDP port, stopped on drop). [`SnmpBed::shared`] is the machine's
//! default bed (`/tmp/pw-snmp`, udp 11161) for tests that only read.
//!
//! ```no_run
//! # fn demo() -> anyhow::Result<()> {
//! use printwatch_testing::snmp::SnmpBed;
//!
//! let bed = SnmpBed::private()?;
//! bed.set(".1.3.6.1.2.1.43.11.1.1.9.1.1", "integer", "10")?; // toner at 10%
//! println!("source = \"{}\"", bed.url());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

/// A running SNMP test bed.
#[derive(Debug)]
pub struct SnmpBed {
    dir: PathBuf,
    port: u16,
    community: String,
    /// More UDP ports the same snmpd listens on ([`SnmpBed::private_fleet`]).
    extra_ports: Vec<u16>,
    /// Stops the bed and removes its folder on drop (private beds only).
    owned: Option<tempfile::TempDir>,
}

impl SnmpBed {
    /// The shared bed of this machine (`$PW_SNMP_DIR`, default
    /// `/tmp/pw-snmp`, udp `$PW_SNMP_PORT`, default 11161), started by
    /// `snmpbed.sh start` if it does not run (idempotent, serialised by the
    /// script's lock). Do not rewrite its data file from parallel tests.
    pub fn shared() -> Result<SnmpBed> {
        static START: Mutex<()> = Mutex::new(());
        let _guard = START.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::var_os("PW_SNMP_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/pw-snmp"));
        let port = std::env::var("PW_SNMP_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(11161);
        let community = std::env::var("PW_SNMP_COMMUNITY")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "public".to_owned());
        let bed = SnmpBed {
            dir,
            port,
            community,
            extra_ports: Vec::new(),
            owned: None,
        };
        bed.script("start")?;
        Ok(bed)
    }

    /// A bed of this test's own: a fresh state folder (with a fresh copy of
    /// the template data), a free UDP port on 127.0.0.1, community `public`.
    /// Stopped when dropped.
    pub fn private() -> Result<SnmpBed> {
        Self::private_fleet(1)
    }

    /// A private bed whose one snmpd listens on `devices` free UDP ports,
    /// each a simulated printer serving the same data ([`SnmpBed::urls`]):
    /// a fleet at the cost of one process. Stopped when dropped.
    pub fn private_fleet(devices: usize) -> Result<SnmpBed> {
        let mut last = None;
        for _ in 0..3 {
            let tmp = tempfile::Builder::new().prefix("pw-snmp-").tempdir()?;
            let mut ports = free_udp_ports(devices.max(1))?;
            let port = ports.remove(0);
            let bed = SnmpBed {
                dir: tmp.path().to_owned(),
                port,
                community: "public".to_owned(),
                extra_ports: ports,
                owned: Some(tmp),
            };
            match bed.script("start") {
                Ok(()) => return Ok(bed),
                // The port may have been taken meanwhile: try another.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("cannot start a private SNMP bed")))
    }

    /// `deploy/dev/snmpbed.sh` of this repository (or `$PW_SNMPBED_SCRIPT`).
    pub fn script_path() -> PathBuf {
        crate::process::dev_script("snmpbed.sh", "PW_SNMPBED_SCRIPT")
    }

    /// The template data file every bed starts from.
    pub fn template_path() -> PathBuf {
        Self::script_path()
            .parent()
            .map(|d| d.join("snmp").join("printer.data"))
            .unwrap_or_default()
    }

    /// The template's text.
    pub fn template() -> Result<String> {
        let path = Self::template_path();
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    fn script(&self, action: &str) -> Result<()> {
        let env = [
            ("PW_SNMP_DIR", self.dir.display().to_string()),
            ("PW_SNMP_PORT", self.port.to_string()),
            ("PW_SNMP_COMMUNITY", self.community.clone()),
            (
                "PW_SNMP_EXTRA_PORTS",
                self.extra_ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ];
        let what = format!("dir {}, port {}", self.dir.display(), self.port);
        crate::process::run_bed_script(&Self::script_path(), &[action], &env, &what).map(|_| ())
    }

    /// Stops this bed's snmpd (the device stops answering); [`SnmpBed::start`]
    /// brings it back on the same port with the same data.
    pub fn stop(&self) -> Result<()> {
        let _ = self.resume();
        self.script("stop")
    }

    /// Freezes this bed's snmpd (SIGSTOP): requests are neither answered
    /// nor refused, like a printer that went dark on the network, so every
    /// request runs into its timeout. [`SnmpBed::resume`] thaws it.
    pub fn pause(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Thaws a paused snmpd (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let path = self.dir.join("snmpd.pid");
        let pid = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let pid = pid.trim();
        let status = Command::new("kill")
            .arg(sig)
            .arg(pid)
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill {sig} {pid} failed ({status})");
        }
        Ok(())
    }

    /// Starts this bed's snmpd again (idempotent).
    pub fn start(&self) -> Result<()> {
        self.script("start")
    }

    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn community(&self) -> &str {
        &self.community
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `snmp://127.0.0.1:PORT` (community `public` is the default).
    pub fn url(&self) -> String {
        format!("snmp://{}:{}", self.host(), self.port)
    }

    /// Every port this bed's snmpd listens on, the main one first.
    pub fn ports(&self) -> Vec<u16> {
        std::iter::once(self.port)
            .chain(self.extra_ports.iter().copied())
            .collect()
    }

    /// `snmp://127.0.0.1:PORT` for each of [`SnmpBed::ports`].
    pub fn urls(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|p| format!("snmp://{}:{p}", self.host()))
            .collect()
    }

    /// The data file snmpd serves.
    pub fn data_path(&self) -> PathBuf {
        self.dir.join("printer.data")
    }

    /// The data file's current text.
    pub fn data(&self) -> Result<String> {
        let path = self.data_path();
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// Replaces the data file atomically (temporary file, then rename), so
    /// no request sees half a file.
    pub fn write_data(&self, text: &str) -> Result<()> {
        let path = self.data_path();
        let tmp = self.dir.join(format!(
            "printer.data.{}.new",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))
    }

    /// Resets the data to the template.
    pub fn reset(&self) -> Result<()> {
        self.write_data(&Self::template()?)
    }

    /// Sets one value (`OID TYPE VALUE` line; replaces the line of that OID,
    /// or appends one). OIDs are written with a leading dot.
    pub fn set(&self, oid: &str, kind: &str, value: &str) -> Result<()> {
        let text = with_value(&self.data()?, oid, kind, value);
        self.write_data(&text)
    }

    /// Removes every line whose OID starts with `prefix` (a whole row or
    /// table).
    pub fn remove(&self, prefix: &str) -> Result<()> {
        let text = without_prefix(&self.data()?, prefix);
        self.write_data(&text)
    }

    /// snmpd's log and the helper's complaints, for failure messages.
    pub fn logs(&self) -> String {
        ["snmpd.log", "snmpd.out", "printer-mib.log"]
            .iter()
            .map(|f| {
                let p = self.dir.join(f);
                format!(
                    "== {} ==\n{}",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for SnmpBed {
    fn drop(&mut self) {
        if self.owned.is_some() {
            let _ = self.stop();
        }
    }
}

fn dotted(oid: &str) -> String {
    format!(".{}", oid.trim().trim_start_matches('.'))
}

/// `text` with `oid`'s line replaced by (or, if absent, extended with)
/// `OID TYPE VALUE`.
pub fn with_value(text: &str, oid: &str, kind: &str, value: &str) -> String {
    let oid = dotted(oid);
    let line = format!("{oid} {kind} {value}");
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.split_whitespace().next() == Some(oid.as_str()) {
                found = true;
                line.clone()
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// `text` without the lines whose OID starts with `prefix` (whole arcs).
pub fn without_prefix(text: &str, prefix: &str) -> String {
    let prefix = dotted(prefix);
    let under = format!("{prefix}.");
    text.lines()
        .filter(|l| {
            let first = l.split_whitespace().next().unwrap_or("");
            first != prefix && !first.starts_with(&under)
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `n` distinct UDP ports on 127.0.0.1 that were free a moment ago (all
/// bound at once, so none repeats).
pub fn free_udp_ports(n: usize) -> Result<Vec<u16>> {
    let socks = (0..n)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").context("binding a UDP port"))
        .collect::<Result<Vec<_>>>()?;
    socks.iter().map(|s| Ok(s.local_addr()?.port())).collect()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> Result<u16> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").context("binding a UDP port")?;
    Ok(sock.local_addr()?.port())
}
