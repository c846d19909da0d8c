//! How much a read of an IPP printer costs the agent, against a private
//! ippeveprinter (`deploy/dev/ippbed.sh`): the agent's [`IppSource`] (one
//! HTTP client per printer, kept) against the baseline of the `ipp` crate's
//! own `AsyncIppClient`, which builds a new HTTP client — TLS roots and
//! all — for every request. Prints wall time and CPU per read and their
//! ratios; both run in the same process, one after the other, on the same
//! printer.
//!
//! `cargo bench -p printwatch-e2e --bench ipp_read [-- READS]`

use std::time::{Duration, Instant};

use ipp::prelude::*;
use printwatch_agent::source::IppSource;
use printwatch_agent::source::mapping::VendorMap;
use printwatch_proto::v1::ProtocolSettings;
use printwatch_testing::ipp::IppBed;

/// This process's user + system CPU time (Linux /proc, clock ticks of
/// 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

struct Figures {
    wall: Duration,
    cpu: Duration,
}

fn per_read(f: &Figures, n: u32) -> String {
    format!(
        "{:>8.3} ms wall, {:>7.3} ms CPU per read",
        f.wall.as_secs_f64() * 1000.0 / f64::from(n),
        f.cpu.as_secs_f64() * 1000.0 / f64::from(n)
    )
}

fn main() -> anyhow::Result<()> {
    let reads: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let bed = IppBed::private()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let url = bed.url();
        let uri: Uri = url.parse()?;
        let source = IppSource::new(
            "bench",
            &url,
            20,
            ProtocolSettings::default(),
            VendorMap::new(),
        );
        // Warm up both (connection, first TLS setup, ippeveprinter).
        source.read().await?;
        let client = AsyncIppClient::new(uri.clone());
        client
            .send(IppOperationBuilder::get_printer_attributes(uri.clone()).build()?)
            .await?;

        let (t, c) = (Instant::now(), cpu());
        for _ in 0..reads {
            let op = IppOperationBuilder::get_printer_attributes(uri.clone()).build()?;
            let answer = AsyncIppClient::new(uri.clone()).send(op).await?;
            anyhow::ensure!(answer.header().status_code().is_success());
        }
        let baseline = Figures {
            wall: t.elapsed(),
            cpu: cpu().saturating_sub(c),
        };

        let (t, c) = (Instant::now(), cpu());
        for _ in 0..reads {
            let reading = source.read().await?;
            anyhow::ensure!(!reading.supplies.is_empty());
        }
        let agent = Figures {
            wall: t.elapsed(),
            cpu: cpu().saturating_sub(c),
        };

        println!("IPP Get-Printer-Attributes, {reads} reads of one ippeveprinter:");
        println!(
            "  baseline (ipp crate client per request): {}",
            per_read(&baseline, reads)
        );
        println!(
            "  agent IppSource (kept HTTP client):       {}",
            per_read(&agent, reads)
        );
        println!(
            "  ratio baseline / agent: wall {:.1}x, CPU {:.1}x",
            baseline.wall.as_secs_f64() / agent.wall.as_secs_f64().max(1e-9),
            baseline.cpu.as_secs_f64() / agent.cpu.as_secs_f64().max(0.01)
        );
        anyhow::Ok(())
    })
}
