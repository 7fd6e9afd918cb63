//! E-mail against a real SMTP server (aiosmtpd) and the real command API: the order
//! e-mails and a password reset end to end, an SMTP outage that delays and loses nothing,
//! the dead letter after the last attempt, no duplicates after a restart, and `.eml` files
//! when no SMTP server is configured.
use std::{sync::Arc, time::Duration};

use bus::{Bus, InProcessBus, InProcessConfig};
use notifier::EmailConfig;
use serde_json::json;
use tokio::sync::oneshot;

use crate::{
    smtp::{SmtpSink, free_port},
    support::{Shop, TestDb, eventually},
};

crate::backend_tests!(
    order_mails_and_a_password_reset_reach_a_real_smtp_server,
    an_smtp_outage_delays_mail_and_loses_none,
    mail_is_dead_lettered_after_the_last_attempt,
    without_smtp_mail_is_written_as_eml_files,
);

/// A running notifier (e-mail side), stopped on drop.
struct Notifier {
    _stop: oneshot::Sender<()>,
}

fn config(smtp_url: Option<String>, outbox: &std::path::Path) -> EmailConfig {
    EmailConfig {
        smtp_url,
        from: "Emporium Shop <shop@emporium.test>".into(),
        outbox_dir: outbox.to_owned(),
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        poll_interval: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        ..EmailConfig::default()
    }
}

fn start(db: &TestDb, config: EmailConfig) -> Notifier {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(
        db.store.clone(),
        db.sql.clone(),
        InProcessConfig::default(),
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(notifier::run_email(
        bus,
        db.store.clone(),
        db.sql.clone(),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    Notifier { _stop: stop }
}

/// (status, attempts, last error, data) of every outbox row, oldest first.
async fn outbox(db: &TestDb) -> Vec<(String, i64, Option<String>, String)> {
    sqlx::query_as(
        "SELECT status, attempts, last_error, data FROM email_outbox ORDER BY created_at, id",
    )
    .fetch_all(&db.sql)
    .await
    .unwrap()
}

async fn order_mails_and_a_password_reset_reach_a_real_smtp_server(db: TestDb) {
    let Some(smtp) = SmtpSink::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shop = Shop::open(&db).await;
    let notifier = start(&db, config(Some(smtp.url()), dir.path()));

    shop.product("Linen shirt", "SHIRT-M", 1999, 10).await;
    let ada = shop.customer("Ada Lovelace", "ada@example.com").await;
    let shipped = shop.order(&ada, "SHIRT-M", 2).await;
    for status in ["PAID", "PACKED"] {
        shop.admin(
            &format!("/api/v1/orders/{shipped}/status"),
            &json!({"status": status}),
        )
        .await;
    }
    shop.admin(
        &format!("/api/v1/orders/{shipped}/shipments"),
        &json!({"carrier": "DHL", "trackingNumber": "JJD000123"}),
    )
    .await;
    shop.admin(
        &format!("/api/v1/orders/{shipped}/status"),
        &json!({"status": "DELIVERED"}),
    )
    .await;
    let cancelled = shop.order(&ada, "SHIRT-M", 1).await;
    let (status, _) = shop
        .post(
            &format!("/api/v1/orders/{cancelled}/cancel"),
            Some(&ada),
            &json!({"reason": "ordered twice"}),
        )
        .await;
    assert!(status.is_success());

    // Placed, shipped, delivered; placed, cancelled. Paid and packed send nothing.
    let mails = smtp.wait_for(5).await;
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject()).collect();
    assert_eq!(
        subjects,
        vec![
            format!("Your order {shipped} is confirmed"),
            format!("Your order {shipped} is on its way"),
            format!("Your order {shipped} was delivered"),
            format!("Your order {cancelled} is confirmed"),
            format!("Your order {cancelled} was cancelled"),
        ]
    );
    for mail in &mails {
        assert_eq!(mail.header("X-RcptTo"), Some("ada@example.com"));
        assert_eq!(mail.header("X-MailFrom"), Some("shop@emporium.test"));
        assert!(mail.header("To").unwrap().contains("Ada Lovelace"));
        assert!(mail.text().contains("Hello Ada Lovelace"), "{}", mail.raw);
        assert!(
            mail.html().contains("<p>Hello Ada Lovelace,</p>"),
            "{}",
            mail.raw
        );
    }
    let confirmation = mails[0].text();
    for expected in [
        "2 x Linen shirt",
        "SHIRT-M",
        "19.99 EUR",
        "39.98 EUR",
        "London",
    ] {
        assert!(
            confirmation.contains(expected),
            "{expected}: {confirmation}"
        );
    }
    assert!(mails[1].text().contains("Tracking number: JJD000123"));
    assert!(mails[4].text().contains("cancelled: ordered twice"));

    // A password reset: the token arrives by e-mail and works.
    let (status, _) = shop
        .post(
            "/api/v1/auth/password-reset",
            None,
            &json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    let mails = smtp.wait_for(6).await;
    let reset = &mails[5];
    assert_eq!(reset.subject(), "Reset your Emporium password");
    assert_eq!(reset.header("X-RcptTo"), Some("ada@example.com"));
    let token = reset
        .text()
        .lines()
        .map(str::trim)
        .find(|line| line.len() == 43 && !line.contains(' '))
        .expect("a token line")
        .to_owned();
    let (status, body) = shop
        .post(
            "/api/v1/auth/password-reset/confirm",
            None,
            &json!({"token": token, "newPassword": "a brand new password"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    // The reset revoked Ada's earlier tokens: she signs in again.
    let ada = shop.login("ada@example.com", "a brand new password").await;

    // Every row is sent, and the sent reset token is no longer stored anywhere.
    let rows = eventually("every row settled", Duration::from_secs(10), || async {
        let rows = outbox(&db).await;
        rows.iter().all(|r| r.0 == "sent").then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[5].3, "{}");

    // A restarted notifier resumes after what it has done: the next order is the only new mail.
    drop(notifier);
    let _again = start(&db, config(Some(smtp.url()), dir.path()));
    let third = shop.order(&ada, "SHIRT-M", 1).await;
    let mails = smtp.wait_for(7).await;
    assert_eq!(mails.len(), 7);
    assert_eq!(
        mails[6].subject(),
        format!("Your order {third} is confirmed")
    );
}

async fn an_smtp_outage_delays_mail_and_loses_none(db: TestDb) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let shop = Shop::open(&db).await;
    let _notifier = start(
        &db,
        config(Some(format!("smtp://127.0.0.1:{port}")), dir.path()),
    );
    shop.product("Linen shirt", "SHIRT-M", 1999, 10).await;
    let ada = shop.customer("Ada Lovelace", "ada@example.com").await;
    let order = shop.order(&ada, "SHIRT-M", 1).await;
    // Nobody listens: the attempts fail and the row waits.
    let failed = eventually("a failed attempt", Duration::from_secs(15), || async {
        outbox(&db)
            .await
            .into_iter()
            .find(|r| r.0 == "pending" && r.1 >= 2)
    })
    .await;
    assert!(failed.2.is_some(), "the error is kept");

    let Some(smtp) = SmtpSink::start_on(port).await else {
        return;
    };
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject(),
        format!("Your order {order} is confirmed")
    );
    eventually("the row is sent", Duration::from_secs(10), || async {
        let rows = outbox(&db).await;
        (rows.len() == 1 && rows[0].0 == "sent").then_some(())
    })
    .await;
    assert_eq!(smtp.messages().len(), 1);
}

async fn mail_is_dead_lettered_after_the_last_attempt(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let shop = Shop::open(&db).await;
    let _notifier = start(
        &db,
        EmailConfig {
            max_attempts: 3,
            ..config(
                Some(format!("smtp://127.0.0.1:{}", free_port())),
                dir.path(),
            )
        },
    );
    let ada = shop.customer("Ada Lovelace", "ada@example.com").await;
    let (status, _) = shop
        .post(
            "/api/v1/auth/password-reset",
            None,
            &json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    drop(ada);
    let dead = eventually("the dead letter", Duration::from_secs(20), || async {
        outbox(&db).await.into_iter().find(|r| r.0 == "dead")
    })
    .await;
    assert_eq!(dead.1, 3);
    assert!(dead.2.unwrap().contains("onnection"), "the cause is kept");
    assert_eq!(dead.3, "{}", "a dead reset token is wiped too");
}

async fn without_smtp_mail_is_written_as_eml_files(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    let shop = Shop::open(&db).await;
    let _notifier = start(&db, config(None, &outbox_dir));
    shop.product("Linen shirt", "SHIRT-M", 1999, 10).await;
    let ada = shop.customer("Ada Lovelace", "ada@example.com").await;
    let order = shop.order(&ada, "SHIRT-M", 1).await;
    let files = eventually("an .eml file", Duration::from_secs(10), || async {
        let files: Vec<std::path::PathBuf> = std::fs::read_dir(&outbox_dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        (!files.is_empty()).then_some(files)
    })
    .await;
    assert_eq!(files.len(), 1);
    let message = std::fs::read_to_string(&files[0]).unwrap();
    assert!(message.contains("To: \"Ada Lovelace\" <ada@example.com>"));
    assert!(message.contains(&format!("Subject: Your order {order} is confirmed")));
    assert!(message.contains("multipart/alternative"));
}
