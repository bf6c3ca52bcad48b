//! mailferry's AWS adapters: [`DynamoStore`] (the `Store` port on one DynamoDB table),
//! [`SqsQueue`] (the `Queue` port on an SQS standard queue with a dead-letter queue),
//! [`SesMailer`] (the `Mailer` port on SES v2) and [`KmsVault`] (the `Vault` port: envelope
//! encryption under a KMS key). [`Aws`] loads the SDK configuration once and hands out the
//! adapters; [`Settings`] is the typed environment both Lambda functions read at start.
//!
//! This is the only crate that imports `aws-sdk-*`, and it must never import axum, lambda,
//! SQLite or the IMAP client: it knows the ports of `domain` and the AWS services, nothing else.
//! The `Store` and `Queue` adapters pass the same conformance suites as the SQLite ones
//! (`functions/conformance`), run against moto in this crate's tests. The `testing` feature
//! adds test support for this crate and the Lambda binaries: `moto` (a moto_server process
//! and a ready-made deployment in it) and `runtime_api` (a Lambda Runtime API emulator).
//!
//! # The DynamoDB table
//!
//! One table, keys `pk` / `sk` (strings), one global secondary index `gsi1` on `gsi1pk` /
//! `gsi1sk` (strings, projection ALL), on-demand billing, TTL on the number attribute `expires`
//! (epoch seconds). Every entity is kept as its serde JSON document in the string attribute
//! `doc`, next to the few attributes that are keys, conditions or filters, so a new optional
//! field in the model needs no migration.
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | project | `PROJECT#<id>` | `META` | `doc`, `version`; `gsi1pk` = `PROJECTS`, `gsi1sk` = created (ns, 20 digits) `#<id>` |
//! | user | `USER#<id>` | `META` | `doc`, `version`, `project`, `src`, `tgt`, `name_lc`, `state`; `gsi1pk` = `PROJECT#<project>#S<shard>` (16 shards by user id), `gsi1sk` = `SRC#<source address>` |
//! | unique source address | `UNIQUE#<project>#<source address>` | `UNIQUE` | `user` |
//! | credentials | `CRED#<user>` | `META` | `sealed` (binary) |
//! | invite | `INVITE#<token hash>` | `META` | `doc`, `version`, `user`, `expires` |
//! | invite of a user | `INVITES#<user>` | `<token hash>` | `expires` |
//! | admin session | `SESSION#<token hash>` | `META` | `doc`, `expires` |
//! | setting | `SETTING#<key>` | `META` | `doc` (the value as a JSON string) |
//! | event | `EVENT#<user>` | time (ns, 20 digits) `#` append time `#` random | `doc` |
//! | folder checkpoint | `FOLDER#<user>` | `F#<source folder name>` | `doc`, `version` |
//! | limiter slot | `LIMIT#<key>` | `SLOT#<index, 5 digits>` | `holder`, `until` (epoch s), `expires` |
//!
//! Why this shape:
//! - Reads by key (`get_*`, `find_user_by_source` through the uniqueness item) are strongly
//!   consistent; only the listings of projects and users go through `gsi1`, which is eventually
//!   consistent (a user inserted a moment ago may be missing from a listing for a moment, never
//!   from a lookup).
//! - `gsi1` lists a project's users in source-address order (the order of `list_users`); the
//!   state and search filters run server side on `state`, `src`, `tgt` and `name_lc` (the
//!   display name lower-cased), the same fields the SQLite store matches.
//! - A project's users are spread over 16 index partitions by user id: every progress update
//!   rewrites the user item and so its index entry, and one partition takes about 1,000 writes
//!   a second, which a project with 1,000 jobs at once would pass. A listing merges the 16
//!   sorted partitions (and the unsharded one that items written before sharding keep until
//!   their next write) as it reads them.
//! - The pair (project, source address) is unique through the `UNIQUE#…` item, written in one
//!   `TransactWriteItems` with the user (and moved with it when an update changes the address).
//! - Every update is a `PutItem` conditional on `version` (a `StoreError::Conflict` when it
//!   fails, also for a missing item); every insert is conditional on `attribute_not_exists(pk)`
//!   (`StoreError::AlreadyExists`).
//! - A user's credentials, folders, events and invites live under keys derived from the user
//!   id, so `delete_user` finds them all with consistent queries (`INVITES#<user>` exists for
//!   that: an invite is looked up by its hash, and deleted by its user). The children go first
//!   and the user with its uniqueness item last, so an interrupted delete can simply be run again.
//! - Invites and sessions expire by TTL. An invite is kept 30 days past its expiry so the
//!   self-service page can still say "this link has expired" instead of "not found".

mod dynamo;
mod kms;
mod limiter;
#[cfg(feature = "testing")]
pub mod moto;
#[cfg(feature = "testing")]
pub mod runtime_api;
mod ses;
mod settings;
mod sqs;

pub use dynamo::DynamoStore;
pub use kms::{FORMAT_KMS_V1, KmsVault};
pub use ses::SesMailer;
pub use settings::{Settings, SettingsError, SignInSettings};
pub use sqs::SqsQueue;

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use domain::Deps;
use domain::mailbox::MailServers;
use domain::ports::SystemClock;

/// The AWS SDK configuration, loaded once per process; every adapter's client is built from it.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Aws {
    config: SdkConfig,
}

/// The region used against a local emulator, where it only has to be a valid name.
pub const LOCAL_REGION: &str = "us-east-1";

impl Aws {
    /// Region, credentials and endpoints from the environment, the way a Lambda function gets
    /// them (`AWS_REGION`, the execution role's credentials; `AWS_ENDPOINT_URL` is honoured
    /// too, which points a local run at an emulator).
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .load()
            .await;
        Aws { config }
    }

    /// Against a local emulator (moto) at `endpoint_url`, with static test credentials in
    /// [`LOCAL_REGION`].
    pub async fn local(endpoint_url: &str) -> Self {
        let credentials =
            aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "static");
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .region(LOCAL_REGION)
            .endpoint_url(endpoint_url)
            .credentials_provider(credentials)
            .load()
            .await;
        Aws { config }
    }

    /// The region the clients talk to, when one is configured.
    pub fn region(&self) -> Option<&str> {
        self.config.region().map(|r| r.as_ref())
    }

    /// The store on the table `table`.
    pub fn dynamo_store(&self, table: impl Into<String>) -> DynamoStore {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.config), table)
    }

    /// The queue at `queue_url`; `dead_letter_url` is the queue its redrive policy moves
    /// messages to (read by `dead_letters`; without it `dead_letters` is always empty).
    pub fn sqs_queue(
        &self,
        queue_url: impl Into<String>,
        dead_letter_url: Option<String>,
    ) -> SqsQueue {
        SqsQueue::new(
            aws_sdk_sqs::Client::new(&self.config),
            queue_url,
            dead_letter_url,
        )
    }

    /// The mailer sending as `from` (an SES-verified identity, optionally with a display name:
    /// `mailferry <noreply@example.com>`), through `configuration_set` when given.
    pub fn ses_mailer(
        &self,
        from: impl Into<String>,
        configuration_set: Option<String>,
    ) -> SesMailer {
        SesMailer::new(
            aws_sdk_sesv2::Client::new(&self.config),
            from,
            configuration_set,
        )
    }

    /// The vault under the KMS key `key_id` (key id, key ARN, alias name or alias ARN).
    pub fn kms_vault(&self, key_id: impl Into<String>) -> KmsVault {
        KmsVault::new(aws_sdk_kms::Client::new(&self.config), key_id)
    }

    /// All four adapters as `settings` describes them.
    pub fn adapters(&self, settings: &Settings) -> Adapters {
        Adapters {
            store: self.dynamo_store(&settings.table_name),
            queue: self.sqs_queue(&settings.queue_url, settings.dead_letter_queue_url.clone()),
            mailer: self.ses_mailer(&settings.mail_from, settings.ses_configuration_set.clone()),
            vault: self.kms_vault(&settings.kms_key_id),
        }
    }
}

/// The adapters of one deployment, built by [`Aws::adapters`].
#[derive(Debug, Clone)]
pub struct Adapters {
    pub store: DynamoStore,
    pub queue: SqsQueue,
    pub mailer: SesMailer,
    pub vault: KmsVault,
}

impl Adapters {
    /// The use cases' dependencies: these adapters, the wall clock, and `mailboxes` (the IMAP
    /// client, which this crate does not import) for both login checks and copy sessions.
    pub fn into_deps<M, T>(self, mailboxes: Arc<M>, tokens: Arc<T>) -> Deps
    where
        M: MailServers,
        T: domain::oauth::Tokens,
    {
        let store = Arc::new(self.store);
        Deps {
            limiter: store.clone(),
            store,
            queue: Arc::new(self.queue),
            mailer: Arc::new(self.mailer),
            vault: Arc::new(self.vault),
            clock: Arc::new(SystemClock),
            mailboxes,
            tokens,
        }
    }
}

/// The SDK's HTTPS client on rustls with the ring provider (the one the IMAP client uses too),
/// trusting the system's root certificates.
fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
