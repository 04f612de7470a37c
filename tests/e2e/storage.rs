//! The store hides expired items (the emulator never deletes them) and maps conditional failures.

use e2e::stack;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use shared::Clock;
use shared::store::StoreError;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Probe {
    pk: String,
    sk: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

#[tokio::test]
async fn expired_items_are_invisible_to_get_and_query() {
    let start: jiff::Timestamp = "2030-01-31T23:00:00Z".parse().expect("time");
    let clock = Clock::fixed(start);
    let state = stack().state("RegistrationFunction", clock.clone()).await;
    let pk = format!("TEST#{}", uuid::Uuid::new_v4().simple());
    let expiring = Probe {
        pk: pk.clone(),
        sk: "ITEM#expiring".into(),
        expires_at: Some(start.as_second() + 100),
    };
    let lasting = Probe {
        pk: pk.clone(),
        sk: "ITEM#lasting".into(),
        expires_at: None,
    };
    state.store.put_new(&expiring).await.expect("put");
    state.store.put_new(&lasting).await.expect("put");

    let before: Vec<Probe> = state.store.query_prefix(&pk, "ITEM#", 10).await.expect("query");
    assert_eq!(before.len(), 2);
    assert_eq!(
        state.store.get::<Probe>(&pk, "ITEM#expiring").await.expect("get"),
        Some(expiring)
    );

    clock.advance(SignedDuration::from_secs(100));
    assert_eq!(
        state.store.get::<Probe>(&pk, "ITEM#expiring").await.expect("get"),
        None,
        "expired at its second"
    );
    let after: Vec<Probe> = state.store.query_prefix(&pk, "ITEM#", 10).await.expect("query");
    assert_eq!(after, vec![lasting]);
}

#[tokio::test]
async fn query_pages_through_more_than_one_response_and_honours_the_limit() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let pk = format!("TEST#{}", uuid::Uuid::new_v4().simple());
    // ~1.2 MB of items: more than one 1 MB Query page.
    #[derive(Serialize, Deserialize)]
    struct Bulky {
        pk: String,
        sk: String,
        filler: String,
    }
    for index in 0..30 {
        let item = Bulky {
            pk: pk.clone(),
            sk: format!("ITEM#{index:03}"),
            filler: "x".repeat(40_000),
        };
        state.store.put_new(&item).await.expect("put");
    }
    let all: Vec<Bulky> = state.store.query_prefix(&pk, "ITEM#", 100).await.expect("query");
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].sk < w[1].sk), "in sort-key order");
    let some: Vec<Bulky> = state.store.query_prefix(&pk, "ITEM#", 7).await.expect("query");
    assert_eq!(some.len(), 7);
}

#[tokio::test]
async fn writing_the_same_key_twice_is_a_condition_failure() {
    let state = stack().state("RegistrationFunction", Clock::System).await;
    let probe = Probe {
        pk: format!("TEST#{}", uuid::Uuid::new_v4().simple()),
        sk: "ONE".into(),
        expires_at: None,
    };
    state.store.put_new(&probe).await.expect("first write");
    assert!(matches!(
        state.store.put_new(&probe).await,
        Err(StoreError::ConditionFailed)
    ));
}
