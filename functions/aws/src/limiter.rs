//! The [`Limiter`] on the store's DynamoDB table: an item per slot taken (`LIMIT#<key>` /
//! `SLOT#<index>`), taken with a PutItem whose condition is "nobody has it, or its time has
//! ended", so two holders never have one slot however many workers race. An item whose time
//! ended is a free slot; DynamoDB's TTL removes it a day later.
//!
//! A line is a partition `LINE#<key>` with an item per place, its rank the sort key, so the
//! places before a rank are one Query counted on the server. Usage is an item per key and hour
//! (`USAGE#<key>` / `H#<epoch hour>`) whose number grows by UpdateItem's atomic ADD.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::error::StoreError;
use domain::ports::{Limiter, Slot, slot_order};
use time::OffsetDateTime;

use crate::dynamo::{DynamoStore, EXPIRES, PK, SK, backend, is_condition_failure, key, n, s};

const HOLDER: &str = "holder";
const UNTIL: &str = "until";
const AMOUNT: &str = "amount";

fn slot_pk(key: &str) -> String {
    format!("LIMIT#{key}")
}

fn slot_sk(index: u32) -> String {
    format!("SLOT#{index:05}")
}

fn line_pk(key: &str) -> String {
    format!("LINE#{key}")
}

fn usage_pk(key: &str) -> String {
    format!("USAGE#{key}")
}

fn usage_sk(hour: OffsetDateTime) -> String {
    format!("H#{:012}", epoch(hour))
}

fn epoch(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

impl DynamoStore {
    /// Writes the slot for `holder` until `until` if `condition` holds; false when it does not.
    async fn put_slot(
        &self,
        slot: &Slot,
        until: OffsetDateTime,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut item = key(slot_pk(&slot.key), slot_sk(slot.index));
        item.insert(HOLDER.into(), s(slot.holder.clone()));
        item.insert(UNTIL.into(), n(epoch(until)));
        item.insert(EXPIRES.into(), n(epoch(until) + 86_400));
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for &(alias, name) in names {
            put = put.expression_attribute_names(alias, name);
        }
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}

#[async_trait]
impl Limiter for DynamoStore {
    async fn acquire(
        &self,
        key: &str,
        cap: u32,
        holder: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Slot>, StoreError> {
        for index in slot_order(holder, cap) {
            let slot = Slot {
                key: key.to_owned(),
                index,
                holder: holder.to_owned(),
            };
            let free = "attribute_not_exists(#pk) OR #until <= :now";
            let names = [("#pk", PK), ("#until", UNTIL)];
            let values = vec![(":now", n(epoch(now)))];
            if self.put_slot(&slot, until, free, &names, values).await? {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    async fn renew(&self, slot: &Slot, until: OffsetDateTime) -> Result<bool, StoreError> {
        let mine = "attribute_exists(#pk) AND #holder = :me";
        let names = [("#pk", PK), ("#holder", HOLDER)];
        let values = vec![(":me", s(slot.holder.clone()))];
        self.put_slot(slot, until, mine, &names, values).await
    }

    async fn release(&self, slot: &Slot) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(slot_pk(&slot.key), slot_sk(slot.index))))
            .condition_expression("#holder = :me")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_values(":me", s(slot.holder.clone()))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Another holder has it by now: it stays theirs.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn in_use(&self, key: &str, now: OffsetDateTime) -> Result<u32, StoreError> {
        let query = self
            .partition_query(slot_pk(key))
            .filter_expression("#until > :now")
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_values(":now", n(epoch(now)))
            .projection_expression("#pk");
        let held = self.query_all(query).await?.len();
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        let keys = self.partition_keys(slot_pk(key)).await?;
        self.delete_keys(keys).await
    }

    async fn join_line(
        &self,
        key: &str,
        rank: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut item = crate::dynamo::key(line_pk(key), rank);
        item.insert(UNTIL.into(), n(epoch(until)));
        item.insert(EXPIRES.into(), n(epoch(until) + 86_400));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn ahead_in_line(
        &self,
        key: &str,
        rank: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32, StoreError> {
        let mut pages = self
            .partition_query(line_pk(key))
            .key_condition_expression("#pk = :pk AND #sk < :rank")
            .filter_expression("#until > :now")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_values(":rank", s(rank))
            .expression_attribute_values(":now", n(epoch(now)))
            .select(aws_sdk_dynamodb::types::Select::Count)
            // Each page reads at most what is still to count: the places before a rank far
            // back in a long line are never all read.
            // (at least 100 a page: places that ended are read and filtered out, and one a
            // page would make a Query per ended place).
            .limit(i32::try_from(limit.max(100)).unwrap_or(i32::MAX))
            .into_paginator()
            .send();
        let mut ahead = 0u32;
        while ahead < limit
            && let Some(page) = pages.next().await
        {
            let page = page.map_err(backend)?;
            ahead = ahead.saturating_add(u32::try_from(page.count()).unwrap_or(0));
        }
        Ok(ahead.min(limit))
    }

    async fn line(
        &self,
        key: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut pages = self
            .partition_query(line_pk(key))
            .filter_expression("#until > :now")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_values(":now", n(epoch(now)))
            .projection_expression("#sk")
            .into_paginator()
            .items()
            .send();
        let mut ranks = Vec::new();
        while ranks.len() < limit as usize
            && let Some(item) = pages.next().await
        {
            let item = item.map_err(backend)?;
            if let Some(rank) = item.get(SK).and_then(|v| v.as_s().ok()) {
                ranks.push(rank.clone());
            }
        }
        Ok(ranks)
    }

    async fn leave_line(&self, key: &str, rank: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(crate::dynamo::key(line_pk(key), rank)))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn add_usage(
        &self,
        key: &str,
        hour: OffsetDateTime,
        amount: u64,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(crate::dynamo::key(usage_pk(key), usage_sk(hour))))
            .update_expression("ADD #amount :amount SET #expires = :expires")
            .expression_attribute_names("#amount", AMOUNT)
            .expression_attribute_names("#expires", EXPIRES)
            .expression_attribute_values(":amount", n(amount))
            // Two days after its hour it counts toward no budget.
            .expression_attribute_values(":expires", n(epoch(hour) + 2 * 86_400))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn usage(
        &self,
        key: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, u64)>, StoreError> {
        let query = self
            .partition_query(usage_pk(key))
            .key_condition_expression("#pk = :pk AND #sk >= :since")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":since", s(usage_sk(since)));
        self.query_all(query)
            .await?
            .iter()
            .map(|item| {
                let hour = item
                    .get(SK)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|sk| sk.strip_prefix("H#"))
                    .and_then(|h| h.parse::<i64>().ok())
                    .and_then(|h| OffsetDateTime::from_unix_timestamp(h).ok())
                    .ok_or_else(|| StoreError::Backend("a usage item without its hour".into()))?;
                let amount = item
                    .get(AMOUNT)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                Ok((hour, amount))
            })
            .collect()
    }
}
