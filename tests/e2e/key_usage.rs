//! How often encryption goes to KMS and to the key store: the hierarchical keyring caches each
//! user's branch key, so calls grow with the number of users touched, not with operations.
//! Prints the figures (run with `--nocapture` to see them) and fails if caching stops working.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use domain::samples;
use e2e::{new_user, stack};
use platform::AppState;
use platform::Clock;
use platform::crypto::KeyClients;
use platform::store::Record;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Counts the operations a client sends, by operation name.
#[derive(Debug, Clone, Default)]
struct CallCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("?", Metadata::name).to_owned();
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(operation).or_default() += 1;
        }
        Ok(())
    }
}

impl CallCounter {
    fn snapshot(&self) -> BTreeMap<String, usize> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
    fn total(&self) -> usize {
        self.snapshot().values().sum()
    }
}

/// A fresh function state (empty key caches) whose KMS and key-store clients are counted.
async fn counted_state() -> (AppState, CallCounter, CallCounter) {
    let stack = stack();
    let sdk = stack.sdk().await;
    let kms_calls = CallCounter::default();
    let key_store_calls = CallCounter::default();
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&sdk)
            .interceptor(kms_calls.clone())
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(key_store_calls.clone())
            .build(),
    );
    let config = stack.stack.function_config("RequestsFunction").expect("config");
    let state = AppState::with_key_clients(config, &sdk, Clock::System, KeyClients { kms, dynamodb })
        .await
        .expect("state");
    (state, kms_calls, key_store_calls)
}

#[tokio::test]
async fn kms_and_key_store_calls_grow_with_users_not_operations() {
    let setup = stack().state("RequestsFunction", Clock::System).await;

    // One user: 100 writes and 100 reads.
    let user = new_user(&setup).await;
    let (state, kms, key_store) = counted_state().await;
    let mut keys = Vec::new();
    for index in 0..100 {
        let payment = samples::payment(&user, &format!("one-{index:03}"));
        state.store.create(&payment).await.expect("write");
        keys.push(payment.key());
    }
    for key in &keys {
        assert!(
            state
                .store
                .get::<domain::service_requests::payments::PaymentRecord>(key)
                .await
                .expect("read")
                .is_some()
        );
    }
    let one_user = (kms.total(), key_store.total());
    eprintln!(
        "1 user, 100 writes + 100 reads: KMS {:?}, key store {:?}",
        kms.snapshot(),
        key_store.snapshot()
    );

    // 100 users: one write and one read each.
    let mut users = Vec::new();
    for _ in 0..100 {
        users.push(new_user(&setup).await);
    }
    let (state, kms, key_store) = counted_state().await;
    for user in &users {
        let payment = samples::payment(user, "many");
        state.store.create(&payment).await.expect("write");
        assert!(
            state
                .store
                .get::<domain::service_requests::payments::PaymentRecord>(&payment.key())
                .await
                .expect("read")
                .is_some()
        );
    }
    let many_users = (kms.total(), key_store.total());
    eprintln!(
        "100 users, 1 write + 1 read each: KMS {:?}, key store {:?}",
        kms.snapshot(),
        key_store.snapshot()
    );

    // Per cache period the keyring fetches a user's branch key twice (as the active key to write, by
    // version to read), plus the beacon key once: never once per operation.
    assert!(
        one_user.0 <= 3 && one_user.1 <= 3,
        "one user's keys are fetched once, then cached: {one_user:?}"
    );
    assert!(
        many_users.0 <= 2 * 100 + 1 && many_users.1 <= 2 * 100 + 1,
        "two fetches per user at most: {many_users:?}"
    );
    // And the counters do count: each user's own key is fetched (and unwrapped by KMS) at least
    // once, so zero calls, or as few for 100 users as for one, would mean the keys were not used.
    assert!(
        one_user.0 >= 1 && one_user.1 >= 1,
        "one user's key is fetched at least once: {one_user:?}"
    );
    assert!(
        many_users.0 >= 100 && many_users.1 >= 100,
        "every one of 100 users' keys is fetched: {many_users:?}"
    );
}
