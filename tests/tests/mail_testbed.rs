//! The local mail test bed (deploy/dev/mailbed.sh) does what the other
//! tests rely on: authenticated submission with every SASL mechanism of the
//! printer manual over STARTTLS and implicit TLS, refusal of wrong
//! passwords, a port that offers only PLAIN/LOGIN, and mailboxes readable
//! over IMAP and POP3 with each kind of connection security.
//!
//! The SMTP client side is `swaks`, an independent client, so these tests
//! check the bed rather than printwatch's own mail code.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use printwatch_testing::mail::{MailBed, Security};

const MECHANISMS: [&str; 4] = ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"];
const DELIVERY: Duration = Duration::from_secs(15);

/// How swaks connects.
#[derive(Clone, Copy, Debug)]
enum Tls {
    /// `--tls`: plain connection, STARTTLS required.
    StartTls,
    /// `--tlsc`: TLS from the first byte.
    OnConnect,
}

struct Swaks {
    success: bool,
    code: Option<i32>,
    /// stdout and stderr together: the whole dialogue as swaks shows it.
    transcript: String,
}

async fn swaks(bed: &MailBed, port: u16, tls: Tls, extra: &[&str]) -> Result<Swaks> {
    let mut cmd = tokio::process::Command::new("swaks");
    cmd.args(["--server", bed.host(), "--port", &port.to_string()])
        .arg(match tls {
            Tls::StartTls => "--tls",
            Tls::OnConnect => "--tlsc",
        })
        .arg("--tls-verify")
        .arg("--tls-ca-path")
        .arg(bed.ca_file())
        .args(["--timeout", "20", "--helo", "swaks.printwatch.test"])
        .args(extra)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .context("swaks did not finish within 60 s")?
        .context("running swaks (installed by deploy/dev/mailbed.sh start)")?;
    let mut transcript = String::from_utf8_lossy(&out.stdout).into_owned();
    transcript.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Swaks {
        success: out.status.success(),
        code: out.status.code(),
        transcript,
    })
}

/// An authenticated submission of one mail from `user` to `to`.
async fn submit(
    bed: &MailBed,
    (port, tls): (u16, Tls),
    mechanism: &str,
    user: &str,
    password: &str,
    to: &str,
    subject: &str,
) -> Result<Swaks> {
    let header = format!("Subject: {subject}");
    let from = if user.contains('@') {
        user.to_owned()
    } else {
        format!("{user}@{}", bed.domain())
    };
    swaks(
        bed,
        port,
        tls,
        &[
            "--auth",
            mechanism,
            "--auth-user",
            user,
            "--auth-password",
            password,
            "--from",
            &from,
            "--to",
            to,
            "--header",
            &header,
            "--body",
            "sent by the mail test bed test",
        ],
    )
    .await
}

/// The mechanisms of the `250-AUTH` line that swaks received after TLS was
/// up (`<~` lines), or `None` if no AUTH line came.
fn auth_mechanisms_after_tls(transcript: &str) -> Option<Vec<String>> {
    transcript.lines().find_map(|l| {
        let rest = l.strip_prefix("<~  250")?;
        let rest = rest.strip_prefix('-').or_else(|| rest.strip_prefix(' '))?;
        let mechs = rest.strip_prefix("AUTH ")?;
        Some(mechs.split_whitespace().map(str::to_owned).collect())
    })
}

async fn mechanisms_deliver(port: u16, tls: Tls, user: &str, password: &str) -> Result<()> {
    let bed = MailBed::shared()?;
    let to = bed.fresh_address("t-mech");
    for mech in MECHANISMS {
        let subject = format!("submitted with {mech} on port {port}");
        let run = submit(&bed, (port, tls), mech, user, password, &to, &subject).await?;
        assert!(
            run.success,
            "swaks AUTH {mech} as {user} on port {port} ({tls:?}) failed with {:?}:\n{}",
            run.code, run.transcript
        );
        assert!(
            run.transcript.contains(&format!("AUTH {mech}")) && run.transcript.contains("<~  235 "),
            "swaks did not authenticate with {mech}:\n{}",
            run.transcript
        );
    }
    let mails = bed.wait_for_mail(&to, MECHANISMS.len(), DELIVERY).await?;
    let mut subjects: Vec<&str> = mails.iter().filter_map(|m| m.subject()).collect();
    subjects.sort_unstable();
    let mut expected: Vec<String> = MECHANISMS
        .iter()
        .map(|m| format!("submitted with {m} on port {port}"))
        .collect();
    expected.sort_unstable();
    assert_eq!(subjects, expected, "mails in {to}: {mails:#?}");
    for mail in &mails {
        assert_eq!(mail.to(), std::slice::from_ref(&to));
        assert_eq!(
            mail.text_body().as_deref().map(str::trim),
            Some("sent by the mail test bed test")
        );
    }
    Ok(())
}

#[tokio::test]
async fn submission_port_accepts_each_sasl_mechanism_over_starttls() -> Result<()> {
    let bed = MailBed::shared()?;
    // A named user, logging in without the realm.
    mechanisms_deliver(
        bed.submission_port(),
        Tls::StartTls,
        "alice",
        &bed.password_for("alice"),
    )
    .await
}

#[tokio::test]
async fn smtps_port_accepts_each_sasl_mechanism_over_implicit_tls() -> Result<()> {
    let bed = MailBed::shared()?;
    // Any address of the test domain, logging in as user@realm.
    let user = bed.fresh_address("t-sender");
    let password = bed.password_for(&user);
    mechanisms_deliver(bed.smtps_port(), Tls::OnConnect, &user, &password).await
}

#[tokio::test]
async fn a_named_user_can_log_in_with_and_without_the_realm() -> Result<()> {
    let bed = MailBed::shared()?;
    let to = bed.fresh_address("t-realm");
    for user in ["notify", "notify@printwatch.test"] {
        for mech in ["DIGEST-MD5", "CRAM-MD5"] {
            let run = submit(
                &bed,
                (bed.submission_port(), Tls::StartTls),
                mech,
                user,
                &bed.password_for(user),
                &to,
                "realm",
            )
            .await?;
            assert!(
                run.success,
                "AUTH {mech} as {user} failed:\n{}",
                run.transcript
            );
        }
    }
    bed.wait_for_mail(&to, 4, DELIVERY).await?;
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_535_and_nothing_is_delivered() -> Result<()> {
    let bed = MailBed::shared()?;
    let to = bed.fresh_address("t-wrongpw");
    let stranger = bed.fresh_address("t-stranger");
    let attempts = [
        ("alice", "not-her-password".to_owned()),
        // A named user does not fall through to the catch-all password.
        ("alice", bed.default_password().to_owned()),
        (stranger.as_str(), "not-the-default".to_owned()),
    ];
    for (user, password) in &attempts {
        for mech in MECHANISMS {
            for (port, tls) in [
                (bed.submission_port(), Tls::StartTls),
                (bed.smtps_port(), Tls::OnConnect),
            ] {
                let run = submit(
                    &bed,
                    (port, tls),
                    mech,
                    user,
                    password,
                    &to,
                    "must not arrive",
                )
                .await?;
                assert!(
                    !run.success,
                    "AUTH {mech} as {user} with a wrong password succeeded on port {port}:\n{}",
                    run.transcript
                );
                assert!(
                    run.transcript.contains("<~* 535 "),
                    "AUTH {mech} as {user} on port {port} was not refused with 535:\n{}",
                    run.transcript
                );
                assert!(
                    !run.transcript.contains("MAIL FROM"),
                    "swaks went on after a failed AUTH:\n{}",
                    run.transcript
                );
            }
        }
    }
    bed.ensure_mail_count_stays(&to, 0, Duration::from_secs(1))
        .await?;
    Ok(())
}

#[tokio::test]
async fn submission_ports_refuse_unauthenticated_senders() -> Result<()> {
    let bed = MailBed::shared()?;
    let to = bed.fresh_address("t-noauth");
    for (port, tls) in [
        (bed.submission_port(), Tls::StartTls),
        (bed.smtps_port(), Tls::OnConnect),
        (bed.submission_plain_only_port(), Tls::StartTls),
    ] {
        let from = format!("anyone@{}", bed.domain());
        let run = swaks(&bed, port, tls, &["--from", &from, "--to", &to]).await?;
        assert!(
            !run.success,
            "unauthenticated mail was accepted on port {port}:\n{}",
            run.transcript
        );
        assert!(
            run.transcript.contains("<~* 554 "),
            "port {port}:\n{}",
            run.transcript
        );
    }
    bed.ensure_mail_count_stays(&to, 0, Duration::from_millis(500))
        .await?;
    Ok(())
}

#[tokio::test]
async fn submission_offers_auth_only_after_starttls() -> Result<()> {
    let bed = MailBed::shared()?;
    let run = swaks(
        &bed,
        bed.submission_port(),
        Tls::StartTls,
        &["--quit-after", "HELO"],
    )
    .await?;
    assert!(run.success, "{}", run.transcript);
    assert!(
        !run.transcript
            .lines()
            .any(|l| l.starts_with("<-  250-AUTH") || l.starts_with("<-  250 AUTH")),
        "AUTH was offered before STARTTLS:\n{}",
        run.transcript
    );
    assert_eq!(
        auth_mechanisms_after_tls(&run.transcript),
        Some(MECHANISMS.iter().map(|m| (*m).to_owned()).collect()),
        "{}",
        run.transcript
    );
    Ok(())
}

#[tokio::test]
async fn plain_only_port_offers_plain_and_login_but_not_cram_md5_or_digest_md5() -> Result<()> {
    let bed = MailBed::shared()?;
    let port = bed.submission_plain_only_port();
    let run = swaks(&bed, port, Tls::StartTls, &["--quit-after", "HELO"]).await?;
    assert!(run.success, "{}", run.transcript);
    assert_eq!(
        auth_mechanisms_after_tls(&run.transcript),
        Some(vec!["PLAIN".to_owned(), "LOGIN".to_owned()]),
        "EHLO after STARTTLS on port {port}:\n{}",
        run.transcript
    );

    // A client insisting on a challenge-response mechanism gets nowhere…
    let to = bed.fresh_address("t-plainonly");
    for mech in ["CRAM-MD5", "DIGEST-MD5"] {
        let run = submit(
            &bed,
            (port, Tls::StartTls),
            mech,
            "alice",
            &bed.password_for("alice"),
            &to,
            "no",
        )
        .await?;
        assert!(
            !run.success,
            "AUTH {mech} worked on the PLAIN/LOGIN-only port:\n{}",
            run.transcript
        );
    }
    // …while PLAIN and LOGIN work there.
    for mech in ["PLAIN", "LOGIN"] {
        let run = submit(
            &bed,
            (port, Tls::StartTls),
            mech,
            "alice",
            &bed.password_for("alice"),
            &to,
            mech,
        )
        .await?;
        assert!(
            run.success,
            "AUTH {mech} failed on port {port}:\n{}",
            run.transcript
        );
    }
    let mails = bed.wait_for_mail(&to, 2, DELIVERY).await?;
    let mut subjects: Vec<&str> = mails.iter().filter_map(|m| m.subject()).collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["LOGIN", "PLAIN"]);
    Ok(())
}

/// Sends one mail with a Japanese subject to a fresh address and waits for
/// it; returns the address, subject and body.
async fn deliver_one(bed: &MailBed, prefix: &str) -> Result<(String, String, String)> {
    let to = bed.fresh_address(prefix);
    let from = format!("printer1@{}", bed.domain());
    let subject = format!(
        "アラート発生通知:トナー切れ {}",
        &to[..to.find('@').unwrap_or(to.len())]
    );
    let body = "トナーがなくなりました。\nline two\n.line starting with a dot\n".to_owned();
    bed.send_plain(&from, &to, &subject, &body).await?;
    bed.wait_for_mail(&to, 1, DELIVERY).await?;
    Ok((to, subject, body))
}

fn assert_is_the_mail(
    mail: &printwatch_testing::mail::ReceivedMail,
    to: &str,
    subject: &str,
    body: &str,
    how: &str,
) {
    assert_eq!(
        mail.subject(),
        Some(subject),
        "subject read over {how}: {mail:#?}"
    );
    assert_eq!(
        mail.from().as_deref(),
        Some("printer1@printwatch.test"),
        "{how}"
    );
    assert_eq!(mail.to(), [to.to_owned()], "{how}");
    assert_eq!(
        mail.text_body().map(|b| b.replace("\r\n", "\n")).as_deref(),
        Some(body),
        "body read over {how}"
    );
    assert_eq!(mail.header("Delivered-To").as_deref(), Some(to), "{how}");
}

#[tokio::test]
async fn mail_to_a_fresh_user_can_be_read_back_over_imap_plain_starttls_and_implicit_tls()
-> Result<()> {
    let bed = MailBed::shared()?;
    let (to, subject, body) = deliver_one(&bed, "t-imap").await?;
    for security in Security::ALL {
        let mails = bed.imap_fetch_all(&to, security).await?;
        assert_eq!(mails.len(), 1, "IMAP {security:?}: {mails:#?}");
        assert_is_the_mail(
            &mails[0],
            &to,
            &subject,
            &body,
            &format!("IMAP {security:?}"),
        );
    }
    assert_eq!(bed.mailbox_count(&to).await?, 1);
    Ok(())
}

#[tokio::test]
async fn mail_to_a_fresh_user_can_be_read_back_over_pop3_plain_stls_and_implicit_tls() -> Result<()>
{
    let bed = MailBed::shared()?;
    let (to, subject, body) = deliver_one(&bed, "t-pop3").await?;
    for security in Security::ALL {
        let mails = bed.pop3_fetch_all(&to, security).await?;
        assert_eq!(mails.len(), 1, "POP3 {security:?}: {mails:#?}");
        assert_is_the_mail(
            &mails[0],
            &to,
            &subject,
            &body,
            &format!("POP3 {security:?}"),
        );
    }
    Ok(())
}

#[tokio::test]
async fn mailbox_logins_with_a_wrong_password_are_refused() -> Result<()> {
    let bed = MailBed::shared()?;
    let to = bed.fresh_address("t-imapwrong");
    for (login, password) in [
        (to.as_str(), "definitely-wrong"),
        ("bob", bed.default_password()),
    ] {
        for security in Security::ALL {
            let err = bed
                .imap_fetch_all_as(login, password, security)
                .await
                .expect_err("IMAP login with a wrong password worked");
            assert!(
                format!("{err:#}").contains(&format!("LOGIN as {login} refused")),
                "IMAP {security:?}: {err:#}"
            );
            let err = bed
                .pop3_fetch_all_as(login, password, security)
                .await
                .expect_err("POP3 login with a wrong password worked");
            assert!(
                format!("{err:#}").contains(&format!("login as {login} refused")),
                "POP3 {security:?}: {err:#}"
            );
        }
    }
    // The right password still works at once: no penalty after failures.
    assert_eq!(bed.mailbox_count(&to).await?, 0);
    Ok(())
}

#[tokio::test]
async fn waiting_for_mail_that_never_comes_fails_with_a_clear_message() -> Result<()> {
    let bed = MailBed::shared()?;
    let to = bed.fresh_address("t-never");
    let err = bed
        .wait_for_mail(&to, 1, Duration::from_millis(300))
        .await
        .expect_err("waiting for mail that was never sent succeeded");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&to) && msg.contains("received 0 mail(s)"),
        "{msg}"
    );
    Ok(())
}
