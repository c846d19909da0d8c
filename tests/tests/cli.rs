//! The `printwatch` operator command, run as a user runs it.

use std::time::Duration;

use printwatch_testing::agent::AgentFixture;
use printwatch_testing::process::run_bin;

const WAIT: Duration = Duration::from_secs(20);

const FLEET: &str = r#"
[mail]
language = "en"

[[devices]]
id = "p1"
name = "Lobby printer"
location = "1F lobby"
serial = "C6020-0001"
mail_address = "printer1@printwatch.test"
source = "simulated"
host_name = "lobby-c6020"
addresses = ["192.0.2.10"]
"#;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn config_check_names_the_path_of_a_misspelled_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[mail.smtp]\nhost = \"smtp.example.test\"\nprot = 25\n",
    )
    .unwrap();
    let out = run_bin("printwatch", &["config", "check", file.to_str().unwrap()]).unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {} stderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("mail.smtp.prot"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_check_names_a_missing_secret_file_but_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.toml");
    std::fs::write(
        &file,
        "[mail.smtp]\nhost = \"smtp.example.test\"\nport = 70000\nauth = true\nusername = \"u\"\npassword_file = \"/nonexistent/smtp-password\"\n\n[mail.account]\naddress = \"n@example.test\"\nusername = \"n\"\npassword = \"hunter2-very-secret\"\n",
    )
    .unwrap();
    let out = run_bin("printwatch", &["config", "check", file.to_str().unwrap()]).unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/smtp-password"), "{stderr}");
    assert!(stderr.contains("mail.smtp.port"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!text(&out.stdout).contains("hunter2"));
}

#[test]
fn config_check_accepts_the_documented_example() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/printwatch.example.toml"
    );
    // The example names secrets and certificates of a deployment, so only
    // the file itself can be checked here.
    let out = run_bin("printwatch", &["config", "check", "--file-only", example]).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("valid"));
}

#[tokio::test]
async fn status_prints_the_report_with_the_active_conditions() {
    let fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let cfg = fx.config_path.to_str().unwrap().to_owned();

    let out = run_bin(
        "printwatch",
        &[
            "--config",
            &cfg,
            "raise",
            "p1",
            "cover_open",
            "--detail",
            "Front cover",
        ],
    )
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("raised cover_open on p1"));

    let out = run_bin("printwatch", &["--config", &cfg, "status", "p1"]).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("Device status: Lobby printer"), "{report}");
    assert!(report.contains("Location: 1F lobby"), "{report}");
    assert!(
        report.contains("Cover open [cover_open] — Front cover"),
        "{report}"
    );
    assert!(report.contains("Host name: lobby-c6020"), "{report}");
    assert!(report.contains("IPv4 address: 192.0.2.10"), "{report}");
    assert!(report.contains("Black toner: 100%"), "{report}");

    let out = run_bin("printwatch", &["--config", &cfg, "--json", "devices"]).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["id"], "p1");
    assert_eq!(json[0]["state"], "error");
    assert_eq!(json[0]["conditions"][0]["item"], "cover_open");

    let out = run_bin(
        "printwatch",
        &["--config", &cfg, "clear", "p1", "cover_open"],
    )
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run_bin("printwatch", &["--config", &cfg, "status", "p1"]).unwrap();
    assert!(
        text(&out.stdout).contains("State: ready"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn commands_fail_with_a_one_line_reason() {
    let fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let cfg = fx.config_path.to_str().unwrap().to_owned();

    let out = run_bin("printwatch", &["--config", &cfg, "status", "nope"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: not found"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    let out = run_bin(
        "printwatch",
        &["--config", &cfg, "raise", "p1", "toner_emtpy"],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown alert item `toner_emtpy`"),
        "{}",
        text(&out.stderr)
    );

    let port = printwatch_testing::process::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let out = run_bin("printwatch", &["--agent", &url, "devices"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach the agent"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn config_check_reads_the_secrets_a_valid_file_names_unless_told_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("valid.toml");
    std::fs::write(
        &file,
        "[nats]\nurl = \"nats://127.0.0.1:4222\"\ntoken_file = \"missing-token\"\n",
    )
    .unwrap();
    let out = run_bin("printwatch", &["config", "check", file.to_str().unwrap()]).unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nats.token_file"), "{stderr}");
    assert!(stderr.contains("missing-token"), "{stderr}");

    let out = run_bin(
        "printwatch",
        &["config", "check", "--file-only", file.to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
