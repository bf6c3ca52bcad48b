//! [`SesMailer`]: the [`Mailer`] port on SES v2 `SendEmail` with simple (text) content.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use domain::error::MailError;
use domain::ports::{Mailer, OutgoingMail, SentMail};

/// Sends through SES v2. SES keeps no outbox mailferry could show, so [`Mailer::outbox`] is
/// `None`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub(crate) fn new(
        client: Client,
        from: impl Into<String>,
        configuration_set: Option<String>,
    ) -> Self {
        SesMailer {
            client,
            from: from.into(),
            configuration_set,
        }
    }

    /// The sender address mails go out as.
    pub fn from(&self) -> &str {
        &self.from
    }

    /// Asks SES to verify `identity` (an address or a domain). In SES's sandbox both the sender
    /// and every recipient must be verified; moto verifies at once. For tests and setup
    /// scripts; a deployment verifies its sender once, outside mailferry.
    pub async fn create_email_identity(&self, identity: &str) -> Result<(), MailError> {
        self.client
            .create_email_identity()
            .email_identity(identity)
            .send()
            .await
            .map_err(|e| MailError::Backend(format!("ses: {}", DisplayErrorContext(&e))))?;
        Ok(())
    }
}

/// A UTF-8 text part.
fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Backend(format!("ses: {e}")))
}

/// `Name <address>` for the To header: a quoted string for plain ASCII names, an RFC 2047
/// encoded word otherwise (SES requires non-ASCII display names to be encoded).
fn mailbox(name: &str, address: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        address.to_owned()
    } else if name
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\')
    {
        format!("\"{name}\" <{address}>")
    } else {
        format!("=?UTF-8?B?{}?= <{address}>", STANDARD.encode(name))
    }
}

/// The reason SES gave, with what to do about it when the cause is a known setup step.
fn refusal(error: &SendEmailError) -> Option<String> {
    let reason = error.message().unwrap_or("no reason given");
    match error {
        SendEmailError::MessageRejected(_) => Some(format!(
            "SES rejected the message: {reason} (while the account is in the SES sandbox, the \
             sender and every recipient must be verified identities)"
        )),
        SendEmailError::MailFromDomainNotVerifiedException(_) => Some(format!(
            "the sender's MAIL FROM domain is not verified in SES: {reason}"
        )),
        SendEmailError::AccountSuspendedException(_) => {
            Some(format!("the SES account may not send email: {reason}"))
        }
        SendEmailError::SendingPausedException(_) => Some(format!(
            "sending is paused for this SES account or configuration set: {reason}"
        )),
        _ => None,
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(Body::builder().text(content(&mail.text)?).build())
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .to_addresses(mailbox(&mail.to_name, mail.to.as_str()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error().and_then(refusal) {
                Some(reason) => Err(MailError::Refused(reason)),
                None => Err(MailError::Backend(format!(
                    "ses: {}",
                    DisplayErrorContext(&e)
                ))),
            },
        }
    }

    async fn outbox(&self, _limit: usize) -> Result<Option<Vec<SentMail>>, MailError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_quoted_or_encoded() {
        assert_eq!(mailbox("", "a@example.com"), "a@example.com");
        assert_eq!(
            mailbox("Ann Lee", "ann@example.com"),
            "\"Ann Lee\" <ann@example.com>"
        );
        assert_eq!(
            mailbox("Jürgen", "j@example.com"),
            "=?UTF-8?B?SsO8cmdlbg==?= <j@example.com>"
        );
        assert!(mailbox("say \"hi\"", "x@example.com").starts_with("=?UTF-8?B?"));
    }
}
