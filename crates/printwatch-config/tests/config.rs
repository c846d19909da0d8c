//! The configuration as an operator meets it: a full file that parses, and
//! bad files whose errors name the key, the reason, and never a secret.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use printwatch_config::{
    AlertItem, AuthEncryption, Config, ConfigError, DeviceSource, Language, LogFormat, NatsAuth,
    NoEnv, ReceiveProtocol, Security, SenderPattern, load, parse,
};

const FULL: &str = include_str!("fixtures/full.toml");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The variables the full example reads.
fn full_env() -> HashMap<String, String> {
    HashMap::from([
        (
            "NATS_PASSWORD".to_owned(),
            "nats-secret-from-env".to_owned(),
        ),
        ("POP_PASSWORD".to_owned(), "pop-secret-from-env".to_owned()),
    ])
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_ok(text: &str) -> Config {
    match parse(text, &fixtures(), &NoEnv) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn parse_err(text: &str) -> ConfigError {
    match parse(text, &fixtures(), &NoEnv) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

/// The problem at `key`, or a panic listing what was reported.
fn reason_at(err: &ConfigError, key: &str) -> String {
    match err.problems.iter().find(|p| p.key == key) {
        Some(p) => p.reason.clone(),
        None => panic!("no problem at `{key}`; got:\n{err}"),
    }
}

#[test]
fn the_full_example_parses_into_every_section() {
    let c = parse(FULL, &fixtures(), &full_env()).unwrap_or_else(|e| panic!("{e}"));
    for check in [
        Config::require_agent,
        Config::require_notifier,
        Config::require_inbox,
        Config::require_resolved,
    ] {
        check(&c).unwrap_or_else(|e| panic!("{e}"));
    }

    assert_eq!(
        c.nats.urls,
        [
            "nats://nats-1.example.test:4222",
            "nats://nats-2.example.test:4222"
        ]
    );
    let NatsAuth::UserPassword { user, password } = &c.nats.auth else {
        panic!("{:?}", c.nats.auth)
    };
    assert_eq!(
        (user.as_str(), password.expose()),
        ("printwatch", "nats-secret-from-env")
    );
    let tls = c.nats.tls.as_ref().unwrap();
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(fixtures().join("certs/ca.pem").as_path())
    );
    assert!(tls.required);
    assert_eq!(c.names(), printwatch_config::Config::default().names());
    assert_eq!(c.nats.connect_timeout, Duration::from_secs(5));

    assert_eq!(c.agent.grpc_listen.to_string(), "0.0.0.0:50051");
    assert_eq!(c.agent.advertise, "http://printwatch-agent:50051");
    assert_eq!(c.agent.publish_retries, 10);

    assert_eq!(c.devices.len(), 3);
    let lobby = c.device("lobby-1").unwrap();
    assert_eq!(lobby.name, "Lobby printer");
    assert!(matches!(lobby.source, DeviceSource::Simulated));
    assert_eq!(lobby.simulated.toner_level_percent, 100);
    assert_eq!(lobby.simulated.boot_delay, Duration::ZERO);
    assert_eq!(lobby.extra_groups, ["facilities"]);
    assert_eq!(lobby.addresses.len(), 2);
    let DeviceSource::Snmp(snmp) = &c.device("floor2-east").unwrap().source else {
        panic!()
    };
    assert_eq!(
        (snmp.host.as_str(), snmp.port, snmp.community.expose()),
        ("192.0.2.21", 161, "snmp-community-from-file")
    );
    let color = c.device("floor3-color").unwrap();
    assert_eq!(color.name, "floor3-color", "name defaults to the id");
    assert_eq!(color.model, "RICOH IP C6020");
    let DeviceSource::Ipp(ipp) = &color.source else {
        panic!()
    };
    assert!(ipp.tls);
    assert_eq!(
        c.device_by_mail_address("LOBBY-1@printers.example.test")
            .map(|d| d.id.as_str()),
        Some("lobby-1")
    );

    assert_eq!(c.mail.language, Language::Ja);
    let smtp = c.mail.smtp.as_ref().unwrap();
    assert_eq!(
        (smtp.port, smtp.security, smtp.auth),
        (587, Security::StartTls, true)
    );
    assert_eq!(
        smtp.password.as_ref().map(|p| p.expose()),
        Some("smtp-secret-from-file")
    );
    assert_eq!(smtp.auth_encryption, AuthEncryption::Auto);
    let pop = c.mail.pop_before_smtp.as_ref().unwrap();
    assert_eq!(
        (pop.wait, pop.password.expose()),
        (Duration::from_millis(300), "pop-secret-from-env")
    );
    let account = c.mail.account.as_ref().unwrap();
    let (login, password) = account.login().unwrap();
    assert_eq!(
        (login, password.expose()),
        ("printwatch", "account-secret-from-file"),
        "CR LF is trimmed"
    );
    let receive = c.mail.receive.as_ref().unwrap();
    assert_eq!(
        (receive.protocol, receive.port, receive.security),
        (ReceiveProtocol::Imap, 993, Security::Tls)
    );

    assert!(c.alerts.common_body.contains("extension 1234"));
    assert_eq!(c.alerts.items.len(), 15, "the example lists every item");
    assert_eq!(c.alerts.toner_threshold_percent(), 25);
    assert!(!c.alerts.item(AlertItem::TonerAlmostEmpty).notify_recovery);
    assert_eq!(
        c.alerts
            .recipients(AlertItem::TonerEmpty, &lobby.extra_groups),
        [
            "printer-admin@example.test",
            "helpdesk@example.test",
            "supplies@example.test",
            "facilities@example.test"
        ]
    );

    assert_eq!(c.on_demand.common_subject, "[printwatch] ");
    assert_eq!(
        c.on_demand.allowed_senders[1],
        SenderPattern::Domain("example.test".into())
    );
    assert!(c.on_demand.allows("someone@Example.test"));
    assert!(!c.on_demand.allows("someone@elsewhere.test"));
    assert_eq!(c.on_demand.max_request_bytes, 1_048_576);

    assert_eq!(c.telemetry.log_format, LogFormat::Json);
    assert_eq!(c.telemetry.log_level, "info,printwatch_agent=debug");
}

#[test]
fn the_documented_example_is_the_tested_fixture() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/printwatch.example.toml");
    let text = std::fs::read_to_string(&docs).unwrap_or_else(|e| panic!("{}: {e}", docs.display()));
    assert_eq!(
        text, FULL,
        "docs/printwatch.example.toml and tests/fixtures/full.toml must stay identical"
    );
}

#[test]
fn an_empty_file_is_all_defaults_and_each_service_says_what_it_lacks() {
    let c = parse_ok("");
    assert_eq!(c.nats.urls, ["nats://127.0.0.1:4222"]);
    assert!(matches!(c.nats.auth, NatsAuth::None));
    assert_eq!(c.agent.advertise, "http://127.0.0.1:50051");
    assert_eq!(c.agent.poll_interval, Duration::from_secs(5));
    assert_eq!(c.alerts.toner_threshold_percent(), 20);
    assert!(c.alerts.item(AlertItem::PaperJam).notify_recovery);
    assert_eq!(c.on_demand.max_request_bytes, 1_048_576);
    assert_eq!(c.telemetry.log_level, "info");
    assert!(c.require_resolved().is_ok());

    let agent = c.require_agent().unwrap_err();
    assert!(reason_at(&agent, "devices").contains("at least one [[devices]]"));
    let notifier = c.require_notifier().unwrap_err();
    reason_at(&notifier, "mail.smtp");
    reason_at(&notifier, "mail.account");
    let inbox = c.require_inbox().unwrap_err();
    for key in ["mail.account", "mail.receive", "mail.smtp", "on_demand"] {
        reason_at(&inbox, key);
    }
}

#[test]
fn misspelt_keys_are_named_by_their_full_path() {
    let err = parse_err(
        r#"
        [mail.smtp]
        host = "smtp.example.test"
        prot = 25

        [[devices]]
        id = "a"
        source = "simulated"

        [[devices]]
        id = "b"
        sorce = "simulated"

        [alerts.items.toner_emtpy]
        groups = []

        [nats]
        urll = "nats://x:4222"

        [telemetri]
        "#,
    );
    assert!(reason_at(&err, "mail.smtp.prot").contains("did you mean `port`?"));
    assert!(reason_at(&err, "devices[1].sorce").contains("did you mean `source`?"));
    // devices[1] also lacks its source.
    assert!(reason_at(&err, "devices[1].source").contains("required"));
    let item = reason_at(&err, "alerts.items.toner_emtpy");
    assert!(item.contains("did you mean `toner_empty`?"), "{item}");
    assert!(
        item.contains("toner_low_level") && item.contains("service_call"),
        "lists the valid items: {item}"
    );
    assert!(reason_at(&err, "nats.urll").contains("valid keys: url,"));
    assert!(reason_at(&err, "telemetri").contains("did you mean `telemetry`?"));
}

#[test]
fn every_problem_is_reported_at_once_one_line_each() {
    let err = parse_err(
        r#"
        [agent]
        poll_interval = 5
        grpc_listen = "localhost:50051"

        [mail]
        language = "fr"
        admin_address = "Admin <admin@example.test>"

        [mail.smtp]
        host = "smtp.example.test"
        port = 70000
        security = "ssl"

        [on_demand]
        max_request_bytes = 0
        "#,
    );
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "agent.poll_interval",
        "agent.grpc_listen",
        "mail.language",
        "mail.admin_address",
        "mail.smtp.port",
        "mail.smtp.security",
        "on_demand.max_request_bytes",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    let text = err.to_string();
    assert_eq!(text.lines().count(), err.problems.len());
    assert!(text.contains("agent.poll_interval: expected a duration with a unit such as \"300ms\", \"5s\" or \"1m\", found the bare number 5"));
    assert!(text.contains("mail.smtp.port: expected a port number 1..=65535, found 70000"));
    assert!(text.contains(
        "mail.smtp.security: expected one of \"none\", \"starttls\", \"tls\"; found `ssl`"
    ));
    assert!(text.contains("mail.language: expected one of \"ja\", \"en\""));
}

#[test]
fn a_toml_syntax_error_gives_line_and_column() {
    let err = parse_err("[nats]\nurl = \"nats://x:4222\"\nstream = PRINTWATCH\n");
    let text = err.to_string();
    assert!(text.contains("line 3, column 10"), "{text}");
    assert_eq!(text.lines().count(), 1);
}

#[test]
fn load_prefixes_every_line_with_the_file_and_reads_relative_paths_from_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtp.pw"), "from-a-file\n").unwrap();
    let file = dir.path().join("printwatch.toml");
    std::fs::write(
        &file,
        "[mail.smtp]\nhost = \"smtp.example.test\"\nsecurity = \"tls\"\nauth = true\nusername = \"u\"\npassword_file = \"smtp.pw\"\n",
    )
    .unwrap();
    let c = load(&file, &NoEnv).unwrap();
    let smtp = c.mail.smtp.as_ref().unwrap();
    assert_eq!(smtp.port, 465, "tls defaults to 465");
    assert_eq!(smtp.password.as_ref().unwrap().expose(), "from-a-file");
    assert_eq!(c.file(), Some(file.as_path()));

    std::fs::write(
        &file,
        "[mail.smtp]\nhost = \"smtp.example.test\"\nport = 0\ntypo = 1\n",
    )
    .unwrap();
    let err = load(&file, &NoEnv).unwrap_err();
    let text = err.to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    for line in text.lines() {
        assert!(
            line.starts_with(&format!("{}: mail.smtp.", file.display())),
            "{line}"
        );
    }

    let missing = load(&dir.path().join("nope.toml"), &NoEnv).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("nope.toml: cannot read the configuration file"),
        "{missing}"
    );
    assert_eq!(ConfigError::EXIT_CODE, 2);
}

const SMTP_AUTH: &str = r#"
[mail.smtp]
host = "smtp.example.test"
security = "starttls"
auth = true
username = "printwatch"
"#;

#[test]
fn a_missing_secret_file_names_the_file_and_key_and_stops_only_the_services_that_use_it() {
    let text = format!(
        "{SMTP_AUTH}password_file = \"secrets/nope\"\n[[devices]]\nid = \"a\"\nsource = \"simulated\"\n"
    );
    let c = parse_ok(&text);
    assert!(c.require_agent().is_ok(), "the agent does not send mail");
    let err = c.require_notifier().unwrap_err();
    let reason = reason_at(&err, "mail.smtp.password_file");
    assert!(
        reason.contains(&fixtures().join("secrets/nope").display().to_string()),
        "{reason}"
    );
    assert!(c.require_resolved().is_err());
    assert!(c.mail.smtp.as_ref().unwrap().password.is_none());
}

#[test]
fn an_unset_secret_variable_is_named() {
    let c = parse_ok(&format!("{SMTP_AUTH}password_env = \"SMTP_PW\"\n"));
    let err = c.require_notifier().unwrap_err();
    assert_eq!(
        reason_at(&err, "mail.smtp.password_env"),
        "environment variable SMTP_PW is not set"
    );

    let set = parse(
        &format!("{SMTP_AUTH}password_env = \"SMTP_PW\"\n"),
        &fixtures(),
        &env(&[("SMTP_PW", "pw")]),
    )
    .unwrap();
    assert_eq!(set.mail.smtp.unwrap().password.unwrap().expose(), "pw");
}

#[test]
fn an_environment_override_wins_over_the_file() {
    let over = env(&[("PRINTWATCH_MAIL_SMTP_PASSWORD", "from-override")]);
    // Even a missing file does not matter when the override is set.
    for form in [
        "password = \"inline\"",
        "password_file = \"secrets/smtp_password\"",
        "password_file = \"secrets/nope\"",
        "",
    ] {
        let c = parse(&format!("{SMTP_AUTH}{form}\n"), &fixtures(), &over).unwrap();
        c.require_resolved().unwrap();
        assert_eq!(
            c.mail.smtp.unwrap().password.unwrap().expose(),
            "from-override",
            "{form}"
        );
    }
    let c = parse(
        "[nats]\n[mail.account]\naddress = \"pw@example.test\"\nreceive = true\nusername = \"pw\"\n",
        &fixtures(),
        &env(&[("PRINTWATCH_NATS_TOKEN", "tok"), ("PRINTWATCH_MAIL_ACCOUNT_PASSWORD", "acc")]),
    )
    .unwrap();
    assert!(matches!(&c.nats.auth, NatsAuth::Token(t) if t.expose() == "tok"));
    assert_eq!(c.mail.account.unwrap().password.unwrap().expose(), "acc");
    let c = parse(
        "[[devices]]\nid = \"lobby-1\"\nsource = \"snmp://192.0.2.1?community=in-url\"\n",
        &fixtures(),
        &env(&[("PRINTWATCH_DEVICES_LOBBY_1_COMMUNITY", "over")]),
    )
    .unwrap();
    let DeviceSource::Snmp(s) = &c.devices[0].source else {
        panic!()
    };
    assert_eq!(s.community.expose(), "over");
}

#[test]
fn a_missing_password_is_required_where_it_is_used() {
    let c = parse_ok(SMTP_AUTH);
    let err = c.require_notifier().unwrap_err();
    assert!(reason_at(&err, "mail.smtp.password").contains("PRINTWATCH_MAIL_SMTP_PASSWORD"));
    let err = parse_err("[mail.smtp]\nhost = \"h\"\nauth = true\n");
    assert!(reason_at(&err, "mail.smtp.security").contains("required with auth = true"));
    assert!(reason_at(&err, "mail.smtp.username").contains("required"));
    let err = parse_err("[mail.smtp]\nhost = \"h\"\npassword = \"x\"\n");
    assert!(reason_at(&err, "mail.smtp.password").contains("only used with auth = true"));
}

#[test]
fn a_secret_given_two_ways_is_an_error() {
    let err = parse_err(&format!(
        "{SMTP_AUTH}password = \"a\"\npassword_env = \"B\"\n"
    ));
    assert_eq!(
        reason_at(&err, "mail.smtp.password"),
        "give only one of `password`, `password_file` and `password_env`"
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let secrets = [
        "hunter2-smtp",
        "tok-nats-xyz",
        "snmp-c0mmunity",
        "acct-pw-123",
        "pop-pw-456",
    ];
    let text = r#"
        [nats]
        token = "tok-nats-xyz"
        url = "nats://x:4222"
        connect_timeout = 10

        [[devices]]
        id = "a"
        source = "snmp://192.0.2.1:99999?community=snmp-c0mmunity"

        [[devices]]
        id = "b"
        source = "snmp://192.0.2.1?community=snmp-c0mmunity&v=2"

        [mail.smtp]
        host = "smtp.example.test"
        port = 70000
        security = "tls"
        auth = true
        username = "u"
        password = "hunter2-smtp"

        [mail.account]
        address = "not an address"
        receive = true
        username = "u"
        password = "acct-pw-123"

        [mail.pop_before_smtp]
        host = "pop.example.test"
        security = "ssl"
        username = "u"
        password = "pop-pw-456"
        "#;
    let err = parse(text, &fixtures(), &NoEnv).unwrap_err();
    let shown = format!("{err}\n{err:?}");
    assert!(err.problems.len() >= 6, "{shown}");
    for s in secrets {
        assert!(!shown.contains(s), "{s} leaked into:\n{shown}");
    }

    // A valid config with every secret form: Debug shows none of them.
    let c = parse(FULL, &fixtures(), &full_env()).unwrap();
    let debug = format!("{c:?}");
    for s in [
        "nats-secret-from-env",
        "pop-secret-from-env",
        "smtp-secret-from-file",
        "account-secret-from-file",
        "snmp-community-from-file",
    ] {
        assert!(!debug.contains(s), "{s} leaked into Debug");
    }
    assert!(debug.contains("[redacted]"));
    let src = c.device("floor2-east").unwrap().source.to_string();
    assert_eq!(src, "snmp://192.0.2.21:161");

    // A secret file's content never shows, even when the file is wrong.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "").unwrap();
    let c = parse(
        &format!("{SMTP_AUTH}password_file = \"pw\"\n"),
        dir.path(),
        &NoEnv,
    )
    .unwrap();
    let err = c.require_notifier().unwrap_err().to_string();
    assert!(err.contains("is empty"), "{err}");

    // A NATS URL with credentials is refused without echoing it.
    let err = parse_err("[nats]\nurl = \"nats://me:s3cr3t-pw@x:4222\"\n").to_string();
    assert!(
        err.contains("credentials in the URL") && !err.contains("s3cr3t-pw"),
        "{err}"
    );
}

#[test]
fn bad_values_name_the_expected_form() {
    let err = parse_err(
        r#"
        [nats]
        url = "http://x:4222"
        stream = "PRINTWATCH.EVENTS"
        subject_prefix = "a..b"

        [agent]
        advertise = "grpc://agent:50051"

        [[devices]]
        id = "bad id"
        source = "http://printer/ipp"
        addresses = ["192.0.2.300"]

        [[devices]]
        id = "b"

        [mail.receive]
        protocol = "pop"
        host = "mail example"
        security = "tls"
        poll_interval = "soon"

        [mail.pop_before_smtp]
        host = "pop.example.test"
        username = "u"
        password = "p"
        wait = "3h"
        "#,
    );
    assert!(reason_at(&err, "nats.url").contains("unknown scheme `http`"));
    assert!(reason_at(&err, "nats.stream").contains("stream name"));
    assert!(reason_at(&err, "nats.subject_prefix").contains("joined by dots"));
    assert!(reason_at(&err, "agent.advertise").contains("http:// or https://"));
    assert!(reason_at(&err, "devices[0].id").contains("letters, digits"));
    let source = reason_at(&err, "devices[0].source");
    assert!(
        source.contains("unknown source scheme `http`")
            && source.contains("\"simulated\", \"snmp://"),
        "{source}"
    );
    assert!(reason_at(&err, "devices[0].addresses[0]").contains("IPv4 or IPv6"));
    assert!(reason_at(&err, "devices[1].source").starts_with("required"));
    assert!(reason_at(&err, "mail.receive.protocol").contains("\"pop3\""));
    assert!(reason_at(&err, "mail.receive.host").contains("host name or IP address"));
    assert!(reason_at(&err, "mail.receive.poll_interval").contains("`soon` is not one"));
    assert!(
        reason_at(&err, "mail.pop_before_smtp.security")
            .contains("required when POP before SMTP is enabled")
    );
    assert!(reason_at(&err, "mail.pop_before_smtp.wait").contains("at most 1h"));
}

#[test]
fn wrong_types_are_named() {
    let err = parse_err(
        "nats = 1\nmail = { smtp = { host = \"h\", port = \"25\", auth = \"yes\" } }\ndevices = { id = \"a\" }\n",
    );
    assert_eq!(
        reason_at(&err, "nats"),
        "expected a table ([nats]), found an integer"
    );
    assert_eq!(
        reason_at(&err, "mail.smtp.port"),
        "expected a port number 1..=65535, found a string"
    );
    assert_eq!(
        reason_at(&err, "mail.smtp.auth"),
        "expected a boolean (true or false), found a string"
    );
    assert!(reason_at(&err, "devices").contains("[[devices]]"));
}

#[test]
fn header_injection_through_configured_text_is_refused() {
    let err = parse_err(
        "[on_demand]\ncommon_subject = \"Status\\r\\nBcc: everyone@example.test\"\ncommon_body = \"fine\\nbody\\u0000\"\n\
         [alerts.groups]\nops = [\"ops@example.test\\nBcc: x@example.test\"]\n\
         [[devices]]\nid = \"a\"\nsource = \"simulated\"\nname = \"A\\r\\nX-Evil: 1\"\n",
    );
    assert!(reason_at(&err, "on_demand.common_subject").contains("mail header"));
    assert!(reason_at(&err, "on_demand.common_body").contains("NUL"));
    assert!(reason_at(&err, "alerts.groups.ops[0]").contains("line breaks"));
    assert!(reason_at(&err, "devices[0].name").contains("one line"));
    // A body may have line breaks.
    parse_ok("[on_demand]\ncommon_body = \"line 1\\nline 2\"\n");
}

#[test]
fn groups_must_exist_and_be_names() {
    let err = parse_err(
        r#"
        [[devices]]
        id = "a"
        source = "simulated"
        extra_groups = ["facilites"]

        [alerts.groups]
        facilities = ["f@example.test"]
        "bad name" = ["x@example.test"]
        empty = []

        [alerts.items.paper_jam]
        groups = ["nobody", "facilities", "facilities"]
        "#,
    );
    assert!(reason_at(&err, "devices[0].extra_groups[0]").contains("did you mean `facilities`?"));
    assert!(
        reason_at(&err, "alerts.items.paper_jam.groups[0]")
            .contains("no group `nobody` in [alerts.groups]")
    );
    assert!(reason_at(&err, "alerts.items.paper_jam.groups[2]").contains("listed twice"));
    assert!(reason_at(&err, "alerts.groups.\"bad name\"").contains("group name"));
    assert!(reason_at(&err, "alerts.groups.empty").contains("at least one"));
}

#[test]
fn storage_threshold_defaults_to_90_and_can_be_set() {
    assert_eq!(parse_ok("").alerts.storage_threshold_percent(), 90);
    let c = parse_ok("[alerts.items.storage_almost_full]\nthreshold_percent = 75\n");
    assert_eq!(c.alerts.storage_threshold_percent(), 75);
}

#[test]
fn vendor_signals_name_oids_and_ipp_keywords() {
    use printwatch_config::VendorSignal;
    let c = parse_ok(
        r#"
        [agent.vendor_signals]
        ".1.3.6.1.4.1.367.3.2.1.2.24.1.1.5.1" = "proxy_auth_error"
        "ricoh-access-violation-report" = "access_attack"

        [[devices]]
        id = "a"
        source = "snmp://printer.example.test"
        [devices.vendor_signals]
        "1.3.6.1.4.1.367.9" = "service_call"
        "#,
    );
    assert_eq!(
        c.agent.vendor_signals.get(&VendorSignal::Oid(
            "1.3.6.1.4.1.367.3.2.1.2.24.1.1.5.1".into()
        )),
        Some(&AlertItem::ProxyAuthError)
    );
    assert_eq!(
        c.agent
            .vendor_signals
            .get(&VendorSignal::IppKeyword("ricoh-access-violation".into())),
        Some(&AlertItem::AccessAttack)
    );
    assert_eq!(
        c.devices[0]
            .vendor_signals
            .get(&VendorSignal::Oid("1.3.6.1.4.1.367.9".into())),
        Some(&AlertItem::ServiceCall)
    );

    let err = parse_err(
        r#"
        [agent.vendor_signals]
        "1.3.6.1.4.1.367.1" = "toner_emtpy"
        "Not A Keyword" = "access_attack"
        "1.3.6.1.4.1.367.2" = 5
        "#,
    );
    assert!(
        reason_at(&err, "agent.vendor_signals.\"1.3.6.1.4.1.367.1\"")
            .contains("did you mean `toner_empty`?")
    );
    assert!(
        reason_at(&err, "agent.vendor_signals.\"Not A Keyword\"")
            .contains("numeric OID or an IPP keyword")
    );
    assert!(reason_at(&err, "agent.vendor_signals.\"1.3.6.1.4.1.367.2\"").contains("string"));
}

#[test]
fn only_toner_low_level_takes_a_threshold() {
    let err = parse_err(
        "[alerts.items.toner_empty]\nthreshold_percent = 10\n[alerts.items.toner_low_level]\nthreshold_percent = 100\n",
    );
    assert!(
        reason_at(&err, "alerts.items.toner_empty.threshold_percent")
            .contains("only toner_low_level")
    );
    assert!(reason_at(&err, "alerts.items.toner_low_level.threshold_percent").contains("1..=99"));
    let c = parse_ok("[alerts.items.toner_low_level]\nthreshold_percent = 5\n");
    assert_eq!(c.alerts.toner_threshold_percent(), 5);
    assert_eq!(c.alerts.item(AlertItem::TonerEmpty).threshold_percent, None);
}

#[test]
fn device_ids_and_mail_addresses_are_unique() {
    let err = parse_err(
        r#"
        [[devices]]
        id = "a"
        source = "simulated"
        mail_address = "p@example.test"
        [[devices]]
        id = "a"
        source = "simulated"
        mail_address = "P@example.test"
        "#,
    );
    assert!(reason_at(&err, "devices[1].id").contains("also devices[0].id"));
    assert!(reason_at(&err, "devices[1].mail_address").contains("devices[0].mail_address"));
}

#[test]
fn device_settings_fit_their_source() {
    let err = parse_err(
        r#"
        [[devices]]
        id = "a"
        source = "ipp://printer.example.test/ipp/print"
        community = "x"
        [devices.simulated]
        toner_level_percent = 101
        "#,
    );
    assert!(reason_at(&err, "devices[0].community").contains("only for an snmp:// source"));
    assert!(reason_at(&err, "devices[0].simulated").contains("simulated"));
    assert!(reason_at(&err, "devices[0].simulated.toner_level_percent").contains("0..=100"));
    let c = parse_ok(
        "[[devices]]\nid = \"a\"\nsource = \"simulated\"\n[devices.simulated]\nboot_delay = \"2s\"\n",
    );
    assert_eq!(c.devices[0].simulated.boot_delay, Duration::from_secs(2));
    let err = parse_err(
        "[[devices]]\nid = \"a\"\nsource = \"snmp://h?community=x\"\ncommunity = \"y\"\n",
    );
    assert!(reason_at(&err, "devices[0].community").contains("one place"));
    let c = parse_ok("[[devices]]\nid = \"a\"\nsource = \"snmp://h\"\n");
    let DeviceSource::Snmp(s) = &c.devices[0].source else {
        panic!()
    };
    assert_eq!(s.community.expose(), "public");
}

#[test]
fn nats_takes_one_auth_method() {
    let err = parse(
        "[nats]\nuser = \"u\"\npassword = \"p\"\ncreds_file = \"x.creds\"\n",
        &fixtures(),
        &env(&[("PRINTWATCH_NATS_TOKEN", "t")]),
    )
    .unwrap_err();
    let reason = reason_at(&err, "nats");
    assert!(
        reason.contains("user + password, token, creds_file"),
        "{reason}"
    );
    let err = parse_err("[nats]\npassword = \"p\"\n");
    reason_at(&err, "nats.user");
    let c = parse_ok("[nats]\ncreds_file = \"missing.creds\"\n");
    let err = c.require_agent().unwrap_err();
    assert!(reason_at(&err, "nats.creds_file").contains("missing.creds"));
    let c = parse_ok("[nats]\nurl = [\"tls://a:4222\", \"wss://b:443\"]\n");
    assert_eq!(c.nats.urls.len(), 2);
}

#[test]
fn the_agent_needs_an_advertise_url_when_it_binds_every_address() {
    let devices = "[[devices]]\nid = \"a\"\nsource = \"simulated\"\n";
    let c = parse_ok(&format!(
        "[agent]\ngrpc_listen = \"0.0.0.0:50051\"\n{devices}"
    ));
    assert!(
        reason_at(&c.require_agent().unwrap_err(), "agent.advertise").contains("0.0.0.0:50051")
    );
    let c = parse_ok(&format!("[agent]\ngrpc_listen = \"[::1]:7000\"\n{devices}"));
    c.require_agent().unwrap();
    assert_eq!(c.agent.advertise, "http://[::1]:7000");
    assert!(!c.advertise_is_explicit());
}

#[test]
fn the_inbox_needs_receive_on_and_someone_allowed() {
    let c = parse_ok(
        r#"
        [mail.smtp]
        host = "smtp.example.test"
        [mail.account]
        address = "pw@example.test"
        [mail.receive]
        protocol = "pop3"
        host = "pop.example.test"
        security = "starttls"
        [on_demand]
        "#,
    );
    assert_eq!(c.mail.receive.as_ref().unwrap().port, 110);
    let err = c.require_inbox().unwrap_err();
    reason_at(&err, "mail.account.receive");
    reason_at(&err, "on_demand.allowed_senders");
}

/// Truncations and byte-level mutations of the full example: every one
/// must come back as `Ok` or `Err`, never a panic.
#[test]
fn garbled_configs_never_panic() {
    let env = full_env();
    let dir = fixtures();
    let mut cuts: Vec<usize> = (0..FULL.len())
        .filter(|i| FULL.is_char_boundary(*i))
        .step_by(7)
        .collect();
    cuts.push(FULL.len());
    for cut in cuts {
        let _ = parse(&FULL[..cut], &dir, &env);
    }
    let alphabet: Vec<char> = "[]{}=\".,#'\\\n 0123456789abcxyz_-:@/\u{0}\u{3042}"
        .chars()
        .collect();
    let chars: Vec<char> = FULL.chars().collect();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..1500 {
        let mut text = chars.clone();
        for _ in 0..(1 + next() % 4) {
            let at = (next() % text.len() as u64) as usize;
            let ch = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 => text[at] = ch,
                1 => text.insert(at, ch),
                _ => {
                    text.remove(at);
                }
            }
        }
        let text: String = text.into_iter().collect();
        if let Ok(c) = parse(&text, &dir, &env) {
            let _ = (
                c.require_agent(),
                c.require_notifier(),
                c.require_inbox(),
                format!("{c:?}"),
            );
        }
    }
    for garbage in [
        "\u{feff}",
        "=",
        "[[devices]]\n[[devices]]",
        "a = [[[[[[[[1]]]]]]]]",
        "[mail]\nsmtp = []",
        "devices = [1, \"x\", {}]",
    ] {
        let _ = parse(garbage, &dir, &env);
    }
}

#[test]
fn a_device_may_have_its_own_mailbox_and_then_runs_an_inbox_without_a_shared_account() {
    let base = "[mail.smtp]\nhost = \"smtp.example.test\"\n[mail.receive]\nprotocol = \"imap\"\nhost = \"imap.example.test\"\nsecurity = \"tls\"\n[on_demand]\nallowed_senders = [\"example.test\"]\n[[devices]]\nid = \"p1\"\nsource = \"simulated\"\nmail_address = \"p1@example.test\"\n";
    let c = parse_ok(&format!(
        "{base}[devices.mailbox]\nusername = \"p1\"\npassword = \"pw\"\n"
    ));
    let mb = c.devices[0].mailbox.as_ref().expect("the device's mailbox");
    assert_eq!(mb.username, "p1");
    assert_eq!(mb.password.as_ref().map(|p| p.expose()), Some("pw"));
    c.require_inbox().unwrap();

    let err = parse_err(&format!("{base}[devices.mailbox]\nusername = \"p1\"\n"));
    assert!(reason_at(&err, "devices[0].mailbox.password").contains("required"));
    // Without any mailbox the inbox says what it lacks.
    let none = parse_ok(base);
    let err = none.require_inbox().unwrap_err();
    assert!(err.to_string().contains("devices.mailbox"), "{err}");
}

#[test]
fn snmpv3_settings_are_read_checked_by_full_key_and_never_echoed() {
    let ok = parse(
        r#"
[[devices]]
id = "v3"
source = "snmp://192.0.2.30"

[devices.snmp]
version = "3"
user = "pwsha256"
auth_protocol = "SHA256"
auth_password = "auth-s3cret-inline"
priv_protocol = "aes256"
priv_password_env = "V3_PRIV"
"#,
        &fixtures(),
        &env(&[("V3_PRIV", "priv-s3cret-from-env")]),
    )
    .unwrap();
    let DeviceSource::Snmp(snmp) = &ok.device("v3").unwrap().source else {
        panic!("not snmp");
    };
    let v3 = snmp.v3.as_ref().expect("v3 settings");
    assert_eq!(v3.user, "pwsha256");
    assert_eq!(
        v3.auth_protocol,
        printwatch_config::SnmpAuthProtocol::Sha256
    );
    assert_eq!(
        v3.priv_protocol,
        printwatch_config::SnmpPrivProtocol::Aes256
    );
    assert_eq!(v3.auth_password.expose(), "auth-s3cret-inline");
    assert_eq!(v3.priv_password.expose(), "priv-s3cret-from-env");
    let shown = format!("{ok:?}");
    assert!(!shown.contains("s3cret"), "{shown}");

    // Without the table the device stays on v2c.
    let v2 = parse_ok("[[devices]]\nid = \"v2\"\nsource = \"snmp://192.0.2.31\"\n");
    let DeviceSource::Snmp(snmp) = &v2.device("v2").unwrap().source else {
        panic!("not snmp");
    };
    assert!(snmp.v3.is_none());

    let err = parse_err(
        r#"
[[devices]]
id = "bad"
source = "snmp://192.0.2.32?community=c0mmunity-s3cret"

[devices.snmp]
version = "3"
auth_protocol = "md5"
auth_password = "sh0rt7"
priv_protocol = "des"
priv_password = "priv-s3cret-long-enough"
priv_password_file = "x"
context = "nope"

[[devices]]
id = "sim"
source = "simulated"

[devices.snmp]
version = "2c"
user = "nobody"
"#,
    );
    assert!(reason_at(&err, "devices[0].snmp.user").contains("required"));
    assert!(reason_at(&err, "devices[0].snmp.auth_protocol").contains("\"sha256\""));
    assert!(reason_at(&err, "devices[0].snmp.auth_password").contains("8 characters"));
    assert!(reason_at(&err, "devices[0].snmp.priv_protocol").contains("\"aes\""));
    assert!(reason_at(&err, "devices[0].snmp.priv_password").contains("only one"));
    assert!(reason_at(&err, "devices[0].snmp.context").contains("unknown key"));
    assert!(reason_at(&err, "devices[0].community").contains("SNMPv3"));
    assert!(reason_at(&err, "devices[1].snmp").contains("snmp:// source"));
    assert!(reason_at(&err, "devices[1].snmp.user").contains("version = \"3\""));
    let text = err.to_string();
    for secret in ["sh0rt7", "s3cret"] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
}

#[test]
fn ipps_tls_settings_are_read_and_checked_by_full_key() {
    let ok = parse_ok(
        r#"
[[devices]]
id = "i1"
source = "ipps://printer.example.test/ipp/print"

[devices.ipp]
ca_file = "full.toml"
tls_verify = false

[[devices]]
id = "i2"
source = "ipps://printer2.example.test/ipp/print"
"#,
    );
    let DeviceSource::Ipp(ipp) = &ok.device("i1").unwrap().source else {
        panic!("not ipp");
    };
    assert_eq!(
        ipp.ca_file.as_deref(),
        Some(fixtures().join("full.toml").as_path())
    );
    assert!(!ipp.tls_verify);
    let DeviceSource::Ipp(ipp) = &ok.device("i2").unwrap().source else {
        panic!("not ipp");
    };
    assert_eq!((ipp.ca_file.as_ref(), ipp.tls_verify), (None, true));

    let err = parse_err(
        r#"
[[devices]]
id = "plain"
source = "ipp://printer.example.test/ipp/print"

[devices.ipp]
ca_file = "full.toml"
tls_verify = "no"
client_cert = "x"

[[devices]]
id = "snmp"
source = "snmp://192.0.2.40"

[devices.ipp]
tls_verify = true
"#,
    );
    assert!(reason_at(&err, "devices[0].ipp.ca_file").contains("ipps://"));
    assert!(reason_at(&err, "devices[0].ipp.tls_verify").contains("boolean"));
    assert!(reason_at(&err, "devices[0].ipp.client_cert").contains("unknown key"));
    assert!(reason_at(&err, "devices[1].ipp").contains("ipp:// or ipps://"));
}
