//! Retention against the emulator: the access log of every call, kept encrypted for 90 days.

use e2e::{call_api, stack, sub_of};
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, StatusCode};
use shared::Clock;
use shared::access_log::{self, ANONYMOUS};

#[tokio::test]
async fn every_call_is_logged_with_its_ip_encrypted_and_forgotten_after_90_days() {
    let stack = stack();
    let user = stack.user("logged", &["customer"]).await;
    let user_id = sub_of(&user.id_token);
    let before = Timestamp::now();
    let (status, _) = call_api(Method::GET, "/v1/me", Some(&user.id_token), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no account yet");
    let (status, _) = call_api(Method::GET, "/v1/privacy/policy", None, None, None).await;
    assert!(status.is_success() || status == StatusCode::NOT_FOUND);

    let state = stack.state("RegistrationFunction", Clock::System).await;
    let entries = access_log::entries_of(&state.store, &user_id, 10)
        .await
        .expect("entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!((entry.route.as_str(), entry.status_code), ("GET /v1/me", 404));
    assert_eq!(entry.source_ip.as_deref(), Some("127.0.0.1"));
    assert!(entry.accessed_at >= before - SignedDuration::from_secs(1));
    assert!(!entry.request_id.is_empty());
    let anonymous = access_log::entries_of(&state.store, ANONYMOUS, usize::MAX)
        .await
        .expect("anonymous entries");
    assert!(
        anonymous.iter().any(|e| e.route == "GET /v1/privacy/policy"),
        "calls without a token are logged too"
    );

    // Stored: neither the IP nor the time in plaintext.
    let raw = state
        .store
        .raw()
        .query()
        .table_name(state.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(access_log::partition(&user_id)),
        )
        .send()
        .await
        .expect("raw query");
    let dump = format!("{:?}", raw.items());
    assert!(raw.count() == 1 && !dump.contains("127.0.0.1"), "{dump}");
    let stamp = entry.accessed_at.to_string();
    assert!(
        !dump.contains(&stamp[..16]),
        "the access time is stored encrypted"
    );

    // 89 days on the entry is still read; after 90 days it is gone from every read.
    let at = |days: i64| entry.accessed_at + SignedDuration::from_hours(24 * days);
    let later = stack.state("RegistrationFunction", Clock::fixed(at(89))).await;
    assert_eq!(
        access_log::entries_of(&later.store, &user_id, 10)
            .await
            .expect("read")
            .len(),
        1
    );
    let expired = stack.state("RegistrationFunction", Clock::fixed(at(91))).await;
    assert!(
        access_log::entries_of(&expired.store, &user_id, 10)
            .await
            .expect("read")
            .is_empty()
    );
}
