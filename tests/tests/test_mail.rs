//! `printwatch test-mail ADDRESS`, run as an operator runs it: the real
//! binary, a config file, the local mail bed, and no agent anywhere.
//! On success the mail is in the mailbox; on failure stderr is one line
//! naming the step that failed, and the exit code is 1.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use printwatch_testing::mail::MailBed;
use printwatch_testing::process::{free_port, run_bin};

const WAIT: Duration = Duration::from_secs(30);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config with `[mail.smtp]` for the bed's submission port (STARTTLS),
/// logging in as `user` with `password`, sending as `from`.
fn config(dir: &Path, bed: &MailBed, port: u16, user: &str, password: &str, from: &str) -> PathBuf {
    let file = dir.join("printwatch.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[mail]
language = "en"

[mail.smtp]
host = "{host}"
port = {port}
security = "starttls"
ca_file = "{ca}"
auth = true
auth_address = "{from}"
username = "{user}"
password = "{password}"
connect_timeout = "5s"
command_timeout = "10s"
"#,
            host = bed.host(),
            ca = bed.ca_file().display(),
        ),
    )
    .unwrap();
    file
}

fn test_mail(config: &Path, to: &str, json: bool) -> Output {
    let mut args = vec!["--config", config.to_str().unwrap()];
    if json {
        args.push("--json");
    }
    args.extend(["test-mail", to]);
    run_bin("printwatch", &args).unwrap()
}

/// The one stderr line of a failed run.
fn one_error_line(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {} stderr: {stderr}",
        text(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line: {stderr}");
    lines[0].to_owned()
}

#[tokio::test]
async fn test_mail_arrives_and_says_which_server_and_mechanism_were_used() {
    let bed = MailBed::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let from = bed.fresh_address("tm-from");
    let to = bed.fresh_address("tm-to");
    let cfg = config(
        dir.path(),
        &bed,
        bed.submission_port(),
        "notify",
        "secret-notify",
        &from,
    );

    let out = test_mail(&cfg, &to, false);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout} stderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "{}:{} (starttls)",
            bed.host(),
            bed.submission_port()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("DIGEST-MD5 as notify"), "{stdout}");

    let mails = bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
    assert_eq!(mails[0].subject(), Some("printwatch test mail"));
    assert_eq!(mails[0].from().as_deref(), Some(from.as_str()));
    let body = mails[0].text_body().unwrap_or_default();
    assert!(
        body.contains("printwatch test-mail") && body.contains("DIGEST-MD5"),
        "{body}"
    );
}

#[tokio::test]
async fn test_mail_with_json_prints_an_object() {
    let bed = MailBed::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let from = bed.fresh_address("tm-from");
    let to = bed.fresh_address("tm-to");
    let cfg = config(
        dir.path(),
        &bed,
        bed.submission_port(),
        "alice",
        "secret-alice",
        &from,
    );

    let out = test_mail(&cfg, &to, true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["to"], to.as_str());
    assert_eq!(v["server"]["port"], bed.submission_port());
    assert_eq!(v["server"]["security"], "starttls");
    assert_eq!(v["auth"]["mechanism"], "DIGEST-MD5");
    bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
}

#[test]
fn a_wrong_port_is_named_as_connect() {
    let bed = MailBed::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let cfg = config(
        dir.path(),
        &bed,
        port,
        "alice",
        "secret-alice",
        "alice@printwatch.test",
    );
    let line = one_error_line(&test_mail(&cfg, "x@printwatch.test", false));
    assert!(
        line.starts_with("error: test mail to x@printwatch.test failed at connect: "),
        "{line}"
    );
    assert!(line.contains(&port.to_string()), "{line}");
}

#[tokio::test]
async fn a_wrong_password_is_named_as_auth_and_nothing_is_delivered() {
    let bed = MailBed::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let to = bed.fresh_address("tm-to");
    let cfg = config(
        dir.path(),
        &bed,
        bed.submission_port(),
        "alice",
        "hunter2-wrong",
        "alice@printwatch.test",
    );
    let out = test_mail(&cfg, &to, false);
    let line = one_error_line(&out);
    assert!(
        line.starts_with(&format!("error: test mail to {to} failed at auth: 535 ")),
        "{line}"
    );
    assert!(!line.contains("hunter2") && !text(&out.stdout).contains("hunter2"));

    let out = test_mail(&cfg, &to, true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["step"], "auth");
    bed.ensure_mail_count_stays(&to, 0, Duration::from_millis(500))
        .await
        .unwrap();
}

#[test]
fn a_refused_recipient_is_named_as_recipient_with_the_servers_reply() {
    let bed = MailBed::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The bed refuses reject-*@ its domain at RCPT.
    let to = bed.fresh_address("reject");
    let cfg = config(
        dir.path(),
        &bed,
        bed.submission_port(),
        "alice",
        "secret-alice",
        "alice@printwatch.test",
    );
    let line = one_error_line(&test_mail(&cfg, &to, false));
    assert!(
        line.starts_with(&format!(
            "error: test mail to {to} failed at recipient: 550 5.1.1 <{to}>"
        )),
        "{line}"
    );
}

#[test]
fn a_config_without_smtp_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("printwatch.toml");
    std::fs::write(&file, "[mail]\nadmin_address = \"a@printwatch.test\"\n").unwrap();
    let out = test_mail(&file, "x@printwatch.test", false);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("[mail.smtp]"),
        "{}",
        text(&out.stderr)
    );
}
