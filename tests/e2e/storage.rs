//! The store hides expired items (the emulator never deletes them), pages through large results,
//! and maps conditional failures.

use domain::samples;
use domain::service_requests::payments::PaymentRecord;
use domain::tax::W9Record;
use e2e::{new_user, stack};
use jiff::{SignedDuration, Timestamp, ToSpan};
use platform::Clock;
use platform::keys::user_partition;
use platform::store::{Record, StoreError};

#[tokio::test]
async fn expired_items_are_invisible_to_get_and_query() {
    let now: Timestamp = "2030-01-31T23:00:00Z".parse().expect("time");
    let clock = Clock::fixed(now);
    let state = stack().state("RegistrationFunction", clock.clone()).await;
    let user = new_user(&state).await;
    // A W-9 is kept 7 years from certification: this one has 100 seconds left.
    let certified = now
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .checked_sub(7.years())
        .expect("date")
        .timestamp()
        + SignedDuration::from_secs(100);
    let w9 = samples::w9(&user, certified);
    let customer = samples::customer(&user, &e2e::unique_email("ttl"));
    state.store.create(&w9).await.expect("w9");
    state.store.create(&customer).await.expect("customer");

    assert!(
        state
            .store
            .get::<W9Record>(&w9.key())
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        state
            .store
            .query::<W9Record>(&user_partition(&user), "TAX#", 10)
            .await
            .expect("query")
            .len(),
        1
    );

    clock.advance(SignedDuration::from_secs(100));
    assert!(
        state
            .store
            .get::<W9Record>(&w9.key())
            .await
            .expect("get")
            .is_none(),
        "expired at its second"
    );
    assert!(
        state
            .store
            .query::<W9Record>(&user_partition(&user), "TAX#", 10)
            .await
            .expect("query")
            .is_empty()
    );
    // The item is still in the table (only TTL or the purge removes it) …
    let raw = state
        .store
        .raw()
        .get_item()
        .table_name(state.store.table())
        .set_key(Some(
            [("pk", w9.key().pk), ("sk", w9.key().sk)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(v)))
                .collect(),
        ));
    assert!(raw.send().await.expect("raw get").item.is_some());
    // … and an account, which has no fixed period, stays visible.
    assert!(
        state
            .store
            .get::<domain::accounts::CustomerAccount>(&customer.key())
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test]
async fn query_pages_through_more_than_one_response_and_honours_the_limit() {
    let state = stack().state("RequestsFunction", Clock::System).await;
    let user = new_user(&state).await;
    // ~1.2 MB of items: more than one 1 MB Query page.
    for index in 0..30 {
        let mut payment = samples::payment(&user, &format!("{index:03}"));
        payment.processor_token = format!("pm_{}", "x".repeat(40_000));
        state.store.create(&payment).await.expect("put");
    }
    let all = state
        .store
        .query::<PaymentRecord>(&user_partition(&user), "PAYMENT#", 100)
        .await
        .expect("query");
    assert_eq!(all.len(), 30);
    assert!(
        all.windows(2)
            .all(|w| w[0].record.payment_id < w[1].record.payment_id),
        "in sort-key order"
    );
    let some = state
        .store
        .query::<PaymentRecord>(&user_partition(&user), "PAYMENT#", 7)
        .await
        .expect("query");
    assert_eq!(some.len(), 7);
}

#[tokio::test]
async fn creating_the_same_key_twice_is_a_condition_failure() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let user = new_user(&state).await;
    let customer = samples::customer(&user, &e2e::unique_email("twice"));
    state.store.create(&customer).await.expect("first write");
    assert!(matches!(
        state.store.create(&customer).await,
        Err(StoreError::ConditionFailed)
    ));
}
