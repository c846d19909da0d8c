//! Polling a fleet: one agent reads 200 simulated SNMP printers (one snmpd
//! listening on 199 ports, plus a private one that the test freezes) at a
//! 5 s interval without falling behind; the printer that stops answering
//! (every read runs into `read_timeout`) becomes exactly one
//! `unit_connection_error` occurred event and, when it answers again, one
//! recovered event — also across an agent restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use printwatch_events::{AlertItem, TransitionKind};
use printwatch_proto::v1::{DeviceState, DeviceStatus, ListDevicesRequest};
use printwatch_testing::agent::{AgentFixture, StoredEvent};
use printwatch_testing::process::{free_port, http_get};
use printwatch_testing::snmp::SnmpBed;

/// The fleet: 199 ports of one snmpd, plus the printer that goes silent.
const FLEET: usize = 199;
const INTERVAL: Duration = Duration::from_secs(5);

fn device(id: &str, url: &str, interval: &str) -> String {
    format!("[[devices]]\nid = \"{id}\"\nsource = \"{url}\"\npoll_interval = \"{interval}\"\n\n")
}

async fn list(fx: &AgentFixture) -> BTreeMap<String, DeviceStatus> {
    let mut client = fx.client().await.unwrap();
    client
        .list_devices(ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .devices
        .into_iter()
        .map(|d| (d.device.clone().unwrap_or_default().id, d))
        .collect()
}

fn read_at(s: &DeviceStatus) -> Option<SystemTime> {
    s.read_at
        .as_ref()
        .map(|t| SystemTime::UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32))
}

fn unit_connection(events: &[StoredEvent], t: TransitionKind) -> Vec<&StoredEvent> {
    events
        .iter()
        .filter(|e| e.event.item == AlertItem::UnitConnectionError && e.event.transition == t)
        .collect()
}

/// The value of the sample `name` (with its labels, as written) in a
/// Prometheus text exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(port: u16) -> String {
    let (code, body) = http_get(port, "/metrics").await.unwrap();
    assert_eq!(code, 200, "{body}");
    body
}

/// A histogram's cumulative buckets: (upper bound, count).
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&format!("{name}_bucket{{le=\""))?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The upper bound of the bucket where the `q` quantile of a histogram
/// falls, over what was observed between the `before` and `after` texts.
fn quantile(before: &str, after: &str, name: &str, q: f64) -> f64 {
    let earlier = buckets(before, name);
    let delta: Vec<(f64, f64)> = buckets(after, name)
        .into_iter()
        .map(|(le, c)| {
            let was = earlier.iter().find(|(l, _)| *l == le).map_or(0.0, |b| b.1);
            (le, c - was)
        })
        .collect();
    let total = delta.last().map_or(0.0, |b| b.1);
    delta
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map_or(f64::NAN, |b| b.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_of_200_snmp_devices_is_read_every_5s_and_a_silent_one_is_one_unreachable_condition()
{
    let fleet = SnmpBed::private_fleet(FLEET).unwrap();
    let silent = SnmpBed::private().unwrap();
    let mut rest = String::new();
    for (i, url) in fleet.urls().iter().enumerate() {
        rest.push_str(&device(&format!("f{i:03}"), url, "5s"));
    }
    // The printer that goes silent is read every second, so three failed
    // reads (3 s `read_timeout` each) take about 12 s, not half a minute.
    rest.push_str(&device("silent", &silent.url(), "1s"));
    let metrics_port = free_port().unwrap();
    let fx = AgentFixture::start_with(
        "poll_jitter = 0.2\nmax_concurrent_reads = 64\nread_timeout = \"3s\"\nunreachable_after = 3",
        &format!("http_listen = \"127.0.0.1:{metrics_port}\""),
        &rest,
    )
    .await
    .unwrap();

    // Every device read once.
    let started = Instant::now();
    loop {
        let all = list(&fx).await;
        let unread: Vec<_> = all
            .iter()
            .filter(|(_, s)| s.read_at.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(all.len(), FLEET + 1);
        if unread.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "not read within 40s: {unread:?}\n{}",
            fx.agent.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let first_round = started.elapsed();
    let before = metrics(metrics_port).await;
    let window_start = Instant::now();

    // ~39 s: the silent printer freezes (its snmpd neither answers nor
    // refuses: each read runs into read_timeout while the fleet goes on),
    // is declared unreachable, comes back;
    // every 3 s every fleet device must have been read within the last two
    // intervals (lenient: the machine is small and shared).
    let mut worst_age = Duration::ZERO;
    let mut stale = Vec::new();
    let mut checks = 0;
    let mut stopped_at = None;
    let mut occurred_at = None;
    let mut resumed = false;
    let mut down_status = None;
    let mut unreachable_gauge_while_down = f64::NAN;
    while window_start.elapsed() < Duration::from_secs(39) {
        let now = SystemTime::now();
        let all = list(&fx).await;
        checks += 1;
        for (id, s) in all.iter().filter(|(id, _)| id.starts_with('f')) {
            let age = read_at(s)
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            worst_age = worst_age.max(age);
            if age > 2 * INTERVAL + Duration::from_secs(2) || s.state() == DeviceState::Unreachable
            {
                stale.push(format!("{id}: age {age:?}, state {:?}", s.state()));
            }
        }
        let t = window_start.elapsed();
        if stopped_at.is_none() && t > Duration::from_secs(3) {
            silent.pause().unwrap();
            stopped_at = Some(Instant::now());
        }
        if stopped_at.is_some() && occurred_at.is_none() {
            let events = fx.events().await.unwrap();
            if !unit_connection(&events, TransitionKind::Occurred).is_empty() {
                occurred_at = Some(Instant::now());
                // The status follows the event (it is published first).
                let deadline = Instant::now() + Duration::from_secs(5);
                down_status = loop {
                    let s = list(&fx).await.remove("silent");
                    let shown = s.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.item == "unit_connection_error")
                    });
                    if shown || Instant::now() > deadline {
                        break s;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                unreachable_gauge_while_down = sample(
                    &metrics(metrics_port).await,
                    "printwatch_agent_devices_unreachable",
                );
            }
        }
        // Down for a while after the event (more failed reads, which must
        // stay quiet), then back.
        if !resumed && occurred_at.is_some_and(|at| at.elapsed() > Duration::from_secs(6)) {
            silent.resume().unwrap();
            resumed = true;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let window = window_start.elapsed();
    let after = metrics(metrics_port).await;

    assert!(
        stopped_at.is_some() && occurred_at.is_some() && resumed,
        "the silent printer was not declared unreachable in time (stopped {stopped_at:?}, occurred {occurred_at:?})\n{}",
        fx.agent.log()
    );
    // The recovery: its next reading.
    let events = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let events = fx.events().await.unwrap();
            if !unit_connection(&events, TransitionKind::Recovered).is_empty() {
                break events;
            }
            assert!(
                Instant::now() < deadline,
                "no recovery: {events:?}\n{}",
                fx.agent.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = {
        let again = fx.events().await.unwrap();
        assert_eq!(again.len(), events.len(), "{again:?}");
        again
    };
    let summary: Vec<String> = events.iter().map(|e| e.subject.clone()).collect();
    assert_eq!(events.len(), 2, "{summary:?}");
    let occurred = unit_connection(&events, TransitionKind::Occurred);
    let recovered = unit_connection(&events, TransitionKind::Recovered);
    assert_eq!((occurred.len(), recovered.len()), (1, 1), "{summary:?}");
    assert_eq!(occurred[0].event.event.device_id, "silent");
    assert_eq!(recovered[0].event.event.device_id, "silent");
    assert!(
        occurred[0]
            .event
            .event
            .detail
            .starts_with("device unreachable: "),
        "{:?}",
        occurred[0].event.event.detail
    );
    assert_eq!(
        recovered[0].event.event.occurred_event_id,
        occurred[0].event.event.event_id
    );
    let down = down_status.unwrap();
    assert_eq!(down.state(), DeviceState::Unreachable, "{down:?}");
    assert!(
        down.conditions
            .iter()
            .any(|c| c.item == "unit_connection_error"),
        "{down:?}"
    );
    assert_eq!(unreachable_gauge_while_down, 1.0, "{after}");

    // Kept up: every check found every device read within two intervals.
    assert!(
        stale.is_empty(),
        "{} stale readings over {checks} checks (worst age {worst_age:?}): {:?}",
        stale.len(),
        &stale[..stale.len().min(20)]
    );
    let ok = |m: &str| sample(m, "printwatch_agent_reads_total{outcome=\"ok\"}");
    let reads = ok(&after) - ok(&before);
    // The 199 at 5 s; the silent one's reads (1 s, when it answers) on top.
    let expected = FLEET as f64 * window.as_secs_f64() / INTERVAL.as_secs_f64();
    assert!(
        reads >= 0.8 * expected,
        "{reads} good reads in {window:?}, expected about {expected:.0}"
    );
    let timeouts = sample(&after, "printwatch_agent_reads_total{outcome=\"timeout\"}");
    assert!(timeouts >= 3.0, "{timeouts} timed-out reads\n{after}");
    assert_eq!(
        sample(&after, "printwatch_agent_devices_unreachable"),
        0.0,
        "{after}"
    );
    // Over the window, after the first round's start-up burst.
    let lag_p99 = quantile(&before, &after, "printwatch_agent_poll_lag_seconds", 0.99);
    let read_p99 = quantile(
        &before,
        &after,
        "printwatch_agent_read_duration_seconds",
        0.99,
    );
    let lag_p50 = quantile(&before, &after, "printwatch_agent_poll_lag_seconds", 0.5);
    let read_p50 = quantile(
        &before,
        &after,
        "printwatch_agent_read_duration_seconds",
        0.5,
    );
    println!(
        "fleet: {} devices, first round {first_round:?}; {reads} good reads in {window:.1?} = {:.1} reads/s \
         ({:.2} of the {:.1} reads/s the fleet's 5 s intervals ask, plus the silent printer's 1 s); worst age of a reading {worst_age:?} \
         ({:.2} intervals); poll lag p50 <= {lag_p50}s, p99 <= {lag_p99}s ({:.3} of an interval); \
         read duration p50 <= {read_p50}s, p99 <= {read_p99}s",
        FLEET + 1,
        reads / window.as_secs_f64(),
        reads / expected,
        expected / window.as_secs_f64(),
        worst_age.as_secs_f64() / INTERVAL.as_secs_f64(),
        lag_p99 / INTERVAL.as_secs_f64(),
    );
    assert!(
        lag_p99 <= INTERVAL.as_secs_f64(),
        "poll lag p99 {lag_p99}s exceeds an interval"
    );
    // No log storm: one warning when it went silent, one when it came
    // back; the failed reads in between at info (the first) or debug.
    let log = fx.agent.log();
    let silent: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("silent") && !l.contains("event published"))
        .collect();
    let warns: Vec<&&str> = silent.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 2, "{warns:#?}");
    assert!(warns[0].contains("device unreachable"), "{warns:#?}");
    assert!(warns[1].contains("device answers again"), "{warns:#?}");
    let infos = silent
        .iter()
        .filter(|l| l.contains("INFO") && l.contains("device did not answer"))
        .count();
    assert_eq!(infos, 1, "{silent:#?}");
}

#[tokio::test]
async fn an_unreachable_device_stays_one_condition_across_an_agent_restart() {
    let bed = SnmpBed::private().unwrap();
    let rest = device("s1", &bed.url(), "300ms");
    let mut fx = AgentFixture::start_with("unreachable_after = 2", "", &rest)
        .await
        .unwrap();
    fx.wait_until_read("s1", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(fx.events().await.unwrap().is_empty());

    bed.stop().unwrap();
    let events = fx
        .wait_for_events(1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        unit_connection(&events, TransitionKind::Occurred).len(),
        1,
        "{events:?}"
    );

    // The agent restarts while the printer is still silent: the stored
    // record already holds the condition, so no second event.
    fx.agent.restart().unwrap();
    fx.wait_for_grpc(Duration::from_secs(20)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s1 = list(&fx).await.remove("s1").unwrap();
        if s1.state() == DeviceState::Unreachable {
            assert!(
                s1.conditions
                    .iter()
                    .any(|c| c.item == "unit_connection_error"),
                "{s1:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{s1:?}\n{}", fx.agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more failed reads, past the threshold again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = fx.events().await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}\n{}", fx.agent.log());

    bed.start().unwrap();
    let events = fx
        .wait_for_events(2, Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = {
        let again = fx.events().await.unwrap();
        assert_eq!(again.len(), events.len(), "{again:?}");
        again
    };
    assert_eq!(events.len(), 2, "{events:?}");
    let recovered = unit_connection(&events, TransitionKind::Recovered);
    assert_eq!(recovered.len(), 1, "{events:?}");
    assert_eq!(
        recovered[0].event.event.occurred_event_id,
        events[0].event.event.event_id
    );
    let s1 = list(&fx).await.remove("s1").unwrap();
    assert!(s1.conditions.is_empty(), "{s1:?}");
}
