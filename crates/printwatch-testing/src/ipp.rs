//! The IPP test bed (`deploy/dev/ippbed.sh`): CUPS's `ippeveprinter` on
//! loopback with a private D-Bus bus. A test changes what the printer
//! reports by printing a text with `STATE:` / `ATTR:` lines (the bed's
//! print command hands them back to ippeveprinter) and through its
//! `/supplies` and `/media` web forms.
//!
//! Every test runs its own printer ([`IppBed::private`]: own folder, own
//! free TCP port, stopped on drop).
//!
//! ```no_run
//! # fn demo() -> anyhow::Result<()> {
//! use printwatch_testing::ipp::IppBed;
//!
//! let bed = IppBed::private()?;
//! bed.add_reasons(&["media-jam", "cover-open"])?;
//! bed.set_supplies(25, 0)?; // waste tank 25 %, black toner 0 %
//! println!("source = \"{}\"", bed.url());
//! # Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A running ippeveprinter.
#[derive(Debug)]
pub struct IppBed {
    dir: PathBuf,
    port: u16,
    /// An ippeveprinter attribute file (`-a`), when the bed uses one.
    attrs: Option<PathBuf>,
    /// Stops the bed and removes its folder on drop.
    _owned: tempfile::TempDir,
}

impl IppBed {
    /// A printer of this test's own: the standard ippeveprinter (RICOH
    /// IP C6020, text/plain, a waste toner tank and a black toner, trays
    /// `main` and `by-pass-tray`) on a free TCP port.
    pub fn private() -> Result<IppBed> {
        Self::start_private(None)
    }

    /// A printer whose attributes come from an ippeveprinter attribute file
    /// with `attrs` as its text (`ATTR textWithoutLanguage
    /// printer-firmware-string-version "1.0"` lines). Such a printer has no
    /// supplies or trays unless the file says so, and cannot print.
    pub fn private_with_attrs(attrs: &str) -> Result<IppBed> {
        Self::start_private(Some(attrs))
    }

    fn start_private(attrs: Option<&str>) -> Result<IppBed> {
        let mut last = None;
        for _ in 0..3 {
            let tmp = tempfile::Builder::new().prefix("pw-ipp-").tempdir()?;
            let attrs_path = match attrs {
                Some(text) => {
                    let p = tmp.path().join("printer.conf");
                    std::fs::write(&p, text)?;
                    Some(p)
                }
                None => None,
            };
            let bed = IppBed {
                dir: tmp.path().to_owned(),
                port: free_tcp_port()?,
                attrs: attrs_path,
                _owned: tmp,
            };
            match bed.script(&["start"]) {
                Ok(()) => return Ok(bed),
                // The port may have been taken meanwhile: try another.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("cannot start a private IPP bed")))
    }

    /// `deploy/dev/ippbed.sh` of this repository (or `$PW_IPPBED_SCRIPT`).
    pub fn script_path() -> PathBuf {
        crate::process::dev_script("ippbed.sh", "PW_IPPBED_SCRIPT")
    }

    fn script(&self, args: &[&str]) -> Result<()> {
        let env = [
            ("PW_IPP_DIR", self.dir.display().to_string()),
            ("PW_IPP_PORT", self.port.to_string()),
            (
                "PW_IPP_ATTRS",
                self.attrs
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ];
        let what = format!("dir {}, port {}", self.dir.display(), self.port);
        crate::process::run_bed_script(&Self::script_path(), args, &env, &what).map(|_| ())
    }

    /// Stops the printer (it stops answering); [`IppBed::start`] brings it
    /// back on the same port, with its initial state.
    pub fn stop(&self) -> Result<()> {
        self.script(&["stop"])
    }

    /// Starts the printer again (idempotent).
    pub fn start(&self) -> Result<()> {
        self.script(&["start"])
    }

    /// Rewrites the attribute file (a bed from
    /// [`IppBed::private_with_attrs`]) and restarts the printer with it.
    pub fn restart_with_attrs(&self, attrs: &str) -> Result<()> {
        let Some(path) = &self.attrs else {
            bail!("this bed has no attribute file");
        };
        std::fs::write(path, attrs)?;
        self.stop()?;
        self.start()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ipp://127.0.0.1:PORT/ipp/print`.
    pub fn url(&self) -> String {
        format!("ipp://127.0.0.1:{}/ipp/print", self.port)
    }

    /// `ipps://localhost:PORT/ipp/print`: IPP over TLS with the printer's
    /// self-signed certificate ([`IppBed::cert_path`]), made for
    /// `localhost`.
    pub fn tls_url(&self) -> String {
        format!("ipps://localhost:{}/ipp/print", self.port)
    }

    /// The printer's self-signed TLS certificate (PEM).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ssl").join("localhost.crt")
    }

    /// Prints `text`; its `STATE:` / `ATTR:` lines change the printer.
    pub fn print(&self, text: &str) -> Result<()> {
        let path = self
            .dir
            .join(format!("doc-{}.txt", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, text)?;
        let out = self.script(&["print", &path.to_string_lossy()]);
        let _ = std::fs::remove_file(&path);
        out
    }

    /// Adds printer-state-reasons keywords (`STATE: +a,b`).
    pub fn add_reasons(&self, reasons: &[&str]) -> Result<()> {
        self.print(&format!("printwatch test\nSTATE: +{}\n", reasons.join(",")))
    }

    /// Removes printer-state-reasons keywords (`STATE: -a,b`).
    pub fn remove_reasons(&self, reasons: &[&str]) -> Result<()> {
        self.print(&format!("printwatch test\nSTATE: -{}\n", reasons.join(",")))
    }

    /// Sets printer attributes (`ATTR: name=value …`; marker-*,
    /// printer-alert, printer-alert-description, printer-supply,
    /// printer-supply-description).
    pub fn set_attrs(&self, attrs: &str) -> Result<()> {
        self.print(&format!("printwatch test\nATTR: {attrs}\n"))
    }

    /// The /supplies form: waste toner tank and black toner levels (%).
    pub fn set_supplies(&self, waste_percent: u8, black_percent: u8) -> Result<()> {
        self.http_get(&format!(
            "/supplies?supply0={waste_percent}&supply1={black_percent}"
        ))
        .map(drop)
    }

    /// The /media form: sheets in tray `main` (250 max; -2 unknown), with
    /// letter stationery; the by-pass tray keeps its envelopes, level unknown.
    pub fn set_main_tray(&self, sheets: i32) -> Result<()> {
        self.http_get(&format!(
            "/media?size1=na_letter_8.5x11in&type1=stationery&level1={sheets}\
             &size3=na_number-10_4.125x9.5in&type3=envelope&level3=-2"
        ))
        .map(drop)
    }

    /// A plain HTTP GET to the printer's web interface; the body.
    pub fn http_get(&self, path: &str) -> Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .with_context(|| format!("connecting to the IPP bed on port {}", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        // ippeveprinter may keep the connection open: read until it closes
        // or goes quiet.
        let mut body = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
                Err(e)
                    if !body.is_empty()
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                {
                    break;
                }
                Err(e) => return Err(e).with_context(|| format!("GET {path}")),
            }
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let status = text.lines().next().unwrap_or_default();
        if !status.contains(" 200 ") {
            bail!("GET {path}: {status}");
        }
        Ok(text)
    }

    /// ippeveprinter's log, for failure messages.
    pub fn logs(&self) -> String {
        let p = self.dir.join("ippeveprinter.log");
        format!(
            "== {} ==\n{}",
            p.display(),
            std::fs::read_to_string(&p).unwrap_or_default()
        )
    }
}

impl Drop for IppBed {
    fn drop(&mut self) {
        let _ = self.script(&["stop"]);
    }
}

fn free_tcp_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
