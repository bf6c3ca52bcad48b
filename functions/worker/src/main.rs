//! The worker Lambda's entry point: reads the settings once (failing at start, naming a missing
//! variable), builds the SDK clients and `domain::App` once, then hands every invocation (an
//! SQS batch, or the watchdog's schedule) to `worker::handle_invocation`. The behaviour is in the library (`src/lib.rs`), where it is tested.
//!
//! Environment: as the `api` function (see `aws::Settings`); `MAX_RECEIVES` must equal the
//! queue's redrive `maxReceiveCount`. The event source mapping must enable
//! `ReportBatchItemFailures`.

use std::sync::Arc;

use anyhow::Context;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    imap::tune_allocator();
    lambda_runtime::tracing::init_default_subscriber();
    let settings = aws::Settings::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))
        .context("reading the settings from the environment")?;

    let aws = aws::Aws::from_env().await;
    let reach = if settings.allow_private_targets {
        imap::Reach::Anywhere
    } else {
        imap::Reach::PublicAndPrivateNetworks
    };
    let mailboxes =
        Arc::new(imap::ImapMailboxes::new(imap::TlsConfig::native_roots()).reaching(reach));
    let tokens = Arc::new(oauth::OAuthClient::new()?);
    let deps = aws.adapters(&settings).into_deps(mailboxes, tokens);
    let app = domain::App::new(deps, settings.app_config());
    let max_receives = settings.max_receives;

    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let app = app.clone();
        async move {
            let deadline = event.context.deadline();
            worker::handle_invocation(&app, event.payload, deadline, max_receives)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
