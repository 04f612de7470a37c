//! Reading the table: queries by partition, index and range, the beacon lookup, and the key-only
//! reads (the plain client) that erasure and the retention job need. Every read skips expired items
//! and counts what it read ([`Store::items_read`]); [`for_each_item`] is the one pagination loop.

use super::*;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use std::ops::ControlFlow;

impl Store {
    /// Up to `limit` live records of type `R` in partition `pk` whose sort key starts with
    /// `sk_prefix`, in sort-key order.
    pub async fn query<R: Record>(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
    ) -> Result<Vec<Versioned<R>>, StoreError> {
        let items = self.query_items(pk, sk_prefix, Some(R::TYPE.name), limit).await?;
        items.into_iter().map(decode_versioned).collect()
    }

    /// Every live record of type `R` under `gsi1pk` in the general-purpose index `gsi1`.
    pub async fn query_gsi1<R: Record>(&self, gsi1pk: &str) -> Result<Vec<Versioned<R>>, StoreError> {
        let query = self
            .encrypted_query()
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(gsi1pk.to_owned()));
        self.collect_live(query).await
    }

    /// Live records of type `R` under `gsi1pk` in `gsi1` with `from <= gsi1sk <= to`, in order.
    pub async fn query_gsi1_range<R: Record>(
        &self,
        gsi1pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<Versioned<R>>, StoreError> {
        let query = self
            .encrypted_query()
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", AttributeValue::S(gsi1pk.to_owned()))
            .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
            .expression_attribute_values(":to", AttributeValue::S(to.to_owned()));
        self.collect_live(query).await
    }

    /// Up to `limit` live records of type `R` under `gsi1pk` in `gsi1` whose `gsi1sk` comes after
    /// `after` (all when `None`), in `gsi1sk` order; with the `gsi1sk` to continue after when the page
    /// is full.
    pub async fn query_gsi1_after<R: Record>(
        &self,
        gsi1pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Versioned<R>>, Option<String>), StoreError> {
        let mut query = self
            .encrypted_query()
            .index_name("gsi1")
            .expression_attribute_values(":pk", AttributeValue::S(gsi1pk.to_owned()));
        query = match after {
            Some(after) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", AttributeValue::S(after.to_owned())),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let mut found = Vec::new();
        let mut last = None;
        if limit == 0 {
            return Ok((found, None));
        }
        for_each_item(self, query, None, |item| {
            let sk = match item.get("gsi1sk") {
                Some(AttributeValue::S(sk)) if self.is_live(&item) && is_type::<R>(&item) => sk.clone(),
                _ => return Ok(ControlFlow::Continue(())),
            };
            found.push(decode_versioned(item)?);
            if found.len() == limit {
                last = Some(sk);
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok((found, last))
    }

    /// Up to `limit` live records of type `R` in partition `pk` with `from <= sk <= to`, after
    /// `after` (exclusive) when given, that `keep` accepts; with the sort key to continue after when
    /// the page is full.
    pub async fn query_range<R: Record>(
        &self,
        pk: &str,
        from: &str,
        to: &str,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&R) -> bool,
    ) -> Result<(Vec<Versioned<R>>, Option<String>), StoreError> {
        let query = self
            .encrypted_query()
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":from", AttributeValue::S(from.to_owned()))
            .expression_attribute_values(":to", AttributeValue::S(to.to_owned()));
        let start = after.map(|sk| ItemKey::new(pk.to_owned(), sk.to_owned()).to_item());
        let mut found = Vec::new();
        let mut last = None;
        if limit == 0 {
            return Ok((found, None));
        }
        for_each_item(self, query, start, |item| {
            let sk = match item.get("sk") {
                Some(AttributeValue::S(sk)) if self.is_live(&item) && is_type::<R>(&item) => sk.clone(),
                _ => return Ok(ControlFlow::Continue(())),
            };
            let record: Versioned<R> = decode_versioned(item)?;
            if keep(&record.record) {
                found.push(record);
                if found.len() == limit {
                    last = Some(sk);
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok((found, last))
    }

    /// The newest live record of type `R` in partition `pk` under `sk_prefix` (highest sort key).
    pub async fn latest<R: Record>(
        &self,
        pk: &str,
        sk_prefix: &str,
    ) -> Result<Option<Versioned<R>>, StoreError> {
        let query = self
            .encrypted_query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
            .scan_index_forward(false)
            .limit(10);
        let mut newest = None;
        for_each_item(self, query, None, |item| {
            if self.is_live(&item) && is_type::<R>(&item) {
                newest = Some(decode_versioned(item)?);
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(newest)
    }

    /// Like [`Store::query`] for summary views that decode only some attributes of any item type.
    pub async fn query_prefix<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk_prefix: &str,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let items = self.query_items(pk, sk_prefix, None, limit).await?;
        items.into_iter().map(decode).collect()
    }

    /// Items of partition `pk` under `sk_prefix`, live and (when given) of `item_type`, in sort-key
    /// order. Liveness and type are checked here rather than in a FilterExpression: the encryption
    /// SDK evaluates filters itself and fails on `attribute_not_exists(x) OR x > v` when `x` is absent.
    async fn query_items(
        &self,
        pk: &str,
        sk_prefix: &str,
        item_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self
            .encrypted_query()
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        // DynamoDB refuses an empty `begins_with` operand: an empty prefix means the whole partition.
        let query = if sk_prefix.is_empty() {
            query.key_condition_expression("pk = :pk")
        } else {
            query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
        };
        let mut found = Vec::new();
        if limit == 0 {
            return Ok(found);
        }
        for_each_item(self, query, None, |item| {
            let wanted = item_type
                .is_none_or(|t| matches!(item.get(ITEM_TYPE), Some(AttributeValue::S(name)) if name == t));
            if wanted && self.is_live(&item) {
                found.push(item);
            }
            Ok(if found.len() == limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(found)
    }

    /// Live records of type `R` whose `beacon.attribute` equals `value` exactly, found through the
    /// beacon's index without sending the plaintext. The beacon is truncated, so the index returns
    /// false positives; they are dropped here after decryption.
    pub async fn find_by_beacon<R: Record>(
        &self,
        beacon: &Beacon,
        value: &str,
    ) -> Result<Vec<Versioned<R>>, StoreError> {
        let query = self
            .encrypted_query()
            .index_name(beacon.index)
            .key_condition_expression("#attribute = :value")
            .expression_attribute_names("#attribute", beacon.attribute)
            .expression_attribute_values(":value", AttributeValue::S(value.to_owned()));
        let mut found = Vec::new();
        for_each_item(self, query, None, |item| {
            let exact =
                matches!(item.get(beacon.attribute), Some(AttributeValue::S(stored)) if stored == value);
            if exact && self.is_live(&item) && is_type::<R>(&item) {
                found.push(decode_versioned(item)?);
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(found)
    }

    /// Every counter of partition `pk` (see [`Store::add_to_counter`]), by sort key.
    pub async fn counters(&self, pk: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let query = self
            .plain_query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        let mut found = Vec::new();
        for_each_item(self, query, None, |item| {
            if !self.is_live(&item) {
                return Ok(ControlFlow::Continue(()));
            }
            if let (Some(AttributeValue::S(sk)), Some(AttributeValue::N(n))) =
                (item.get("sk"), item.get(COUNT))
            {
                found.push((sk.clone(), n.parse().unwrap_or(0)));
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(found)
    }

    /// One page of the live items of partition `pk`, decrypted, starting after `start`; with the key
    /// to continue from (`None` on the last page). For work that must not hold a whole partition in
    /// memory (the data export).
    pub async fn partition_page(
        &self,
        pk: &str,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let output = self
            .encrypted_query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let items = output.items.unwrap_or_default();
        self.count_read(items.len());
        let next = output.last_evaluated_key.filter(|key| !key.is_empty());
        Ok((
            items.into_iter().filter(|item| self.is_live(item)).collect(),
            next,
        ))
    }

    /// Whether an item exists at `key` (any type, live or not), read with the plain client.
    pub async fn exists(&self, key: &ItemKey) -> Result<bool, StoreError> {
        let output = self
            .plain
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key.to_item()))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        self.count_read(usize::from(output.item.is_some()));
        Ok(output.item.is_some())
    }

    /// Key, item type and `expires_at` of every item in partition `pk`, read with the plain client
    /// (no decryption: erasure must list items it is about to delete even if one is unreadable).
    pub async fn keys_in_partition(
        &self,
        pk: &str,
    ) -> Result<Vec<(ItemKey, String, Option<i64>)>, StoreError> {
        let query = self
            .plain_query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .projection_expression("pk, sk, #type, #expires")
            .expression_attribute_names("#type", ITEM_TYPE)
            .expression_attribute_names("#expires", EXPIRES_AT)
            .consistent_read(true);
        let mut found = Vec::new();
        for_each_item(self, query, None, |item| {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(value)) => value.clone(),
                _ => String::new(),
            };
            let expires_at = match item.get(EXPIRES_AT) {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            };
            found.push((ItemKey::new(text("pk"), text("sk")), text(ITEM_TYPE), expires_at));
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(found)
    }

    /// Keys of the items in the due-work index (`by-due-date`) under `due_day` that fall due at or
    /// before `until` (epoch seconds). Key-only index, so the plain client.
    pub async fn due_keys(&self, due_day: &str, until: i64) -> Result<Vec<ItemKey>, StoreError> {
        let query = self.due_query(due_day, until);
        let mut keys = Vec::new();
        for_each_item(self, query, None, |item| {
            if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                (item.get("pk"), item.get("sk"))
            {
                keys.push(ItemKey::new(pk.clone(), sk.clone()));
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(keys)
    }

    /// A Query on the table through the encrypting client (items come back decrypted and verified).
    fn encrypted_query(&self) -> QueryFluentBuilder {
        self.encrypted.query().table_name(&self.table)
    }

    /// A Query on the table with the plain client: for key-only reads that must not decrypt.
    fn plain_query(&self) -> QueryFluentBuilder {
        self.plain.query().table_name(&self.table)
    }

    /// Every live record of type `R` that `query` returns, all pages.
    async fn collect_live<R: Record>(
        &self,
        query: QueryFluentBuilder,
    ) -> Result<Vec<Versioned<R>>, StoreError> {
        let mut found = Vec::new();
        for_each_item(self, query, None, |item| {
            if self.is_live(&item) && is_type::<R>(&item) {
                found.push(decode_versioned(item)?);
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(found)
    }

    /// The due-work index (`by-due-date`, key-only, so the plain client) under `due_day`, due at or
    /// before `until` (epoch seconds).
    fn due_query(&self, due_day: &str, until: i64) -> QueryFluentBuilder {
        self.plain
            .query()
            .table_name(&self.table)
            .index_name("by-due-date")
            .key_condition_expression("due_day = :day AND due_at <= :until")
            .expression_attribute_values(":day", AttributeValue::S(due_day.to_owned()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
    }
}

/// Runs `query` page after page from `start` (exclusive), handing every item to `visit` until it
/// breaks or the pages run out. The one pagination loop of the store: it never assumes the last page
/// does or does not carry a `LastEvaluatedKey`.
async fn for_each_item(
    store: &Store,
    query: QueryFluentBuilder,
    start: Option<Item>,
    mut visit: impl FnMut(Item) -> Result<ControlFlow<()>, StoreError>,
) -> Result<(), StoreError> {
    let mut start_key = start;
    loop {
        let output = query
            .clone()
            .set_exclusive_start_key(start_key.take())
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let items = output.items.unwrap_or_default();
        store.count_read(items.len());
        for item in items {
            if visit(item)?.is_break() {
                return Ok(());
            }
        }
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start_key = Some(key),
            _ => return Ok(()),
        }
    }
}
