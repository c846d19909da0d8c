//! The connection pool against the real bed: many concurrent sends share
//! at most `max_connections` connections, as Postfix's own log shows.

mod common;

use std::collections::BTreeSet;

use common::*;
use printwatch_config::Security;
use printwatch_smtp::Mailer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_sends_arrive_over_at_most_four_connections() {
    let bed = bed();
    let login = bed.fresh_address("pool");
    let to = bed.fresh_address("pool-rcpt");
    let mut cfg = smtp(&bed, bed.submission_port(), Security::StartTls, &login);
    cfg.max_connections = 4;
    let mailer = Mailer::new(&cfg, None).unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (mailer, login, to) = (mailer.clone(), login.clone(), to.clone());
        tasks.spawn(async move {
            let subject = format!("pool {i:03}");
            mailer
                .send(
                    &login,
                    std::slice::from_ref(&to),
                    &message(&login, &to, &subject, "x"),
                )
                .await
                .map(|d| d.accepted.len())
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 1);
    }

    let mails = bed
        .wait_for_mail(&to, 200, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let subjects: BTreeSet<String> = mails
        .iter()
        .filter_map(|m| m.subject().map(str::to_owned))
        .collect();
    assert_eq!(subjects.len(), 200, "every mail arrived once");

    mailer.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let sessions = loop {
        let s = sessions_of(bed.postfix_log(), &login);
        if s.iter().map(PostfixSession::messages).sum::<usize>() >= 200
            && s.iter().all(|s| s.closed)
            || tokio::time::Instant::now() >= deadline
        {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let total: usize = sessions.iter().map(PostfixSession::messages).sum();
    assert_eq!(total, 200, "Postfix logged {total} messages for {login}");
    assert!(
        (1..=4).contains(&sessions.len()),
        "{} SMTP connections for 200 mails with max_connections = 4",
        sessions.len()
    );
    assert!(
        sessions.iter().all(|s| s.closed && s.mentions("quit=1")),
        "closed with QUIT: {sessions:#?}"
    );
}
