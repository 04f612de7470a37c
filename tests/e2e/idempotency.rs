//! `Idempotency-Key` on the creating POSTs the router keys (`edge::idempotency`), through the local
//! gateway with real tokens: a retry with the same key and body answers what the first call answered
//! and creates nothing; the same key with another body is 422; concurrent first attempts create once;
//! a failed call frees its key; a key is its caller's and its path's alone; the kept answer is
//! encrypted and goes with the person's erasure. (Booking and privacy requests, whose domain keys
//! them, are tested in `requests.rs` and `privacy.rs`. Publishing a policy version goes through the
//! same router code, but is left out here: it would change the version in force under every other
//! test, and `privacy.rs` needs to publish it first.)

use crate::accounts::{agency_body, customer_body, provider_body};
use crate::scheduling::{always, book_at, next_tuesday_10, officer_with, world};
use e2e::{call_api, raw_items_of, raw_partition, stack, sub_of, unique_email};
use jiff::SignedDuration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn post(path: &str, token: Option<&str>, body: Option<&Value>, key: &str) -> (StatusCode, Value) {
    call_api(Method::POST, path, token, body, Some(key)).await
}

/// Sends one creating call, then its retry with the same key, then (when given) the same key with
/// `changed`: the retry gets the first answer, the changed body 422. Returns the first answer.
async fn replays(
    label: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    changed: Option<&Value>,
) -> Value {
    let key = uuid::Uuid::new_v4().to_string();
    let (status, first) = post(path, token, body, &key).await;
    assert!(
        status.is_success(),
        "{label}: the first call answers {status}: {first}"
    );
    let (again_status, again) = post(path, token, body, &key).await;
    assert_eq!(
        (again_status, &again),
        (status, &first),
        "{label}: the retry answers what the first call answered"
    );
    if let Some(changed) = changed {
        let (status, problem) = post(path, token, Some(changed), &key).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {problem}");
        assert!(
            problem.to_string().contains("Idempotency-Key"),
            "{label}: the problem names the key: {problem}"
        );
    }
    first
}

fn count_of(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
    item_type: &str,
) -> usize {
    items
        .iter()
        .filter(|item| {
            item.get("item_type")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some(item_type)
        })
        .count()
}

#[tokio::test]
async fn every_keyed_creating_post_answers_a_retry_with_its_first_answer_and_creates_nothing_more() {
    let stack = stack();
    let w = world(|_| {}).await;
    let ops = stack.user("idemops", &["ops"]).await.id_token;
    let privacy_officer = stack.user("idemprivacy", &["privacy_officer"]).await.id_token;

    // An agency (ops).
    let agency = agency_body(&[&w.admin.user_id]);
    let mut renamed = agency.clone();
    renamed["agency_name"] = json!("Teton County Sheriff");
    let created = replays(
        "agency",
        "/v1/agencies",
        Some(&ops),
        Some(&agency),
        Some(&renamed),
    )
    .await;
    assert!(created["agency_id"].is_string(), "{created}");

    // A customer's registration, consent and signed-in inquiry.
    let email = unique_email("idemcustomer");
    let customer = stack.user_with_email(&email, &["customer"]).await.id_token;
    let body = customer_body(&email, "Rosalind Ashdown-Meyer");
    let mut other_name = body.clone();
    other_name["name"] = json!("Rosalind Meyer");
    replays(
        "customer",
        "/v1/customers",
        Some(&customer),
        Some(&body),
        Some(&other_name),
    )
    .await;
    let consents_before = count_of(&raw_partition(&sub_of(&customer)).await, "consent_record");
    let consent = json!({"marketing": true, "source": "app"});
    replays(
        "consent",
        "/v1/me/consents",
        Some(&customer),
        Some(&consent),
        Some(&json!({"marketing": false, "source": "app"})),
    )
    .await;
    let inquiry = json!({"message": "Ask about the regatta bill", "topic": "billing"});
    replays(
        "inquiry",
        "/v1/me/support/inquiries",
        Some(&customer),
        Some(&inquiry),
        Some(&json!({"message": "Another question", "topic": "billing"})),
    )
    .await;
    let items = raw_partition(&sub_of(&customer)).await;
    assert_eq!(
        (
            count_of(&items, "customer_account"),
            count_of(&items, "consent_record") - consents_before,
            count_of(&items, "support_inquiry")
        ),
        (1, domain::consent::MARKETING_CHANNELS.len(), 1),
        "registered once, one consent decision (a record per marketing channel), one inquiry"
    );

    // A provider's registration with the world's agency.
    let provider_email = unique_email("idemprovider");
    let provider = stack
        .user_with_email(&provider_email, &["provider"])
        .await
        .id_token;
    let body = provider_body(&provider_email, Some(&w.agency_id));
    let mut other_phone = body.clone();
    other_phone["phone"] = json!("+13075550134");
    replays(
        "provider",
        "/v1/providers",
        Some(&provider),
        Some(&body),
        Some(&other_phone),
    )
    .await;

    // An anonymous inquiry.
    let anonymous = json!({"email": unique_email("idemanon"), "message": "Do you staff regattas?", "name": "Persephone Fenwick", "topic": "information"});
    let mut other_message = anonymous.clone();
    other_message["message"] = json!("Do you staff rodeos?");
    replays(
        "anonymous inquiry",
        "/v1/support/inquiries",
        None,
        Some(&anonymous),
        Some(&other_message),
    )
    .await;

    // A disclosure about the customer (privacy officer).
    let disclosure = json!({"data_categories": ["customer_account"], "disclosed_at": "2026-11-20T10:00:00Z",
        "legal_basis": "court order", "recipient": "Sublette County Court", "recipient_category": "legal_demand",
        "reference": "CV-2026-118", "subject_user_id": sub_of(&customer)});
    let mut other_reference = disclosure.clone();
    other_reference["reference"] = json!("CV-2026-119");
    replays(
        "disclosure",
        "/v1/admin/disclosures",
        Some(&privacy_officer),
        Some(&disclosure),
        Some(&other_reference),
    )
    .await;
    let logged = raw_items_of(&platform::keys::privacy_partition(&sub_of(&customer))).await;
    assert_eq!(count_of(&logged, "disclosure"), 1, "one disclosure logged");

    // A dispatcher's placement and an officer's claim, each on a request of its own.
    let start = next_tuesday_10() + SignedDuration::from_hours(24 * 7 * 22);
    let placed_email = unique_email("idemplaced");
    let placed = officer_with(&w, None, placed_email, always(), |_| {}).await;
    let request_id = book_at(&w, start, 2, 1, false).await;
    let path = format!("/v1/service-requests/{request_id}/assignments");
    let assignment = json!({"officer_user_id": placed.user_id});
    replays(
        "assignment",
        &path,
        Some(&w.dispatcher_token),
        Some(&assignment),
        Some(&json!({"officer_user_id": "someone-else"})),
    )
    .await;
    let claimer_email = unique_email("idemclaimer");
    let claimer = stack
        .user_with_email(&claimer_email, &["provider"])
        .await
        .id_token;
    officer_with(&w, Some(sub_of(&claimer)), claimer_email, always(), |_| {}).await;
    let first_request = book_at(&w, start + SignedDuration::from_hours(24), 2, 1, false).await;
    let claim = replays(
        "claim",
        &format!("/v1/service-requests/{first_request}/claims"),
        Some(&claimer),
        None,
        None,
    )
    .await;
    // One key is scoped to its path: the same key on another request claims that one.
    let key = uuid::Uuid::new_v4().to_string();
    let second_request = book_at(&w, start + SignedDuration::from_hours(48), 2, 1, false).await;
    let third_request = book_at(&w, start + SignedDuration::from_hours(72), 2, 1, false).await;
    let (status, second) = post(
        &format!("/v1/service-requests/{second_request}/claims"),
        Some(&claimer),
        None,
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (status, third) = post(
        &format!("/v1/service-requests/{third_request}/claims"),
        Some(&claimer),
        None,
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert_ne!(second["assignment_id"], third["assignment_id"]);
    assert_ne!(claim["assignment_id"], second["assignment_id"]);
}

#[tokio::test]
async fn concurrent_first_attempts_with_one_key_create_one_agency() {
    let stack = stack();
    let ops = stack.user("idemraceops", &["ops"]).await.id_token;
    let admin = stack.user("idemraceadmin", &["agency_admin"]).await.id_token;
    let body = agency_body(&[&sub_of(&admin)]);
    let key = uuid::Uuid::new_v4().to_string();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (ops, body, key) = (ops.clone(), body.clone(), key.clone());
        racers.spawn(async move { post("/v1/agencies", Some(&ops), Some(&body), &key).await });
    }
    let mut created = std::collections::BTreeSet::new();
    let mut in_progress = 0;
    while let Some(answer) = racers.join_next().await {
        let (status, answer) = answer.expect("task");
        match status {
            StatusCode::CREATED => {
                created.insert(answer["agency_id"].to_string());
            }
            StatusCode::CONFLICT => {
                assert!(answer["detail"].to_string().contains("in progress"), "{answer}");
                in_progress += 1;
            }
            other => panic!("a racer got {other}: {answer}"),
        }
    }
    assert_eq!(
        created.len(),
        1,
        "one agency for one key ({in_progress} were told to retry)"
    );
    // Once the first finished, a retry answers it.
    let (status, again) = post("/v1/agencies", Some(&ops), Some(&body), &key).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(created.first(), Some(&again["agency_id"].to_string()));
}

#[tokio::test]
async fn a_failed_call_frees_its_key_a_key_is_its_callers_alone_and_erasure_removes_the_answers() {
    let stack = stack();
    let email = unique_email("idemfreed");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    let consent = json!({"marketing": true, "source": "app"});
    let key = uuid::Uuid::new_v4().to_string();
    // Not registered yet: 404, and the key is free again.
    let (status, problem) = post("/v1/me/consents", Some(&token), Some(&consent), &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, account) = post(
        "/v1/customers",
        Some(&token),
        Some(&customer_body(&email, "Ottoline Barrowcliffe")),
        &uuid::Uuid::new_v4().to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let (status, recorded) = post("/v1/me/consents", Some(&token), Some(&consent), &key).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the key is free after the 404: {recorded}"
    );

    // Another user's same key is theirs: their own call runs (here: 404, they never registered).
    let stranger = stack.user("idemstranger", &["customer"]).await.id_token;
    let (status, theirs) = post("/v1/me/consents", Some(&stranger), Some(&consent), &key).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "not the first user's answer: {theirs}"
    );

    // A key that is not 1 to 200 visible ASCII characters is refused before anything runs.
    for bad in ["x".repeat(201), "two words".to_owned()] {
        let (status, problem) = post("/v1/agencies", Some(&token), Some(&consent), &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(
            problem["detail"].to_string().contains("Idempotency-Key"),
            "{problem}"
        );
    }

    // The markers hold no answer of a registered user: the answers are in the user's own partition,
    // under their own key (so shredding it reaches every copy), and encrypted.
    let partition = platform::keys::idempotency_partition(&user_id);
    let markers = raw_items_of(&partition).await;
    assert_eq!(markers.len(), 2, "the registration's and the consent's markers");
    for marker in &markers {
        assert!(!marker.contains_key("answer"), "{marker:?}");
        assert!(
            marker.get("body_digest").is_some_and(|hash| hash.as_s().is_err()),
            "the hash is encrypted"
        );
    }
    let own = raw_partition(&user_id).await;
    let copies: Vec<_> = own
        .iter()
        .filter(|item| {
            item.get("item_type")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                == Some("idempotent_answer")
        })
        .collect();
    assert_eq!(copies.len(), 2, "the registration's and the consent's answers");
    for item in &copies {
        let answer = item.get("answer").expect("an answer");
        assert!(
            answer.as_s().is_err(),
            "the answer is ciphertext, not text: {answer:?}"
        );
        assert!(!format!("{item:?}").contains("Barrowcliffe"));
    }
    // ...and go with the person.
    let (status, deletion) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&json!({"type": "deletion", "jurisdiction": "ccpa"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deletion}");
    let done = e2e::await_request(&token, deletion["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    assert!(
        raw_items_of(&partition).await.is_empty(),
        "the erasure deleted the kept answers"
    );
}

#[tokio::test]
async fn one_key_sent_by_two_anonymous_senders_makes_two_inquiries() {
    // The anonymous route's keys are scoped to the sender (the keyed digest of their address): a key
    // another sender chose (or guessed) neither answers with their receipt nor refuses this one.
    let key = uuid::Uuid::new_v4().to_string();
    let mut receipts = Vec::new();
    for sender in ["idemfirst", "idemsecond"] {
        let body = json!({"email": unique_email(sender), "message": "Do you staff regattas?", "name": "Persephone Fenwick", "topic": "information"});
        let (status, receipt) = post("/v1/support/inquiries", None, Some(&body), &key).await;
        assert_eq!(status, StatusCode::CREATED, "{sender}: {receipt}");
        // The sender's own retry is still a replay of their own receipt.
        let (status, again) = post("/v1/support/inquiries", None, Some(&body), &key).await;
        assert_eq!((status, &again), (StatusCode::CREATED, &receipt), "{sender}");
        receipts.push(receipt);
    }
    assert_ne!(receipts[0], receipts[1], "two senders, two inquiries");
}
