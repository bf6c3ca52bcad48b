//! The SES mailer against moto: a mail from a verified sender is recorded by moto with its
//! recipient, subject and text; an unverified sender is refused with a clear reason.

use aws::moto::MotoServer;
use domain::error::MailError;
use domain::model::EmailAddress;
use domain::ports::{Mailer, OutgoingMail};

const LINK: &str = "https://migrate.example.com/migrate/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn invite() -> OutgoingMail {
    OutgoingMail {
        to: EmailAddress::parse("juergen@example.com").expect("valid address"),
        to_name: "Jürgen Müller".into(),
        subject: "Your mailbox is moving – please confirm ✓".into(),
        text: format!("Hello Jürgen,\n\nopen this link to move your mailbox:\n{LINK}\n"),
    }
}

/// The mails moto recorded for SES (v1 and v2 sends land in the same list).
fn sent_messages(moto: &MotoServer) -> Vec<serde_json::Value> {
    let data: serde_json::Value =
        serde_json::from_str(&moto.get("/moto-api/data.json").expect("moto data")).expect("JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn sends_an_invite_from_a_verified_sender() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let aws = moto.aws().await;
    let mailer = aws.ses_mailer("mailferry <noreply@mailferry.example>", None);
    mailer
        .create_email_identity("noreply@mailferry.example")
        .await
        .expect("verify the sender");

    // Act
    mailer.send(&invite()).await.expect("send");

    // Assert
    let sent = sent_messages(&moto);
    assert_eq!(sent.len(), 1, "one mail recorded: {sent:?}");
    let m = &sent[0];
    let to = m["destinations"]["ToAddresses"]
        .as_array()
        .expect("ToAddresses");
    assert_eq!(to.len(), 1, "{m}");
    let to = to[0].as_str().expect("an address");
    assert!(
        to.ends_with("<juergen@example.com>") && to.starts_with("=?UTF-8?B?"),
        "recipient with its encoded display name: {to}"
    );
    assert_eq!(m["subject"], invite().subject, "subject");
    assert!(
        m["body"].as_str().expect("body").contains(LINK),
        "the invite link is in the text: {m}"
    );
    assert_eq!(
        m["source"], "mailferry <noreply@mailferry.example>",
        "sender"
    );
    assert_eq!(
        mailer.outbox(10).await.expect("outbox"),
        None,
        "SES keeps no outbox"
    );
}

#[tokio::test]
async fn an_unverified_sender_is_refused_with_the_reason() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let aws = moto.aws().await;
    let mailer = aws.ses_mailer("nobody@unverified.example", None);

    // Act
    let result = mailer.send(&invite()).await;

    // Assert
    match result {
        Err(MailError::Refused(reason)) => {
            assert!(
                reason.contains("not verified") && reason.contains("sandbox"),
                "a reason that says what to do: {reason}"
            );
        }
        other => panic!("expected MailError::Refused, got {other:?}"),
    }
    assert!(sent_messages(&moto).is_empty(), "nothing recorded");
}
