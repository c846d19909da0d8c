//! `[agent]` polling keys (jitter, concurrency, read deadline, unreachable
//! threshold) and a device's own `poll_interval`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use printwatch_config::{ConfigError, NoEnv, Polling, parse};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn reason_at(err: &ConfigError, key: &str) -> String {
    match err.problems.iter().find(|p| p.key == key) {
        Some(p) => p.reason.clone(),
        None => panic!("no problem at `{key}`; got:\n{err}"),
    }
}

#[test]
fn polling_defaults_are_sane() {
    let c = parse("", &fixtures(), &NoEnv).unwrap();
    assert_eq!(c.agent.polling, Polling::default());
    assert!((c.agent.polling.jitter - 0.2).abs() < f64::EPSILON);
    assert_eq!(c.agent.polling.max_concurrent_reads, 64);
    assert_eq!(c.agent.polling.read_timeout, Duration::from_secs(30));
    assert_eq!(c.agent.polling.unreachable_after, 3);
}

#[test]
fn the_full_example_sets_every_polling_key_and_a_device_interval() {
    let full = include_str!("fixtures/full.toml");
    let env = HashMap::from([
        ("NATS_PASSWORD".to_owned(), "x".to_owned()),
        ("POP_PASSWORD".to_owned(), "y".to_owned()),
    ]);
    let c = parse(full, &fixtures(), &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.agent.polling, Polling::default());
    let by_id = |id: &str| c.devices.iter().find(|d| d.id == id).unwrap();
    assert_eq!(by_id("lobby-1").poll_interval, None);
    assert_eq!(
        by_id("floor2-east").poll_interval,
        Some(Duration::from_secs(30))
    );
}

#[test]
fn polling_keys_are_read() {
    let c = parse(
        r#"
[agent]
poll_jitter = 0.5
max_concurrent_reads = 8
read_timeout = "10s"
unreachable_after = 1

[[devices]]
id = "a"
source = "simulated"
poll_interval = "1m"
"#,
        &fixtures(),
        &NoEnv,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.agent.polling,
        Polling {
            jitter: 0.5,
            max_concurrent_reads: 8,
            read_timeout: Duration::from_secs(10),
            unreachable_after: 1,
        }
    );
    assert_eq!(c.devices[0].poll_interval, Some(Duration::from_secs(60)));
    let c = parse("[agent]\npoll_jitter = 0\n", &fixtures(), &NoEnv).unwrap();
    assert_eq!(c.agent.polling.jitter, 0.0);
}

#[test]
fn bad_polling_keys_name_the_key() {
    let err = parse(
        r#"
[agent]
poll_jitter = 1.5
max_concurrent_reads = 0
read_timeout = "1ms"
unreachable_after = 0

[[devices]]
id = "a"
source = "simulated"
poll_interval = 5
"#,
        &fixtures(),
        &NoEnv,
    )
    .unwrap_err();
    assert!(
        reason_at(&err, "agent.poll_jitter").contains("0.0..=1.0"),
        "{err}"
    );
    assert!(
        reason_at(&err, "agent.max_concurrent_reads").contains("found 0"),
        "{err}"
    );
    assert!(
        reason_at(&err, "agent.read_timeout").contains("at least 100ms"),
        "{err}"
    );
    assert!(
        reason_at(&err, "agent.unreachable_after").contains("found 0"),
        "{err}"
    );
    assert!(
        reason_at(&err, "devices[0].poll_interval").contains("bare number 5"),
        "{err}"
    );
    let err = parse("[agent]\npoll_jitter = \"10%\"\n", &fixtures(), &NoEnv).unwrap_err();
    assert!(
        reason_at(&err, "agent.poll_jitter").contains("found a string"),
        "{err}"
    );
}
