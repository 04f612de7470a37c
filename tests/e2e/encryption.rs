//! The policy's "we do not store any unencrypted personal information", checked on the raw table,
//! and the guarantees of the encryption layer: tamper evidence, crypto-shredding, blind lookups, and
//! every DynamoDB operation the code uses going through the interceptor.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::accounts::{CustomerAccount, EmailLock, ProviderAccount};
use domain::samples;
use e2e::{new_user, stack, unique_email};
use platform::AppState;
use platform::Clock;
use platform::keys::user_partition;
use platform::schema::EMAIL_BEACON;
use platform::store::{Item, ItemKey, Record, StoreError};
use std::collections::HashMap;

fn raw_key(key: &ItemKey) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

async fn raw_get(state: &AppState, key: &ItemKey) -> Item {
    state
        .store
        .raw()
        .get_item()
        .table_name(state.store.table())
        .set_key(Some(raw_key(key)))
        .send()
        .await
        .expect("raw get")
        .item
        .expect("the item is stored")
}

async fn raw_put(state: &AppState, item: Item) {
    state
        .store
        .raw()
        .put_item()
        .table_name(state.store.table())
        .set_item(Some(item))
        .send()
        .await
        .expect("raw put");
}

/// Every string and binary in an attribute value, lower-cased (binaries as lossy text).
fn texts(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.to_lowercase()),
        AttributeValue::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).to_lowercase()),
        AttributeValue::Ss(l) | AttributeValue::Ns(l) => out.extend(l.iter().map(|s| s.to_lowercase())),
        AttributeValue::Bs(l) => out.extend(
            l.iter()
                .map(|b| String::from_utf8_lossy(b.as_ref()).to_lowercase()),
        ),
        AttributeValue::L(l) => l.iter().for_each(|v| texts(v, out)),
        AttributeValue::M(m) => m.iter().for_each(|(k, v)| {
            out.push(k.to_lowercase());
            texts(v, out)
        }),
        _ => {}
    }
}

#[tokio::test]
async fn a_raw_dump_holds_no_plaintext_personal_value() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let user = new_user(&state).await;
    let email = unique_email("philippa");
    let provider_email = unique_email("thaddeus");
    let customer = samples::customer(&user, &email);
    let provider = samples::provider(&user, &provider_email);
    let w9 = samples::w9(&user, state.clock.now());
    let payment = samples::payment(&user, "pay-raw");
    let hash = state.lookup.email_hash(&email).await.expect("hash");
    let lock = EmailLock {
        role: "customer".into(),
        email_hash: hash,
        owner_user_id: user.clone(),
        created_at: state.clock.now(),
    };
    state
        .store
        .transact(vec![
            state.store.write_create(&customer).expect("w"),
            state.store.write_create(&lock).expect("w"),
        ])
        .await
        .expect("account + lock");
    state.store.create(&provider).await.expect("provider");
    state.store.create(&w9).await.expect("w9");
    state.store.create(&payment).await.expect("payment");

    let mut personal: Vec<String> = samples::customer_personal_values(&email);
    personal.extend(samples::provider_personal_values(&provider_email));
    personal.extend(samples::w9_personal_values());
    personal.extend(samples::payment_personal_values());

    let mut items = state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(user_partition(&user)))
        .send()
        .await
        .expect("raw query")
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 4, "customer, provider, W-9, payment");
    items.push(raw_get(&state, &lock.key()).await);
    for item in &items {
        let mut found = Vec::new();
        for (name, value) in item {
            found.push(name.to_lowercase());
            texts(value, &mut found);
        }
        for value in &personal {
            let value = value.to_lowercase();
            assert!(
                !found.iter().any(|text| text.contains(&value)),
                "{value:?} is stored in plaintext in {:?}",
                item.get("sk")
            );
        }
    }
    // And the data layer reads it all back.
    assert_eq!(
        state
            .store
            .get::<CustomerAccount>(&customer.key())
            .await
            .expect("get")
            .map(|v| v.record),
        Some(customer)
    );
    assert_eq!(
        state
            .store
            .get::<ProviderAccount>(&provider.key())
            .await
            .expect("get")
            .map(|v| v.record),
        Some(provider)
    );
}

async fn stored_customer(state: &AppState) -> CustomerAccount {
    let user = new_user(state).await;
    let customer = samples::customer(&user, &unique_email("tamper"));
    state.store.create(&customer).await.expect("customer");
    customer
}

fn assert_tampered(
    result: Result<Option<platform::store::Versioned<CustomerAccount>>, StoreError>,
    case: &str,
) {
    match result {
        Err(StoreError::Tampered) => {}
        other => panic!("{case}: expected a tamper error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flipped_ciphertext_byte_fails_the_read() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let customer = stored_customer(&state).await;
    let mut item = raw_get(&state, &customer.key()).await;
    let Some(AttributeValue::B(blob)) = item.get("phone") else {
        panic!("phone is not ciphertext")
    };
    let mut bytes = blob.clone().into_inner();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    item.insert("phone".into(), AttributeValue::B(bytes.into()));
    raw_put(&state, item).await;
    assert_tampered(
        state.store.get::<CustomerAccount>(&customer.key()).await,
        "flipped byte",
    );
}

#[tokio::test]
async fn ciphertext_swapped_between_items_fails_the_read() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let first = stored_customer(&state).await;
    let second = stored_customer(&state).await;
    let mut item = raw_get(&state, &first.key()).await;
    let other = raw_get(&state, &second.key()).await;
    item.insert("name".into(), other["name"].clone());
    raw_put(&state, item).await;
    assert_tampered(
        state.store.get::<CustomerAccount>(&first.key()).await,
        "swapped ciphertext",
    );
}

#[tokio::test]
async fn an_item_copied_under_another_key_fails_the_read() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let original = stored_customer(&state).await;
    let victim = new_user(&state).await;
    let mut item = raw_get(&state, &original.key()).await;
    // Same owner, another sort key …
    let moved = ItemKey::new(original.key().pk, "ACCOUNT#CUSTOMER-COPY".into());
    item.insert("sk".into(), AttributeValue::S(moved.sk.clone()));
    raw_put(&state, item.clone()).await;
    assert_tampered(
        state.store.get::<CustomerAccount>(&moved).await,
        "copied within the partition",
    );
    // … and another user's partition.
    let stolen = ItemKey::new(user_partition(&victim), "ACCOUNT#CUSTOMER".into());
    item.insert("pk".into(), AttributeValue::S(stolen.pk.clone()));
    item.insert("sk".into(), AttributeValue::S(stolen.sk.clone()));
    raw_put(&state, item).await;
    assert!(
        state.store.get::<CustomerAccount>(&stolen).await.is_err(),
        "copied to another user"
    );
}

#[tokio::test]
async fn an_injected_attribute_fails_the_read() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let customer = stored_customer(&state).await;
    let mut item = raw_get(&state, &customer.key()).await;
    item.insert("marketing_consent".into(), AttributeValue::Bool(true));
    raw_put(&state, item).await;
    assert_tampered(
        state.store.get::<CustomerAccount>(&customer.key()).await,
        "changed signed attribute",
    );

    let other = stored_customer(&state).await;
    let mut item = raw_get(&state, &other.key()).await;
    item.insert("injected".into(), AttributeValue::S("x".into()));
    raw_put(&state, item).await;
    assert!(
        state.store.get::<CustomerAccount>(&other.key()).await.is_err(),
        "undeclared attribute"
    );
}

#[tokio::test]
async fn shredding_a_users_key_destroys_only_that_users_data() {
    let stack = stack();
    let state = stack.state("PrivacyFunction", Clock::System).await;
    let doomed = stored_customer(&state).await;
    let kept = stored_customer(&state).await;
    let deleted = state.keys.shred_user(&doomed.user_id).await.expect("shred");
    assert!(deleted >= 2, "branch key and beacon key items, got {deleted}");
    assert_eq!(
        state.keys.shred_user(&doomed.user_id).await.expect("shred again"),
        0,
        "idempotent"
    );

    // A new client (no cached key) can no longer read the user's item, though it is still stored.
    let fresh = stack.state("PrivacyFunction", Clock::System).await;
    match fresh.store.get::<CustomerAccount>(&doomed.key()).await {
        Err(StoreError::KeyDestroyed) => {}
        other => panic!("expected KeyDestroyed, got {other:?}"),
    }
    let raw = raw_get(&fresh, &doomed.key()).await;
    assert!(raw.contains_key("name"));
    // Everyone else's data reads as before.
    let other = fresh
        .store
        .get::<CustomerAccount>(&kept.key())
        .await
        .expect("other user")
        .expect("present");
    assert_eq!(other.record, kept);
}

#[tokio::test]
async fn a_beacon_lookup_finds_the_right_user_even_when_beacons_collide() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    // Register users until two e-mails share a 16-bit beacon (birthday bound: a few hundred).
    let mut by_beacon: HashMap<String, (String, String)> = HashMap::new();
    let mut collision = None;
    let mut registered = 0;
    while collision.is_none() && registered < 2_000 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let state = state.clone();
            batch.spawn(async move {
                let user = new_user(&state).await;
                let email = unique_email("beacon");
                let customer = samples::customer(&user, &email);
                state.store.create(&customer).await.expect("customer");
                let raw = raw_get(&state, &customer.key()).await;
                let Some(AttributeValue::S(beacon)) = raw.get(&EMAIL_BEACON.stored_attribute()).cloned()
                else {
                    panic!("no e-mail beacon stored")
                };
                (beacon, user, email)
            });
        }
        while let Some(joined) = batch.join_next().await {
            let (beacon, user, email) = joined.expect("task");
            registered += 1;
            if let Some(first) = by_beacon.get(&beacon) {
                collision.get_or_insert((first.clone(), (user.clone(), email.clone()), beacon.clone()));
            }
            by_beacon.insert(beacon, (user, email));
        }
    }
    let ((first_user, first_email), (second_user, second_email), beacon) =
        collision.expect("two e-mails with the same 16-bit beacon among 2,000");
    assert_ne!(first_email, second_email);
    eprintln!("beacon collision after {registered} registrations");

    // The index really returns both for that beacon …
    let raw_hits = state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .index_name(EMAIL_BEACON.index)
        .key_condition_expression("#b = :b")
        .expression_attribute_names("#b", EMAIL_BEACON.stored_attribute())
        .expression_attribute_values(":b", AttributeValue::S(beacon))
        .send()
        .await
        .expect("raw index query")
        .items
        .unwrap_or_default();
    assert!(raw_hits.len() >= 2);
    // … and the lookup keeps only the exact match.
    for (user, email) in [(&first_user, &first_email), (&second_user, &second_email)] {
        let found = state
            .store
            .find_by_beacon::<CustomerAccount>(&EMAIL_BEACON, email)
            .await
            .expect("lookup");
        let users: Vec<&str> = found.iter().map(|v| v.record.user_id.as_str()).collect();
        assert_eq!(users, vec![user.as_str()], "lookup of one e-mail");
    }
    let nobody = state
        .store
        .find_by_beacon::<CustomerAccount>(&EMAIL_BEACON, &unique_email("nobody"))
        .await
        .expect("lookup");
    assert!(nobody.is_empty());
}

#[tokio::test]
async fn an_account_and_its_email_lock_are_written_together_or_not_at_all() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let email = unique_email("unique");
    let hash = state.lookup.email_hash(&email).await.expect("hash");
    assert_eq!(
        hash,
        state
            .lookup
            .email_hash(&format!("  {}  ", email.to_uppercase()))
            .await
            .expect("hash"),
        "normalised"
    );
    assert_eq!(hash.len(), 64, "full HMAC-SHA-256, no truncation");

    let register = |user: String| {
        let state = state.clone();
        let email = email.clone();
        let hash = hash.clone();
        async move {
            let customer = samples::customer(&user, &email);
            let lock = EmailLock {
                role: "customer".into(),
                email_hash: hash,
                owner_user_id: user.clone(),
                created_at: state.clock.now(),
            };
            let writes = vec![
                state.store.write_create(&customer)?,
                state.store.write_create(&lock)?,
            ];
            state.store.transact(writes).await.map(|()| customer)
        }
    };
    let first = new_user(&state).await;
    let second = new_user(&state).await;
    let winner = register(first).await.expect("first registration");
    match register(second.clone()).await {
        Err(StoreError::TransactionCancelled(reasons)) => {
            assert_eq!(
                reasons,
                vec!["None".to_owned(), "ConditionalCheckFailed".to_owned()]
            );
        }
        other => panic!("expected a cancelled transaction, got {other:?}"),
    }
    let loser_key = ItemKey::new(user_partition(&second), "ACCOUNT#CUSTOMER".into());
    assert!(
        state
            .store
            .get::<CustomerAccount>(&loser_key)
            .await
            .expect("get")
            .is_none(),
        "nothing written"
    );

    // BatchGetItem through the interceptor.
    let found = state
        .store
        .batch_get::<CustomerAccount>(&[winner.key(), loser_key])
        .await
        .expect("batch get");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].record, winner);
}

#[tokio::test]
async fn a_change_needs_the_version_it_was_read_at() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let customer = stored_customer(&state).await;
    let read = state
        .store
        .get::<CustomerAccount>(&customer.key())
        .await
        .expect("get")
        .expect("present");
    assert_eq!(read.version, 1);
    let mut changed = read.record.clone();
    changed.phone = "+13075550100".into();
    assert_eq!(
        state
            .store
            .replace(&changed, read.version)
            .await
            .expect("replace"),
        2
    );
    // A writer still holding version 1 loses.
    let mut stale = read.record.clone();
    stale.name = "Someone Else".into();
    assert!(matches!(
        state.store.replace(&stale, read.version).await,
        Err(StoreError::ConditionFailed)
    ));
    let now = state
        .store
        .get::<CustomerAccount>(&customer.key())
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        (now.version, now.record.phone.as_str(), now.record.name.as_str()),
        (2, "+13075550100", customer.name.as_str())
    );
}
