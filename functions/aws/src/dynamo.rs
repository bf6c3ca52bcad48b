//! [`DynamoStore`]: the [`Store`] port on one DynamoDB table. The key schema and the reasons
//! for it are in the crate documentation.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, PutRequest,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TransactWriteItem, WriteRequest,
};
use contract::{SkippedItem, UserState};
use domain::audit::AuditEntry;
use domain::error::StoreError;
use domain::model::{
    AdminSession, EmailAddress, FolderState, Invite, MailUser, Project, ProjectId, Sealed,
    UserEvent, UserId, UserQuery,
};
use domain::ports::Store;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

type Item = HashMap<String, AttributeValue>;

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
const GSI1: &str = "gsi1";
const GSI1PK: &str = "gsi1pk";
const GSI1SK: &str = "gsi1sk";
const META: &str = "META";
/// The TTL attribute (epoch seconds).
pub(crate) const EXPIRES: &str = "expires";
/// How long an expired invite is kept, so its link can still say "expired".
const INVITE_KEEP_AFTER_EXPIRY: time::Duration = time::Duration::days(30);
/// How often a transaction is retried when DynamoDB cancels it for a conflict with another
/// transaction on the same items (not a failed condition: that is an answer).
const TRANSACTION_ATTEMPTS: u32 = 6;
/// BatchWriteItem takes at most 25 requests.
const BATCH_WRITE_MAX: usize = 25;

/// The [`Store`] on one DynamoDB table. Cheap to clone (the SDK client is shared).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl DynamoStore {
    pub(crate) fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// The DynamoDB client, for tests that look at the raw items.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table this store uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with the schema of the crate documentation (on-demand billing, the
    /// `gsi1` index, TTL on `expires`) and waits until it is active. For tests and local runs;
    /// a deployment's table comes from the template, which must match this.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let string_key = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(backend)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(backend)
        };
        let gsi1 = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key(GSI1PK, KeyType::Hash)?)
            .key_schema(key(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(backend)?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_key(PK)?)
            .attribute_definitions(string_key(SK)?)
            .attribute_definitions(string_key(GSI1PK)?)
            .attribute_definitions(string_key(GSI1SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .global_secondary_indexes(gsi1)
            .send()
            .await
            .map_err(backend)?;
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(backend)?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(EXPIRES)
                    .enabled(true)
                    .build()
                    .map_err(backend)?,
            )
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Building blocks

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.item)
    }

    async fn get_doc<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get(pk, sk).await?.as_ref().map(doc_of).transpose()
    }

    /// A `PutItem` under `condition`; a failed condition is reported as `on_failure`.
    async fn put(
        &self,
        item: Item,
        condition: Condition,
        on_failure: fn() -> StoreError,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        if let Some((expression, names, values)) = condition.parts() {
            request = request
                .condition_expression(expression)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(values);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(on_failure()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, pk: String, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Runs a transaction, retrying it while DynamoDB cancels it only for contention (another
    /// transaction held one of its items, throttling). Returns the cancellation codes (one per
    /// action, `None` for an action that was fine) when a condition failed.
    async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<(), Cancelled> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let codes: Vec<Option<String>> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
                    .collect(),
                _ => return Err(Cancelled::Backend(backend(err))),
            };
            if codes
                .iter()
                .flatten()
                .any(|c| c == "ConditionalCheckFailed")
            {
                return Err(Cancelled::Conditions(codes));
            }
            // Only contention (another transaction on the same items, throttling) is worth
            // another attempt; anything else (a validation error, an item too large) is not.
            let transient = codes.iter().flatten().all(|c| {
                matches!(
                    c.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
            if !transient || attempt >= TRANSACTION_ATTEMPTS {
                return Err(Cancelled::Backend(StoreError::Backend(format!(
                    "dynamodb: transaction cancelled after {attempt} attempt(s): {codes:?}"
                ))));
            }
            tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
        }
    }

    /// The keys of every item in the partition `pk` (consistent read).
    /// The documents of a partition, highest sort key first, only keys below `below` when
    /// given, at most `limit` (events and audit entries: their sort keys start with the time).
    async fn newest_first<T: DeserializeOwned>(
        &self,
        pk: String,
        below: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let page = i32::try_from(limit).unwrap_or(i32::MAX);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND #sk < :below")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(pk))
            // Sort keys are digits, '#', '-' and hex: all below '~', so no bound means all.
            .expression_attribute_values(":below", s(below.unwrap_or("~").to_owned()))
            .scan_index_forward(false)
            .limit(page);
        let mut pages = query.into_paginator().items().send();
        let mut docs = Vec::new();
        while docs.len() < limit
            && let Some(item) = pages.next().await
        {
            docs.push(doc_of(&item.map_err(backend)?)?);
        }
        Ok(docs)
    }

    /// A strongly consistent Query of one partition (`#pk = :pk`; callers may narrow the key
    /// condition with `#sk`).
    pub(crate) fn partition_query(&self, pk: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(pk))
    }

    pub(crate) async fn partition_keys(&self, pk: String) -> Result<Vec<Item>, StoreError> {
        let query = self
            .partition_query(pk)
            .expression_attribute_names("#sk", SK)
            .projection_expression("#pk, #sk");
        self.query_all(query).await
    }

    pub(crate) async fn query_all(
        &self,
        query: QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut pages = query.into_paginator().items().send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(backend)?);
        }
        Ok(items)
    }

    /// Deletes items by key with BatchWriteItem, retrying what DynamoDB leaves unprocessed.
    pub(crate) async fn delete_keys(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|k| {
                Ok(WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(k))
                            .build()
                            .map_err(backend)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_batch(requests).await
    }

    /// Puts whole items (no condition) with BatchWriteItem.
    async fn put_items(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .map_err(backend)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_batch(requests).await
    }

    /// BatchWriteItem in batches of 25, retrying what DynamoDB leaves unprocessed.
    async fn write_batch(&self, all: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in all.chunks(BATCH_WRITE_MAX) {
            let mut requests = chunk.to_vec();
            let mut attempt = 0u32;
            while !requests.is_empty() {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                }
                attempt += 1;
                if attempt > 10 {
                    return Err(StoreError::Backend(
                        "DynamoDB kept leaving writes unprocessed".into(),
                    ));
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(backend)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// The keys of a user's folder-detail items under one prefix.
    async fn detail_keys(&self, user: UserId, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(folder_pk(user)))
            .expression_attribute_values(":prefix", s(prefix))
            .projection_expression("#pk, #sk");
        self.query_all(query).await
    }

    /// A query per index partition of the project's users (`user_shard_keys`), each in
    /// source-address order.
    fn users_of_project(&self, project: ProjectId) -> Vec<QueryFluentBuilder> {
        user_shard_keys(project)
            .map(|gpk| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI1)
                    .key_condition_expression("#gpk = :gpk AND begins_with(#gsk, :src)")
                    .expression_attribute_names("#gpk", GSI1PK)
                    .expression_attribute_names("#gsk", GSI1SK)
                    .expression_attribute_values(":gpk", s(gpk))
                    .expression_attribute_values(":src", s("SRC#"))
            })
            .collect()
    }

    /// Puts the user over the stored one, moving its uniqueness item from the stored source
    /// address (and project) to the new one, all in one transaction.
    async fn move_user(
        &self,
        user: &MailUser,
        item: Item,
        expected_version: u64,
        old_project: String,
        old_source: String,
    ) -> Result<(), StoreError> {
        let uid = user.id.to_string();
        let put_user = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#v = :expected AND #src = :src AND #project = :project")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#src", "src")
            .expression_attribute_names("#project", "project")
            .expression_attribute_values(":expected", n(expected_version))
            .expression_attribute_values(":src", s(old_source.clone()))
            .expression_attribute_values(":project", s(old_project.clone()))
            .build()
            .map_err(backend)?;
        let release_old = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                unique_pk_raw(&old_project, &old_source),
                "UNIQUE",
            )))
            .condition_expression("#user = :uid")
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":uid", s(uid.clone()))
            .build()
            .map_err(backend)?;
        let claim_new = self.unique_put(user)?;
        let actions = vec![
            TransactWriteItem::builder().put(put_user).build(),
            TransactWriteItem::builder().delete(release_old).build(),
            TransactWriteItem::builder().put(claim_new).build(),
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Backend(e)) => Err(e),
            Err(Cancelled::Conditions(codes)) => {
                if failed(&codes, 0) {
                    Err(StoreError::Conflict)
                } else if failed(&codes, 2) {
                    Err(StoreError::AlreadyExists)
                } else {
                    Err(StoreError::Backend(format!(
                        "the uniqueness item of user {uid} does not point to it ({codes:?})"
                    )))
                }
            }
        }
    }

    /// The uniqueness item of the user's (project, source address), claimed only when free.
    fn unique_put(&self, user: &MailUser) -> Result<Put, StoreError> {
        let mut item = key(unique_pk(user.project_id, &user.source_email), "UNIQUE");
        item.insert("user".into(), s(user.id.to_string()));
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(backend)
    }

    /// Deletes the user's item with its uniqueness item, when the stored user still has the
    /// version and address read just before.
    async fn delete_user_item(&self, uid: &str) -> Result<(), StoreError> {
        for _ in 0..TRANSACTION_ATTEMPTS {
            let Some(item) = self.get(user_pk_raw(uid), META).await? else {
                return Ok(());
            };
            let version = attr_n(&item, "version")?;
            let project = attr_s(&item, "project")?.to_owned();
            let source = attr_s(&item, "src")?.to_owned();
            let delete_user = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_pk_raw(uid), META)))
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(version))
                .build()
                .map_err(backend)?;
            let delete_unique = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(unique_pk_raw(&project, &source), "UNIQUE")))
                .condition_expression("#user = :uid")
                .expression_attribute_names("#user", "user")
                .expression_attribute_values(":uid", s(uid))
                .build()
                .map_err(backend)?;
            let actions = vec![
                TransactWriteItem::builder().delete(delete_user).build(),
                TransactWriteItem::builder().delete(delete_unique).build(),
            ];
            match self.transact(actions).await {
                Ok(()) => return Ok(()),
                Err(Cancelled::Backend(e)) => return Err(e),
                // The user changed since it was read: read it again.
                Err(Cancelled::Conditions(codes)) if failed(&codes, 0) => continue,
                Err(Cancelled::Conditions(_)) => {
                    // The uniqueness item is not this user's (it never should be): the user
                    // alone goes, the other user's claim stays.
                    tracing::warn!(
                        user = uid,
                        "deleting a user whose uniqueness item is missing"
                    );
                    return self.delete(user_pk_raw(uid), META).await;
                }
            }
        }
        Err(StoreError::Backend(format!(
            "user {uid} kept changing while it was being deleted"
        )))
    }
}

/// What a transaction's cancellation says.
enum Cancelled {
    /// A condition failed. One code per action; `None` where the action was fine.
    Conditions(Vec<Option<String>>),
    Backend(StoreError),
}

fn failed(codes: &[Option<String>], index: usize) -> bool {
    codes
        .get(index)
        .and_then(|c| c.as_deref())
        .is_some_and(|c| c == "ConditionalCheckFailed")
}

/// The condition of a write.
enum Condition {
    None,
    /// The item does not exist yet.
    Absent,
    /// The stored item has this version (so it exists).
    Version(u64),
}

type ConditionParts = (
    &'static str,
    HashMap<String, String>,
    Option<HashMap<String, AttributeValue>>,
);

impl Condition {
    fn parts(&self) -> Option<ConditionParts> {
        match self {
            Condition::None => None,
            Condition::Absent => Some((
                "attribute_not_exists(#pk)",
                HashMap::from([("#pk".to_owned(), PK.to_owned())]),
                None,
            )),
            Condition::Version(v) => Some((
                "#v = :expected",
                HashMap::from([("#v".to_owned(), "version".to_owned())]),
                Some(HashMap::from([(":expected".to_owned(), n(*v))])),
            )),
        }
    }
}

pub(crate) fn is_condition_failure<R>(e: &SdkError<PutItemError, R>) -> bool {
    matches!(
        e.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    )
}

pub(crate) fn backend(e: impl std::error::Error + 'static) -> StoreError {
    StoreError::Backend(format!("dynamodb: {}", DisplayErrorContext(&e)))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn project_pk(id: ProjectId) -> String {
    format!("PROJECT#{id}")
}

/// How many index partitions a project's users are spread over: every progress write
/// rewrites the user item and so its index entry, and at 1,000 jobs at once one partition
/// (1,000 writes/s) would throttle them all. Sixteen give each a sixteenth.
pub const USER_SHARDS: u128 = 16;

/// The index partition of a user: fixed by its id (random bits), so it never moves.
fn user_shard_key(u: &MailUser) -> String {
    format!(
        "{}#S{:02}",
        project_pk(u.project_id),
        u.id.0.as_u128() % USER_SHARDS
    )
}

/// Every index partition of a project's users: the shards, and the one partition users
/// written before sharding still sit in until their next write.
fn user_shard_keys(project: ProjectId) -> impl Iterator<Item = String> {
    (0..USER_SHARDS)
        .map(move |shard| format!("{}#S{shard:02}", project_pk(project)))
        .chain(std::iter::once(project_pk(project)))
}

/// The index sort key of an item (`SRC#<source address>`), for merging partitions.
fn index_sort_key(item: &Option<Item>) -> Option<&str> {
    item.as_ref()?.get(GSI1SK)?.as_s().ok().map(String::as_str)
}

fn user_pk(id: UserId) -> String {
    user_pk_raw(&id.to_string())
}

fn user_pk_raw(id: &str) -> String {
    format!("USER#{id}")
}

fn unique_pk(project: ProjectId, source: &EmailAddress) -> String {
    unique_pk_raw(&project.to_string(), source.as_str())
}

fn unique_pk_raw(project: &str, source: &str) -> String {
    format!("UNIQUE#{project}#{source}")
}

fn cred_pk(user: UserId) -> String {
    format!("CRED#{user}")
}

fn invite_pk(hash: &str) -> String {
    format!("INVITE#{hash}")
}

fn invites_of_pk(user: UserId) -> String {
    format!("INVITES#{user}")
}

fn session_pk(hash: &str) -> String {
    format!("SESSION#{hash}")
}

fn setting_pk(key: &str) -> String {
    format!("SETTING#{key}")
}

fn event_pk(user: UserId) -> String {
    format!("EVENT#{user}")
}

/// A project's audit trail, or the console-wide one (`AUDIT#-`).
fn audit_pk(project: Option<ProjectId>) -> String {
    match project {
        Some(p) => format!("AUDIT#{p}"),
        None => "AUDIT#-".into(),
    }
}

fn folder_pk(user: UserId) -> String {
    format!("FOLDER#{user}")
}

/// Folder names are arbitrary (even empty in theory); a sort key may not be empty.
fn folder_sk(name: &str) -> String {
    format!("F#{name}")
}

/// A folder's skipped items and copy-map pages share the user's folder partition, under their
/// own prefixes: `S#<len>#<name>#<uid>` and `M#<len>#<name>#<page>`. The name's length keeps
/// one folder's prefix from being the start of another's ("A" and "A#1"); numbers are fixed
/// width so that string order is number order.
fn folder_detail_prefix(kind: char, name: &str) -> String {
    format!("{kind}#{}#{name}#", name.len())
}

fn folder_detail_sk(kind: char, name: &str, number: u32) -> String {
    format!("{}{number:010}", folder_detail_prefix(kind, name))
}

/// A time as a fixed-width decimal of nanoseconds since 1970, so string order is time order.
fn sortable_time(t: OffsetDateTime) -> String {
    let nanos = t.unix_timestamp_nanos().clamp(0, i128::from(u64::MAX));
    format!("{nanos:020}")
}

fn epoch_seconds(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

fn to_doc<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| StoreError::Backend(format!("cannot encode a record: {e}")))
}

fn doc_of<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_str(attr_s(item, "doc")?)
        .map_err(|e| StoreError::Backend(format!("cannot decode a stored record: {e}")))
}

fn attr_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Backend(format!(
            "a stored item has no string attribute '{name}'"
        ))),
    }
}

fn attr_n(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            StoreError::Backend(format!("a stored item has an invalid number '{name}'"))
        }),
        _ => Err(StoreError::Backend(format!(
            "a stored item has no number attribute '{name}'"
        ))),
    }
}

fn project_item(p: &Project) -> Result<Item, StoreError> {
    let mut item = key(project_pk(p.id), META);
    item.insert("doc".into(), to_doc(p)?);
    item.insert("version".into(), n(p.version));
    item.insert(GSI1PK.into(), s("PROJECTS"));
    item.insert(
        GSI1SK.into(),
        s(format!("{}#{}", sortable_time(p.created_at), p.id)),
    );
    Ok(item)
}

fn user_item(u: &MailUser) -> Result<Item, StoreError> {
    let mut item = key(user_pk(u.id), META);
    item.insert("doc".into(), to_doc(u)?);
    item.insert("version".into(), n(u.version));
    item.insert("project".into(), s(u.project_id.to_string()));
    item.insert("src".into(), s(u.source_email.as_str()));
    item.insert("tgt".into(), s(u.target_email.as_str()));
    // Lower-cased here (Unicode-aware), like the SQLite store, for the case-insensitive search.
    item.insert("name_lc".into(), s(u.display_name.to_lowercase()));
    item.insert("state".into(), s(u.state.as_str()));
    item.insert(GSI1PK.into(), s(user_shard_key(u)));
    item.insert(GSI1SK.into(), s(format!("SRC#{}", u.source_email.as_str())));
    Ok(item)
}

fn invite_item(i: &Invite) -> Result<Item, StoreError> {
    let mut item = key(invite_pk(&i.token_hash), META);
    item.insert("doc".into(), to_doc(i)?);
    item.insert("version".into(), n(i.version));
    item.insert("user".into(), s(i.user_id.to_string()));
    item.insert(
        EXPIRES.into(),
        n(epoch_seconds(i.expires_at + INVITE_KEEP_AFTER_EXPIRY)),
    );
    Ok(item)
}

#[async_trait]
impl Store for DynamoStore {
    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        self.put(project_item(project)?, Condition::Absent, || {
            StoreError::AlreadyExists
        })
        .await
    }

    async fn update_project(
        &self,
        project: &Project,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.put(
            project_item(project)?,
            Condition::Version(expected_version),
            || StoreError::Conflict,
        )
        .await
    }

    async fn get_project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.get_doc(project_pk(id), META).await
    }

    /// In creation order.
    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("#gpk = :gpk")
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_values(":gpk", s("PROJECTS"));
        self.query_all(query).await?.iter().map(doc_of).collect()
    }

    async fn insert_user(&self, user: &MailUser) -> Result<(), StoreError> {
        let put_user = Put::builder()
            .table_name(&self.table)
            .set_item(Some(user_item(user)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(backend)?;
        let actions = vec![
            TransactWriteItem::builder().put(put_user).build(),
            TransactWriteItem::builder()
                .put(self.unique_put(user)?)
                .build(),
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Conditions(_)) => Err(StoreError::AlreadyExists),
            Err(Cancelled::Backend(e)) => Err(e),
        }
    }

    async fn update_user(&self, user: &MailUser, expected_version: u64) -> Result<(), StoreError> {
        let item = user_item(user)?;
        // The common case: project and source address stay, so the uniqueness item stays
        // valid and a single conditional put does. The old item comes back when it fails.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("#v = :expected AND #src = :src AND #project = :project")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#src", "src")
            .expression_attribute_names("#project", "project")
            .expression_attribute_values(":expected", n(expected_version))
            .expression_attribute_values(":src", s(user.source_email.as_str()))
            .expression_attribute_values(":project", s(user.project_id.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failure)) = err.as_service_error()
        else {
            return Err(backend(err));
        };
        let Some(old) = failure.item() else {
            return Err(StoreError::Conflict);
        };
        if attr_n(old, "version")? != expected_version {
            return Err(StoreError::Conflict);
        }
        let (old_project, old_source) = (
            attr_s(old, "project")?.to_owned(),
            attr_s(old, "src")?.to_owned(),
        );
        self.move_user(user, item, expected_version, old_project, old_source)
            .await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<MailUser>, StoreError> {
        self.get_doc(user_pk(id), META).await
    }

    async fn find_user_by_source(
        &self,
        project: ProjectId,
        source_email: &EmailAddress,
    ) -> Result<Option<MailUser>, StoreError> {
        // Through the uniqueness item rather than the index: a key read is consistent.
        let Some(claim) = self.get(unique_pk(project, source_email), "UNIQUE").await? else {
            return Ok(None);
        };
        let uid = attr_s(&claim, "user")?;
        let user: Option<MailUser> = self.get_doc(user_pk_raw(uid), META).await?;
        Ok(user.filter(|u| u.project_id == project && &u.source_email == source_email))
    }

    /// A `limit` of 0 means no limit. Filters run server side; every page of the index is read
    /// to count the total.
    async fn list_users(
        &self,
        project: ProjectId,
        query: &UserQuery,
    ) -> Result<(Vec<MailUser>, u64), StoreError> {
        let filtered = |mut request: QueryFluentBuilder| {
            let mut filters = Vec::new();
            if let Some(state) = query.state {
                filters.push("#st = :st");
                request = request
                    .expression_attribute_names("#st", "state")
                    .expression_attribute_values(":st", s(state.as_str()));
            }
            // An empty search matches everything, as in the SQLite store.
            if let Some(search) = query.search.as_deref().filter(|q| !q.is_empty()) {
                filters.push("(contains(#src, :q) OR contains(#tgt, :q) OR contains(#nl, :q))");
                request = request
                    .expression_attribute_names("#src", "src")
                    .expression_attribute_names("#tgt", "tgt")
                    .expression_attribute_names("#nl", "name_lc")
                    .expression_attribute_values(":q", s(search.to_lowercase()));
            }
            if !filters.is_empty() {
                request = request.filter_expression(filters.join(" AND "));
            }
            request.into_paginator().items().send()
        };
        let end = if query.limit == 0 {
            u64::MAX
        } else {
            query.offset.saturating_add(query.limit)
        };
        // The partitions merged in source-address order: each is read once, page by page,
        // and only the asked window's documents are kept.
        let mut streams: Vec<_> = self
            .users_of_project(project)
            .into_iter()
            .map(filtered)
            .collect();
        let mut heads = Vec::with_capacity(streams.len());
        for stream in &mut streams {
            heads.push(stream.next().await.transpose().map_err(backend)?);
        }
        let (mut users, mut total) = (Vec::new(), 0u64);
        while let Some(next) = (0..heads.len())
            .filter(|&i| heads[i].is_some())
            .min_by(|&a, &b| index_sort_key(&heads[a]).cmp(&index_sort_key(&heads[b])))
        {
            if let Some(item) = heads[next].take() {
                if (query.offset..end).contains(&total) {
                    users.push(doc_of(&item)?);
                }
                total += 1;
            }
            heads[next] = streams[next].next().await.transpose().map_err(backend)?;
        }
        Ok((users, total))
    }

    async fn count_users_by_state(
        &self,
        project: ProjectId,
    ) -> Result<Vec<(UserState, u64)>, StoreError> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for request in self.users_of_project(project) {
            let request = request
                .expression_attribute_names("#st", "state")
                .projection_expression("#st");
            for item in self.query_all(request).await? {
                *counts
                    .entry(attr_s(&item, "state")?.to_owned())
                    .or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(state, count)| {
                UserState::parse(&state)
                    .map(|st| (st, count))
                    .ok_or_else(|| {
                        StoreError::Backend(format!("unknown user state '{state}' in the store"))
                    })
            })
            .collect()
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        let mut keys = vec![key(cred_pk(id), META)];
        keys.extend(self.partition_keys(folder_pk(id)).await?);
        keys.extend(self.partition_keys(event_pk(id)).await?);
        for pointer in self.partition_keys(invites_of_pk(id)).await? {
            keys.push(key(invite_pk(attr_s(&pointer, SK)?), META));
            keys.push(pointer);
        }
        self.delete_keys(keys).await?;
        self.delete_user_item(&id.to_string()).await
    }

    async fn put_credentials(&self, user: UserId, sealed: &Sealed) -> Result<(), StoreError> {
        let mut item = key(cred_pk(user), META);
        item.insert(
            "sealed".into(),
            AttributeValue::B(Blob::new(sealed.0.clone())),
        );
        self.put(item, Condition::None, || StoreError::Conflict)
            .await
    }

    async fn get_credentials(&self, user: UserId) -> Result<Option<Sealed>, StoreError> {
        let Some(item) = self.get(cred_pk(user), META).await? else {
            return Ok(None);
        };
        match item.get("sealed") {
            Some(AttributeValue::B(blob)) => Ok(Some(Sealed(blob.clone().into_inner()))),
            _ => Err(StoreError::Backend(
                "stored credentials have no binary attribute 'sealed'".into(),
            )),
        }
    }

    async fn delete_credentials(&self, user: UserId) -> Result<(), StoreError> {
        self.delete(cred_pk(user), META).await
    }

    async fn insert_invite(&self, invite: &Invite) -> Result<(), StoreError> {
        let put_invite = Put::builder()
            .table_name(&self.table)
            .set_item(Some(invite_item(invite)?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(backend)?;
        let mut pointer = key(invites_of_pk(invite.user_id), invite.token_hash.clone());
        pointer.insert(
            EXPIRES.into(),
            n(epoch_seconds(invite.expires_at + INVITE_KEEP_AFTER_EXPIRY)),
        );
        let put_pointer = Put::builder()
            .table_name(&self.table)
            .set_item(Some(pointer))
            .build()
            .map_err(backend)?;
        let actions = vec![
            TransactWriteItem::builder().put(put_invite).build(),
            TransactWriteItem::builder().put(put_pointer).build(),
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Conditions(_)) => Err(StoreError::AlreadyExists),
            Err(Cancelled::Backend(e)) => Err(e),
        }
    }

    async fn get_invite(&self, token_hash: &str) -> Result<Option<Invite>, StoreError> {
        self.get_doc(invite_pk(token_hash), META).await
    }

    async fn update_invite(
        &self,
        invite: &Invite,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.put(
            invite_item(invite)?,
            Condition::Version(expected_version),
            || StoreError::Conflict,
        )
        .await
    }

    async fn delete_invites_of_user(&self, user: UserId) -> Result<(), StoreError> {
        let mut keys = Vec::new();
        for pointer in self.partition_keys(invites_of_pk(user)).await? {
            keys.push(key(invite_pk(attr_s(&pointer, SK)?), META));
            keys.push(pointer);
        }
        self.delete_keys(keys).await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.get_doc(setting_pk(key), META).await
    }

    async fn put_setting(&self, key_name: &str, value: &str) -> Result<(), StoreError> {
        let mut item = key(setting_pk(key_name), META);
        item.insert("doc".into(), to_doc(&value)?);
        self.put(item, Condition::None, || StoreError::Conflict)
            .await
    }

    async fn put_setting_if_absent(&self, key_name: &str, value: &str) -> Result<bool, StoreError> {
        let mut item = key(setting_pk(key_name), META);
        item.insert("doc".into(), to_doc(&value)?);
        match self
            .put(item, Condition::Absent, || StoreError::AlreadyExists)
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::AlreadyExists) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn put_session(&self, session: &AdminSession) -> Result<(), StoreError> {
        let mut item = key(session_pk(&session.token_hash), META);
        item.insert("doc".into(), to_doc(session)?);
        item.insert(EXPIRES.into(), n(epoch_seconds(session.expires_at)));
        self.put(item, Condition::None, || StoreError::Conflict)
            .await
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<AdminSession>, StoreError> {
        self.get_doc(session_pk(token_hash), META).await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.delete(session_pk(token_hash), META).await
    }

    async fn append_event(&self, event: &UserEvent) -> Result<(), StoreError> {
        // Event time first; then the append time and a random part, so events of the same
        // instant are newest-appended first on read and never overwrite each other.
        let sk = format!(
            "{}#{}#{}",
            sortable_time(event.at),
            sortable_time(OffsetDateTime::now_utc()),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut item = key(event_pk(event.user_id), sk);
        item.insert("doc".into(), to_doc(event)?);
        self.put(item, Condition::None, || StoreError::Conflict)
            .await
    }

    async fn list_events(&self, user: UserId, limit: usize) -> Result<Vec<UserEvent>, StoreError> {
        self.newest_first(event_pk(user), None, limit).await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut item = key(audit_pk(entry.project_id), entry.id.clone());
        item.insert("doc".into(), to_doc(entry)?);
        self.put(item, Condition::Absent, || StoreError::AlreadyExists)
            .await
    }

    async fn list_audit(
        &self,
        project: Option<ProjectId>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.newest_first(audit_pk(project), before, limit).await
    }

    async fn put_folder(
        &self,
        folder: &FolderState,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut item = key(folder_pk(folder.user_id), folder_sk(&folder.source_name));
        item.insert("doc".into(), to_doc(folder)?);
        item.insert("version".into(), n(folder.version));
        match expected_version {
            None => {
                self.put(item, Condition::Absent, || StoreError::AlreadyExists)
                    .await
            }
            Some(v) => {
                self.put(item, Condition::Version(v), || StoreError::Conflict)
                    .await
            }
        }
    }

    async fn get_folder(
        &self,
        user: UserId,
        source_name: &str,
    ) -> Result<Option<FolderState>, StoreError> {
        self.get_doc(folder_pk(user), &folder_sk(source_name)).await
    }

    /// Ordered by source folder name.
    async fn list_folders(&self, user: UserId) -> Result<Vec<FolderState>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :f)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(folder_pk(user)))
            .expression_attribute_values(":f", s("F#"));
        self.query_all(query).await?.iter().map(doc_of).collect()
    }

    async fn put_skipped(
        &self,
        user: UserId,
        folder: &str,
        items: &[SkippedItem],
    ) -> Result<(), StoreError> {
        let items = items
            .iter()
            .map(|i| {
                let mut item = key(folder_pk(user), folder_detail_sk('S', folder, i.uid));
                item.insert("doc".into(), to_doc(i)?);
                Ok(item)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.put_items(items).await
    }

    async fn list_skipped(
        &self,
        user: UserId,
        folder: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<SkippedItem>, StoreError> {
        if limit == 0 || after == u32::MAX {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut start = None;
        // Pages of up to `limit` items from just past `after`, until enough or none are left.
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(folder_pk(user)))
                .expression_attribute_values(
                    ":from",
                    s(folder_detail_sk('S', folder, after.saturating_add(1))),
                )
                .expression_attribute_values(":to", s(folder_detail_sk('S', folder, u32::MAX)))
                .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            let page = query.send().await.map_err(backend)?;
            for item in page.items() {
                out.push(doc_of(item)?);
            }
            start = page.last_evaluated_key().cloned();
            if out.len() >= limit || start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn clear_skipped(&self, user: UserId, folder: &str) -> Result<(), StoreError> {
        let keys = self
            .detail_keys(user, &folder_detail_prefix('S', folder))
            .await?;
        self.delete_keys(keys).await
    }

    async fn put_copy_page(
        &self,
        user: UserId,
        folder: &str,
        page: u32,
        runs: &[[u32; 3]],
    ) -> Result<(), StoreError> {
        let mut item = key(folder_pk(user), folder_detail_sk('M', folder, page));
        item.insert("doc".into(), to_doc(&runs)?);
        self.put(item, Condition::None, || StoreError::Conflict)
            .await
    }

    async fn list_copy_pages(
        &self,
        user: UserId,
        folder: &str,
    ) -> Result<Vec<(u32, Vec<[u32; 3]>)>, StoreError> {
        let prefix = folder_detail_prefix('M', folder);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(folder_pk(user)))
            .expression_attribute_values(":prefix", s(prefix.clone()));
        self.query_all(query)
            .await?
            .iter()
            .map(|item| {
                let page = attr_s(item, SK)?
                    .strip_prefix(&prefix)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        StoreError::Backend("dynamodb: a copy-map page without its number".into())
                    })?;
                Ok((page, doc_of(item)?))
            })
            .collect()
    }

    async fn clear_copy_pages(&self, user: UserId, folder: &str) -> Result<(), StoreError> {
        let keys = self
            .detail_keys(user, &folder_detail_prefix('M', folder))
            .await?;
        self.delete_keys(keys).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sortable_times_sort_like_times() {
        let a = datetime!(2026-03-01 12:00:00.000000001 UTC);
        let b = datetime!(2026-03-01 12:00:00.1 UTC);
        let c = datetime!(2100-01-01 0:00 UTC);
        let (sa, sb, sc) = (sortable_time(a), sortable_time(b), sortable_time(c));
        assert!(sa < sb && sb < sc, "{sa} {sb} {sc}");
        assert_eq!(sa.len(), 20);
        assert_eq!(
            sortable_time(datetime!(1960-01-01 0:00 UTC)),
            "0".repeat(20)
        );
    }

    #[test]
    fn folder_keys_are_never_empty() {
        assert_eq!(folder_sk(""), "F#");
        assert_eq!(folder_sk("INBOX/Sub#1"), "F#INBOX/Sub#1");
    }
}
