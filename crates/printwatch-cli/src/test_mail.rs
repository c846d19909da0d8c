//! `printwatch test-mail ADDRESS`: sends a short mail with the configured
//! `[mail.smtp]` (and POP before SMTP) and, when it fails, names the step
//! exactly — connect, TLS, auth, sender, recipient, data — with the
//! server's own reply. Needs no agent: it uses printwatch-smtp, the same
//! code the notifier and the inbox send with, so a green test-mail means
//! they can send too.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use printwatch_config::{Config, Security};
use printwatch_smtp::{Mailer, SessionInfo, Step};
use serde_json::json;

use crate::Failure;

/// The subject of every test mail.
pub const SUBJECT: &str = "printwatch test mail";

pub async fn run(cfg: &Config, to: &str, as_json: bool) -> Result<(), Failure> {
    let config_failure = |message: String| Failure { code: 2, message };
    // Only the SMTP and POP-before-SMTP secrets and files matter here.
    if let Err(e) = cfg.require_resolved() {
        let ours: Vec<String> = e
            .problems
            .iter()
            .filter(|p| p.key.starts_with("mail.smtp") || p.key.starts_with("mail.pop_before_smtp"))
            .map(|p| format!("{}: {}", p.key, p.reason))
            .collect();
        if !ours.is_empty() {
            return Err(config_failure(format!(
                "invalid configuration: {}",
                ours.join("; ")
            )));
        }
    }
    let smtp = cfg
        .mail
        .smtp
        .as_ref()
        .ok_or_else(|| config_failure("[mail.smtp] is missing: nothing to send with".into()))?;
    let from = smtp
        .auth_address
        .clone()
        .or_else(|| cfg.mail.account.as_ref().map(|a| a.address.clone()))
        .or_else(|| cfg.mail.admin_address.clone())
        .ok_or_else(|| {
            config_failure(
                "no sender: set mail.smtp.auth_address, mail.account.address or mail.admin_address"
                    .into(),
            )
        })?;
    let mailer = Mailer::new(smtp, cfg.mail.pop_before_smtp.as_ref())
        .map_err(|e| config_failure(format!("invalid configuration: {e}")))?;

    let fail = |step: Step, permanent: bool, reason: String| -> Failure {
        if as_json {
            println!(
                "{}",
                json!({"ok": false, "to": to, "step": step_key(step), "permanent": permanent, "reason": reason})
            );
        }
        Failure::new(format!("test mail to {to} failed at {step}: {reason}"))
    };

    let to_mailbox: Mailbox = to
        .parse()
        .map_err(|e| fail(Step::Recipient, true, format!("invalid address: {e}")))?;
    let from_mailbox: Mailbox = from.parse().map_err(|e| {
        fail(
            Step::Sender,
            true,
            format!("invalid sender address {from}: {e}"),
        )
    })?;

    // Connect (POP before SMTP, TLS, AUTH) first, to tell what was used.
    let info = mailer
        .probe()
        .await
        .map_err(|e| fail(e.step, e.permanent, e.reason))?;
    let message = Message::builder()
        .from(from_mailbox)
        .to(to_mailbox)
        .subject(SUBJECT)
        .header(ContentType::TEXT_PLAIN)
        .body(body(&info, smtp.username.as_deref()))
        .map_err(|e| fail(Step::Data, true, format!("cannot build the message: {e}")))?;
    let sent = mailer
        .send(&from, &[to.to_owned()], &message.formatted())
        .await;
    mailer.close().await;
    let delivery = sent.map_err(|e| fail(e.step, e.permanent, e.reason))?;
    if let Some(r) = delivery.refused.first() {
        return Err(fail(Step::Recipient, r.permanent, r.reply.clone()));
    }

    let mechanism = info.mechanism.map(|m| m.name());
    if as_json {
        println!(
            "{}",
            json!({
                "ok": true,
                "to": to,
                "from": from,
                "server": {"host": info.host, "port": info.port, "security": security_name(info.security), "name": info.server_name},
                "auth": mechanism.map(|m| json!({"mechanism": m, "username": smtp.username})),
                "pop_before_smtp": info.pop_before_smtp,
            })
        );
    } else {
        println!("test mail sent to {to}");
        println!("  from:     {from}");
        println!(
            "  server:   {}:{} ({}), {}",
            info.host,
            info.port,
            security_name(info.security),
            info.server_name
        );
        match (mechanism, smtp.username.as_deref()) {
            (Some(m), Some(user)) => println!("  auth:     {m} as {user}"),
            _ => println!("  auth:     none"),
        }
        if info.pop_before_smtp {
            println!("  POP before SMTP: logged in first");
        }
    }
    Ok(())
}

fn body(info: &SessionInfo, user: Option<&str>) -> String {
    let auth = match (info.mechanism, user) {
        (Some(m), Some(u)) => format!("SMTP AUTH {m} as {u}"),
        _ => "no SMTP AUTH".to_owned(),
    };
    format!(
        "This is a test mail sent by `printwatch test-mail`.\n\n\
         It went through {}:{} ({}) with {auth}{}.\n\
         If you can read it, printwatch can send its notifications.\n",
        info.host,
        info.port,
        security_name(info.security),
        if info.pop_before_smtp {
            ", after POP before SMTP"
        } else {
            ""
        },
    )
}

fn security_name(s: Security) -> &'static str {
    match s {
        Security::None => "none",
        Security::StartTls => "starttls",
        Security::Tls => "tls",
    }
}

/// The step as a stable JSON key.
fn step_key(step: Step) -> &'static str {
    match step {
        Step::PopBeforeSmtp => "pop_before_smtp",
        Step::Connect => "connect",
        Step::Tls => "tls",
        Step::Auth => "auth",
        Step::Sender => "sender",
        Step::Recipient => "recipient",
        Step::Data => "data",
    }
}
