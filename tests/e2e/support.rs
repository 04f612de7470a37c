//! Support inquiries through the local gateway: an anonymous and a signed-in inquiry are
//! acknowledged, answered by mail (read back from the emulator's SES) and closed with their retention
//! clock running; a report about a minor reaches the privacy officers; inquiries are the sender's data
//! (inventory, export) and go with their erasure, including those sent anonymously from their address.

use e2e::{await_request, call_api, mails_to, stack, sub_of, unique_email};
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every raw item (no decryption) of partition `pk`, as debug text.
async fn raw_items(pk: &str) -> Vec<String> {
    e2e::raw_items_of(pk)
        .await
        .iter()
        .map(|item| format!("{item:?}"))
        .collect()
}

fn anonymous_partition(inquiry_id: &str) -> String {
    let hash = inquiry_id
        .split('.')
        .nth(1)
        .expect("the id names the address hash");
    format!("INQUIRER#{hash}")
}

async fn send_anonymous(email: &str, topic: &str, message: &str) -> Value {
    let body = json!({"name": "Marguerite Oyelaran", "email": email, "topic": topic, "message": message});
    let (status, receipt) = call_api(Method::POST, "/v1/support/inquiries", None, Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    receipt
}

fn queue_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["inquiry_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_anonymous_inquiry_is_acknowledged_answered_by_mail_and_closed_with_its_clock_running() {
    let stack = stack();
    let email = unique_email("asker");
    let message = "Do you staff school graduations in Sublette County? Ask for Ms Oyelaran.";
    let receipt = send_anonymous(&email, "information", message).await;
    let id = receipt["inquiry_id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("a."), "{receipt}");
    assert_eq!(receipt["status"], "open");

    // The acknowledgement names the reference, never the message.
    let acknowledgement = mails_to(&email).await;
    assert_eq!(acknowledgement.len(), 1, "{acknowledgement:?}");
    assert!(acknowledgement[0].contains(&id));
    assert!(
        !acknowledgement[0].contains("graduations"),
        "{}",
        acknowledgement[0]
    );

    // Stored encrypted: neither the name, the address nor the message is readable in the table.
    let raw = raw_items(&anonymous_partition(&id)).await.join("\n");
    assert!(raw.contains("support_inquiry"), "{raw}");
    for plain in ["Oyelaran", "graduations", email.as_str()] {
        assert!(!raw.contains(plain), "{plain} is stored in plaintext");
    }

    // Bad input: a clear error, nothing stored.
    for (body, pointer) in [
        (
            json!({"name": "A", "email": "not-an-address", "topic": "general", "message": "hi"}),
            "/email",
        ),
        (
            json!({"name": "A", "email": email, "topic": "general", "message": ""}),
            "/message",
        ),
        (
            json!({"name": "A", "email": email, "topic": "general", "message": "x".repeat(5001)}),
            "/message",
        ),
    ] {
        let (status, problem) =
            call_api(Method::POST, "/v1/support/inquiries", None, Some(&body), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(e2e::pointers(&problem).contains(pointer), "{problem}");
    }
    let body = json!({"name": "A", "email": email, "topic": "gossip", "message": "hi"});
    let (status, problem) = call_api(Method::POST, "/v1/support/inquiries", None, Some(&body), None).await;
    assert!(status.is_client_error(), "{status} {problem}");

    // Only support staff see the queue; support sees the sender's word marked as such.
    let customer = stack.user("curious", &["customer"]).await.id_token;
    let (status, _) = call_api(Method::GET, "/v1/support/inquiries", Some(&customer), None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{id}"),
        Some(&customer),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call_api(Method::GET, "/v1/support/inquiries", None, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let support = stack.user("helpdesk", &["support"]).await.id_token;
    let (status, queue) = e2e::listed("/v1/support/inquiries", &support).await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let seen = queue["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["inquiry_id"] == id.as_str())
        .unwrap_or_else(|| panic!("the inquiry is in the open queue: {queue}"))
        .clone();
    assert_eq!(seen["sender"], "unverified");
    assert_eq!(seen["message"], message);
    assert_eq!(seen["email"], email.as_str());

    // The answer is mailed to the address given, and kept.
    let answer = json!({"message": "Yes: our officers staff graduations across Sublette County."});
    let path = format!("/v1/support/inquiries/{id}/answers");
    let (status, _) = call_api(Method::POST, &path, Some(&customer), Some(&answer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only support answers");
    let (status, answered) = call_api(Method::POST, &path, Some(&support), Some(&answer), None).await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["status"], "answered");
    assert_eq!(answered["answers"][0]["mailed"], true, "{answered}");
    let mails = mails_to(&email).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains("staff graduations across Sublette")
                && m.contains("\"source\":\"support@officertrak.com\"")),
        "the answer reached the sender, from the support address: {mails:?}"
    );
    let (_, open) = e2e::listed("/v1/support/inquiries", &support).await;
    assert!(
        !queue_ids(&open).contains(&id),
        "answered inquiries leave the open queue"
    );
    let (_, waiting) = e2e::listed("/v1/support/inquiries?status=answered", &support).await;
    assert!(queue_ids(&waiting).contains(&id), "{waiting}");

    // Closing starts the 2-year retention: the item carries its expiry, the queue forgets it.
    let close = format!("/v1/support/inquiries/{id}/close");
    let (status, closed) = call_api(Method::POST, &close, Some(&support), None, None).await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    let closed_at: jiff::Timestamp = closed["closed_at"]
        .as_str()
        .expect("closed_at")
        .parse()
        .expect("time");
    let kept_until: jiff::Timestamp = closed["kept_until"]
        .as_str()
        .expect("kept_until")
        .parse()
        .expect("time");
    let kept = kept_until.duration_since(closed_at).as_hours();
    assert!((365 * 2 * 24..=366 * 2 * 24).contains(&kept), "kept {kept} h");
    let raw = raw_items(&anonymous_partition(&id)).await.join("\n");
    assert!(
        raw.contains(&format!("\"expires_at\": N(\"{}\")", kept_until.as_second())),
        "the TTL attribute is set: {raw}"
    );
    let (status, _) = call_api(Method::POST, &close, Some(&support), None, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "closing twice");
    let (status, _) = call_api(Method::POST, &path, Some(&support), Some(&answer), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a closed inquiry takes no answer");
    let (_, waiting) = e2e::listed("/v1/support/inquiries?status=answered", &support).await;
    assert!(!queue_ids(&waiting).contains(&id));
    let (status, read) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, read["status"].clone()),
        (StatusCode::OK, json!("closed"))
    );

    // A forged id reaches nothing.
    for forged in ["u.someone.else", "a.x.y", "USER%23x", "u.a%23b.c"] {
        let (status, problem) = call_api(
            Method::GET,
            &format!("/v1/support/inquiries/{forged}"),
            Some(&support),
            None,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{forged}: {problem}");
    }
}

#[tokio::test]
async fn an_address_cannot_flood_support_or_a_strangers_mailbox() {
    let email = unique_email("flooded");
    for _ in 0..5 {
        send_anonymous(&email, "general", "Hello").await;
    }
    let body = json!({"name": "A", "email": email, "topic": "general", "message": "Hello"});
    let (status, problem) = call_api(Method::POST, "/v1/support/inquiries", None, Some(&body), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    assert_eq!(mails_to(&email).await.len(), 5, "no mail for the refused one");
}

#[tokio::test]
async fn a_quiet_inquiry_is_closed_by_the_hourly_run() {
    let email = unique_email("quiet");
    let id = send_anonymous(&email, "booking", "Is a Saturday booking possible?").await["inquiry_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let key = platform::store::ItemKey::new(
        anonymous_partition(&id),
        format!("INQUIRY#{}", id.rsplit('.').next().expect("uuid")),
    );
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 89);
    let state = stack()
        .function_state("RetentionFunction", Clock::fixed(soon))
        .await;
    assert!(
        !domain::support::close_if_quiet(&state, &key)
            .await
            .expect("review"),
        "not yet due after 89 days"
    );
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 91);
    let state = stack()
        .function_state("RetentionFunction", Clock::fixed(due))
        .await;
    assert!(
        domain::support::close_if_quiet(&state, &key)
            .await
            .expect("review")
    );
    let support = stack().user("helpdesk", &["support"]).await.id_token;
    let (_, read) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(read["status"], "closed", "{read}");
    assert!(read["kept_until"].is_string(), "its retention runs: {read}");
    assert!(
        !domain::support::close_if_quiet(&state, &key)
            .await
            .expect("review"),
        "closing is done once"
    );
}

#[tokio::test]
async fn a_report_about_a_minor_reaches_the_privacy_officers_and_only_that() {
    let stack = stack();
    let officer_email = unique_email("privacy-officer");
    let officer = stack
        .user_with_email(&officer_email, &["privacy_officer"])
        .await
        .id_token;
    let report = send_anonymous(
        &unique_email("parent"),
        "minor_data",
        "My son (15) has an account.",
    )
    .await;
    let report_id = report["inquiry_id"].as_str().expect("id").to_owned();
    let other = send_anonymous(&unique_email("other"), "billing", "A question about an invoice").await;
    let other_id = other["inquiry_id"].as_str().expect("id").to_owned();

    let mails = mails_to(&officer_email).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains(&report_id) && !m.contains("My son")),
        "the privacy officers are told the reference only: {mails:?}"
    );
    assert!(!mails.iter().any(|m| m.contains(&other_id)));
    let (status, queue) = e2e::listed("/v1/support/inquiries", &officer).await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let ids = queue_ids(&queue);
    assert!(ids.contains(&report_id), "{queue}");
    assert!(
        !ids.contains(&other_id),
        "a privacy officer sees only reports about minors"
    );
    assert!(
        queue["items"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|i| i["minor_report"] == true)
    );
    let (status, read) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{report_id}"),
        Some(&officer),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, read["minor_report"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, _) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{other_id}"),
        Some(&officer),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call_api(
        Method::POST,
        &format!("/v1/support/inquiries/{report_id}/close"),
        Some(&officer),
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "support closes, not the privacy officers"
    );
}

#[tokio::test]
async fn inquiries_are_the_senders_data_in_the_inventory_and_export_and_go_with_their_erasure() {
    let stack = stack();
    let email = unique_email("member");
    let token = stack.user_with_email(&email, &["customer"]).await.id_token;
    let user_id = sub_of(&token);
    let body = crate::accounts::customer_body(&email, "Temperance Aldous-Okafor");
    let (status, account) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");

    // Before signing in to write, they wrote anonymously from the same address (another spelling).
    let anonymous = send_anonymous(&email.to_uppercase(), "account", "Can I book for my school?").await;
    let anonymous_id = anonymous["inquiry_id"].as_str().expect("id").to_owned();

    // Signed in: the body cannot name another address to be answered at.
    let forged =
        json!({"topic": "billing", "message": "Where is my invoice?", "email": "attacker@example.com"});
    let (status, _) = call_api(
        Method::POST,
        "/v1/me/support/inquiries",
        Some(&token),
        Some(&forged),
        None,
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    let mine = json!({"topic": "billing", "message": "Where is my invoice for the regatta?"});
    let (status, receipt) = call_api(
        Method::POST,
        "/v1/me/support/inquiries",
        Some(&token),
        Some(&mine),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    let id = receipt["inquiry_id"].as_str().expect("id").to_owned();
    assert_eq!(id.split('.').nth(1), Some(user_id.as_str()));

    // Support answers; the mail goes to the account's verified address.
    let support = stack.user("helpdesk", &["support"]).await.id_token;
    let answer = json!({"message": "Your regatta invoice is under Invoices in the app."});
    let (status, answered) = call_api(
        Method::POST,
        &format!("/v1/support/inquiries/{id}/answers"),
        Some(&support),
        Some(&answer),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["sender"], "account");
    assert!(
        mails_to(&email)
            .await
            .iter()
            .any(|m| m.contains("under Invoices in the app")),
        "answered at the verified address"
    );
    let (status, own) = call_api(Method::GET, "/v1/me/support/inquiries", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(queue_ids(&own), vec![id.clone()]);
    assert_eq!(own["items"][0]["answers"][0]["message"], answer["message"]);
    let stranger = stack.user("stranger", &["customer"]).await.id_token;
    let (_, theirs) = call_api(
        Method::GET,
        "/v1/me/support/inquiries",
        Some(&stranger),
        None,
        None,
    )
    .await;
    assert!(
        queue_ids(&theirs).is_empty(),
        "nobody reads another's inquiries: {theirs}"
    );

    let (status, inventory) = call_api(Method::GET, "/v1/me/data-inventory", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "{inventory}");
    let category = inventory["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["category"] == "support_inquiry")
        .unwrap_or_else(|| panic!("the inventory describes inquiries: {inventory}"))
        .clone();
    assert_eq!(category["records_held"], 1, "{category}");
    assert_eq!(category["retention"]["class"], "support_inquiry");

    // The access export holds both: the signed-in one and the one sent anonymously from the address.
    let (status, queued) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&json!({"type": "access", "jurisdiction": "ccpa"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let access = await_request(&token, queued["id"].as_str().expect("id")).await;
    assert_eq!(access["status"], "fulfilled", "{access}");
    let manifest = &access["result"]["export"];
    assert_eq!(manifest["items_by_type"]["support_inquiry"], 2, "{manifest}");
    let export_path = format!(
        "/v1/privacy-requests/{}/export",
        access["id"].as_str().expect("id")
    );
    let mut document = String::new();
    for part in 0..manifest["parts"].as_u64().expect("parts") {
        let response = reqwest::Client::new()
            .get(stack.url(&format!("{export_path}?part={part}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("part");
        document.push_str(&response.text().await.expect("text"));
    }
    assert!(document.contains("Where is my invoice for the regatta?"));
    assert!(document.contains("Can I book for my school?"));
    assert!(
        raw_items(&anonymous_partition(&anonymous_id)).await.is_empty(),
        "the anonymous inquiry moved into the user's own partition, under their key"
    );

    // Erased with the user: nothing of either inquiry is left.
    let (status, deletion) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&json!({"type": "deletion", "jurisdiction": "ccpa"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deletion}");
    let done = await_request(&token, deletion["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    let report = &done["result"]["erasure"];
    let counted = report["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["item_type"] == "support_inquiry")
        .unwrap_or_else(|| panic!("the erasure report counts inquiries: {report}"))
        .clone();
    assert_eq!(
        (counted["found"].clone(), counted["deleted"].clone()),
        (json!(2), json!(2)),
        "{counted}"
    );
    let left = raw_items(&platform::keys::user_partition(&user_id)).await;
    assert!(
        !left.iter().any(|item| item.contains("support_inquiry")),
        "no inquiry survives the erasure: {left:?}"
    );
    let (status, _) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Delivers a message to the support address the way SES does: the raw message into the mail
/// bucket under `inbound/<message id>`, then the receipt event (from `events/`) to the inbound-mail
/// function, in process. Returns the message id and what became of the message.
async fn deliver(
    from: &str,
    subject: &str,
    body: &str,
    received_at: jiff::Timestamp,
    spam: &str,
) -> (String, domain::support::MailOutcome) {
    let message_id = uuid::Uuid::new_v4().simple().to_string();
    deliver_as(&message_id, from, subject, body, received_at, spam).await
}

async fn deliver_as(
    message_id: &str,
    from: &str,
    subject: &str,
    body: &str,
    received_at: jiff::Timestamp,
    spam: &str,
) -> (String, domain::support::MailOutcome) {
    deliver_with(
        message_id,
        from,
        subject,
        body,
        received_at,
        &[("spamVerdict", spam)],
    )
    .await
}

/// [`deliver_as`] with SES's verdicts (`spamVerdict`, `spfVerdict`, `dkimVerdict`, `dmarcVerdict`…)
/// set as given; the others stay `PASS` as in the fixture.
async fn deliver_with(
    message_id: &str,
    from: &str,
    subject: &str,
    body: &str,
    received_at: jiff::Timestamp,
    verdicts: &[(&str, &str)],
) -> (String, domain::support::MailOutcome) {
    let stack = stack();
    let sdk = stack.sdk().await;
    let s3 = infra::bootstrap::s3_client(&sdk);
    let bucket = stack
        .stack
        .physical_id("SupportMailBucket")
        .expect("the mail bucket");
    let raw = format!(
        "From: {from}\r\nTo: support@officertrak.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}@mail.example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    s3.put_object()
        .bucket(&bucket)
        .key(format!("{}{message_id}", inbound_mail::OBJECT_PREFIX))
        .body(raw.into_bytes().into())
        .send()
        .await
        .expect("the message is stored");
    let mut event: Value = serde_json::from_str(&e2e::event("inbound-mail-receipt.json")).expect("fixture");
    let record = &mut event["Records"][0]["ses"];
    record["mail"]["messageId"] = json!(message_id);
    record["mail"]["timestamp"] = json!(received_at.to_string());
    record["receipt"]["timestamp"] = json!(received_at.to_string());
    for (verdict, status) in verdicts {
        record["receipt"][*verdict]["status"] = json!(status);
    }
    let event: aws_lambda_events::event::ses::SimpleEmailEvent =
        serde_json::from_value(event).expect("a receipt event");
    let state = stack.function_state("InboundMailFunction", Clock::System).await;
    // The function reads the message with its own role (SES stored it with SES's).
    let mailbox = inbound_mail::Mailbox {
        s3: infra::bootstrap::s3_client(&stack.stack.function_sdk_config("InboundMailFunction").await),
        bucket,
    };
    let outcome = inbound_mail::take_in(&state, &mailbox, &event.records[0])
        .await
        .expect("the message is taken in");
    // The whole handler takes the same event again without error (a redelivery).
    inbound_mail::handle(&state, &mailbox, event)
        .await
        .expect("the handler answers");
    (message_id.to_owned(), outcome)
}

async fn registered_customer(name: &str) -> (String, String, String) {
    let email = unique_email(name);
    let token = stack().user_with_email(&email, &["customer"]).await.id_token;
    let body = crate::accounts::customer_body(&email, "Temperance Aldous-Okafor");
    let (status, account) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let user_id = sub_of(&token);
    (email, token, user_id)
}

fn request_in(list: &Value, id: &str) -> Value {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_emailed_deletion_request_counts_from_receipt_and_runs_only_once_the_account_holder_confirms() {
    use domain::support::MailOutcome;
    let (email, token, user_id) = registered_customer("writer").await;
    let received = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(72);
    let (message_id, outcome) = deliver(
        &format!("Temperance Aldous-Okafor <{email}>"),
        "Please delete my account",
        "Hello, I no longer use OfficerTRAK. Please delete my data.",
        received,
        "PASS",
    )
    .await;
    let MailOutcome::Received {
        inquiry_id,
        written_request: Some(request_id),
    } = outcome
    else {
        panic!("a written deletion request was opened: {outcome:?}");
    };

    // Recorded, its clock running from the mail's receipt, and nothing done yet.
    let (_, list) = call_api(Method::GET, "/v1/privacy-requests", Some(&token), None, None).await;
    let request = request_in(&list, &request_id);
    assert_eq!(request["status"], "identity_unverified", "{list}");
    assert_eq!(request["type"], "deletion");
    let received_at: jiff::Timestamp = request["received_at"]
        .as_str()
        .expect("received_at")
        .parse()
        .expect("time");
    assert_eq!(
        received_at.as_second(),
        received.as_second(),
        "counted from receipt"
    );
    let due: jiff::Timestamp = request["due_at"].as_str().expect("due_at").parse().expect("time");
    assert_eq!(due.duration_since(received_at).as_hours(), 30 * 24);
    let (status, _) = call_api(Method::GET, "/v1/me", Some(&token), None, None).await;
    assert_eq!(status, StatusCode::OK, "the account is untouched until confirmed");
    let mails = mails_to(&email).await;
    assert!(mails.iter().any(|m| m.contains("Confirm the privacy request we received by mail") && m.contains(&request_id)), "{mails:?}");
    assert!(
        mails.iter().any(|m| m.contains("We received your message")),
        "{mails:?}"
    );

    // The same message delivered again is the same inquiry and the same request.
    let (_, again) = deliver_as(
        &message_id,
        &format!("Temperance Aldous-Okafor <{email}>"),
        "Please delete my account",
        "Hello, I no longer use OfficerTRAK. Please delete my data.",
        received,
        "PASS",
    )
    .await;
    assert_eq!(again, MailOutcome::Duplicate);

    // Support sees the mail as an unverified sender's inquiry.
    let support = stack().user("helpdesk", &["support"]).await.id_token;
    let (status, inquiry) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{inquiry_id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{inquiry}");
    assert_eq!(
        (inquiry["channel"].clone(), inquiry["sender"].clone()),
        (json!("email"), json!("unverified"))
    );
    assert_eq!(inquiry["topic"], "privacy");

    // Only the account's holder confirms it.
    let confirm = format!("/v1/privacy-requests/{request_id}/confirmation");
    let stranger = stack().user("stranger", &["customer"]).await.id_token;
    let (status, _) = call_api(Method::POST, &confirm, Some(&stranger), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, confirmed) = call_api(Method::POST, &confirm, Some(&token), None, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{confirmed}");
    assert_eq!(confirmed["status"], "in_progress");
    let done = await_request(&token, &request_id).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    let raw = raw_items(&platform::keys::user_partition(&user_id)).await;
    assert!(
        !raw.iter().any(|i| i.contains("customer_account")),
        "the account is erased"
    );
    assert!(
        raw_items(&anonymous_partition(&inquiry_id)).await.is_empty(),
        "the mail's inquiry went with the erasure"
    );
}

#[tokio::test]
async fn future_clock_a_forged_sender_gets_nothing_done_and_learns_nothing() {
    use domain::support::MailOutcome;
    // Someone writes in a registered customer's name: the request waits for the real holder, who is
    // told; unconfirmed, it lapses and nothing was done.
    let (victim_email, victim_token, victim_id) = registered_customer("victim").await;
    let (_, outcome) = deliver(
        &victim_email,
        "Delete my account",
        "Erase everything now.",
        jiff::Timestamp::now(),
        "PASS",
    )
    .await;
    let MailOutcome::Received {
        written_request: Some(request_id),
        ..
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 15);
    let state = stack()
        .function_state("RetentionFunction", Clock::fixed(later))
        .await;
    let open = domain::privacy::requests::open_requests(&state, 10_000)
        .await
        .expect("open requests");
    assert!(
        domain::privacy::requests::lapse_unconfirmed(&state, &open, 1000)
            .await
            .expect("lapse")
            >= 1
    );
    let (_, list) = call_api(
        Method::GET,
        "/v1/privacy-requests",
        Some(&victim_token),
        None,
        None,
    )
    .await;
    let request = request_in(&list, &request_id);
    assert_eq!(request["status"], "expired", "{list}");
    assert!(
        request["result"]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was done")
    );
    let (status, problem) = call_api(
        Method::POST,
        &format!("/v1/privacy-requests/{request_id}/confirmation"),
        Some(&victim_token),
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a lapsed request cannot be confirmed: {problem}"
    );
    let raw = raw_items(&platform::keys::user_partition(&victim_id)).await;
    assert!(
        raw.iter().any(|i| i.contains("customer_account")),
        "nothing was deleted"
    );
    // The lapsed forgery does not stand in the way of the holder's own deletion.
    let (status, own) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&victim_token),
        Some(&json!({"type": "deletion"})),
        None,
    )
    .await;
    assert_eq!(
        (status, own["id"].clone()),
        (StatusCode::ACCEPTED, json!(request_id)),
        "{own}"
    );
    assert_eq!(
        await_request(&victim_token, &request_id).await["status"],
        "fulfilled"
    );

    // An address no account holds: an inquiry, the same acknowledgement, no request for anyone.
    let unknown = unique_email("nobody");
    let (_, outcome) = deliver(
        &unknown,
        "Send me a copy of my data",
        "I want a copy of my data, and my son (15) uses your app.",
        jiff::Timestamp::now(),
        "PASS",
    )
    .await;
    let MailOutcome::Received {
        inquiry_id,
        written_request: Some(_),
    } = outcome
    else {
        panic!("a request about the address itself: {outcome:?}");
    };
    let mails = mails_to(&unknown).await;
    assert_eq!(
        mails.len(),
        2,
        "the acknowledgement and the signed link, nothing else: {mails:?}"
    );
    assert!(mails.iter().any(|m| m.contains("We received your message")));
    assert!(
        mails
            .iter()
            .all(|m| !m.contains("my son") && !m.contains("Aldous")),
        "nothing of the message or of any account is mailed back: {mails:?}"
    );
    let support = stack().user("helpdesk", &["support"]).await.id_token;
    let (_, inquiry) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{inquiry_id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(
        inquiry["minor_report"], true,
        "a report about a minor is flagged: {inquiry}"
    );

    // A message SES's scan failed is dropped: nothing stored, nobody mailed.
    let spammer = unique_email("spam");
    let (_, outcome) = deliver(
        &spammer,
        "Delete my account",
        "win",
        jiff::Timestamp::now(),
        "FAIL",
    )
    .await;
    assert!(matches!(outcome, MailOutcome::Dropped(_)), "{outcome:?}");
    assert!(mails_to(&spammer).await.is_empty());
}

/// The body of the newest mail to `address` whose text contains `marker`.
async fn mail_body(address: &str, marker: &str) -> String {
    mails_to(address)
        .await
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .rfind(|body| body.contains(marker))
        .unwrap_or_else(|| panic!("no mail to {address} says {marker}"))
}

/// The value after `"<field>": ` in a mailed confirmation (the body is HTML-escaped).
fn mailed_field(body: &str, field: &str) -> String {
    let text = body.replace("&quot;", "\"");
    let start = text.find(&format!("\"{field}\": ")).expect("the field is mailed") + field.len() + 4;
    text[start..]
        .chars()
        .skip_while(|c| *c == '"')
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

#[tokio::test]
async fn an_address_without_an_account_confirms_by_the_signed_link_and_its_messages_are_deleted() {
    use domain::support::MailOutcome;
    let address = unique_email("formless");
    let first = send_anonymous(&address, "information", "Do you staff county fairs?").await;
    let (_, outcome) = deliver(
        &address,
        "Please delete my data",
        "I wrote to you before; please erase what you keep.",
        jiff::Timestamp::now(),
        "PASS",
    )
    .await;
    let MailOutcome::Received {
        inquiry_id,
        written_request: Some(request_id),
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    let body = mail_body(&address, "POST /v1/support/confirmations").await;
    let signature = mailed_field(&body, "signature");
    let expires: i64 = mailed_field(&body, "expires").parse().expect("expiry");
    assert_eq!(mailed_field(&body, "request_id"), request_id);

    // Only the three mailed values together confirm it; nothing else is taken as proof.
    let path = "/v1/support/confirmations";
    for (body, expected) in [
        (
            json!({"request_id": request_id, "expires": expires, "signature": "0".repeat(64)}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"request_id": request_id, "expires": expires + 86_400, "signature": signature}),
            StatusCode::FORBIDDEN,
        ),
        // The signature is checked before anything is read: another id under this signature is
        // refused the same way, so a forged link learns nothing, not even whether a request exists.
        (
            json!({"request_id": "no-such-request", "expires": expires, "signature": signature}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"request_id": request_id}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, problem) = call_api(Method::POST, path, None, Some(&body), None).await;
        assert!(
            status == expected
                || (expected == StatusCode::UNPROCESSABLE_ENTITY && status == StatusCode::BAD_REQUEST),
            "{body}: {status} {problem}"
        );
    }
    assert_eq!(
        raw_items(&anonymous_partition(&inquiry_id)).await.len(),
        2,
        "nothing deleted yet"
    );

    let good = json!({"request_id": request_id, "expires": expires, "signature": signature});
    let (status, done) = call_api(Method::POST, path, None, Some(&good), None).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "fulfilled", "{done}");
    assert!(
        done["result"]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("2 message(s)"),
        "{done}"
    );
    assert!(
        raw_items(&anonymous_partition(&inquiry_id)).await.is_empty(),
        "both messages from the address are gone, the form's and the mail's"
    );
    let support = stack().user("helpdesk", &["support"]).await.id_token;
    let first_id = first["inquiry_id"].as_str().expect("id");
    let (status, _) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{first_id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call_api(Method::POST, path, None, Some(&good), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a link works once");
}

#[tokio::test]
async fn a_written_deletion_is_never_fulfilled_unverified_and_once_closed_blocks_no_new_one() {
    use domain::support::MailOutcome;
    // Someone writes in a customer's name asking to delete the account.
    let (email, token, user_id) = registered_customer("closed-written").await;
    let (_, outcome) = deliver(
        &email,
        "Delete my account",
        "Delete everything.",
        jiff::Timestamp::now(),
        "PASS",
    )
    .await;
    let MailOutcome::Received {
        written_request: Some(request_id),
        ..
    } = outcome
    else {
        panic!("a written deletion request was opened: {outcome:?}");
    };
    let dpo = stack().user("dpo-written", &["privacy_officer"]).await.id_token;
    let decision = format!("/v1/admin/privacy-requests/{request_id}/decision");
    // Nobody confirmed who asked: it cannot be answered as if verified.
    let (status, problem) = call_api(
        Method::POST,
        &decision,
        Some(&dpo),
        Some(&json!({"decision": "fulfil", "summary": "handled by mail"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not verified"),
        "{problem}"
    );
    // Denied (the sender could not be identified): closed.
    let (status, denied) = call_api(
        Method::POST,
        &decision,
        Some(&dpo),
        Some(&json!({"decision": "deny", "basis": "the sender's identity could not be verified"})),
        None,
    )
    .await;
    assert_eq!(
        (status, denied["status"].clone()),
        (StatusCode::OK, json!("denied")),
        "{denied}"
    );

    // The holder's own deletion in the app is a new request, carried out, not the closed one.
    let (status, own) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&token),
        Some(&json!({"type": "deletion"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{own}");
    assert_eq!(own["status"], "in_progress", "{own}");
    // A deletion is fulfilled by its erasure only, never by a privacy officer's word.
    let (status, problem) = call_api(
        Method::POST,
        &format!(
            "/v1/admin/privacy-requests/{}/decision",
            own["id"].as_str().unwrap_or_default()
        ),
        Some(&dpo),
        Some(&json!({"decision": "fulfil", "summary": "done"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    // The denied request is kept, under its own id, with its status.
    let dpo_closed = e2e::listed("/v1/admin/privacy-requests?status=closed", &dpo)
        .await
        .1;
    assert!(
        dpo_closed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["id"]
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("{request_id}-")))
                && r["status"] == "denied"),
        "the denial is kept"
    );
    assert_eq!(
        await_request(&token, own["id"].as_str().unwrap_or_default()).await["status"],
        "fulfilled"
    );
    let raw = raw_items(&platform::keys::user_partition(&user_id)).await;
    assert!(
        !raw.iter().any(|i| i.contains("customer_account")),
        "the account is erased"
    );
}

#[tokio::test]
async fn agents_answering_one_inquiry_at_once_record_and_mail_each_answer_once_and_never_fail() {
    let email = unique_email("raced");
    let receipt = send_anonymous(&email, "information", "Can two of your officers cover a fun run?").await;
    let id = receipt["inquiry_id"].as_str().expect("id").to_owned();
    let mut agents = tokio::task::JoinSet::new();
    for n in 0..6 {
        let token = stack().user(&format!("racer{n}"), &["support"]).await.id_token;
        let path = format!("/v1/support/inquiries/{id}/answers");
        agents.spawn(async move {
            let body = json!({"message": format!("Answer number {n}: yes, we can.")});
            let (status, answer) = call_api(Method::POST, &path, Some(&token), Some(&body), None).await;
            (n, status, answer)
        });
    }
    let mut recorded = Vec::new();
    while let Some(done) = agents.join_next().await {
        let (n, status, answer) = done.expect("task");
        match status {
            StatusCode::OK => recorded.push(n),
            StatusCode::CONFLICT => {}
            other => panic!("agent {n} got {other}: {answer}"),
        }
    }
    assert!(!recorded.is_empty(), "at least one answer goes through");
    let support = stack().user("raceview", &["support"]).await.id_token;
    let (_, inquiry) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    let answers = inquiry["answers"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        answers.len(),
        recorded.len(),
        "each 200 is one recorded answer: {inquiry}"
    );
    let mails = mails_to(&email).await;
    for n in 0..6 {
        let sent = mails
            .iter()
            .filter(|m| m.contains(&format!("Answer number {n}:")))
            .count();
        assert_eq!(
            sent,
            usize::from(recorded.contains(&n)),
            "agent {n}: mailed once if recorded, never if refused"
        );
    }
}

#[tokio::test]
async fn mail_past_an_addresss_daily_limit_is_not_stored_and_unproven_senders_open_nothing() {
    use domain::support::MailOutcome;
    // Five messages a day from one address are taken in; the sixth stores nothing and mails nobody.
    let flooder = unique_email("mailflood");
    for n in 0..5 {
        let (_, outcome) = deliver(
            &flooder,
            "Hello",
            &format!("message {n}"),
            jiff::Timestamp::now(),
            "PASS",
        )
        .await;
        assert!(matches!(outcome, MailOutcome::Received { .. }), "{outcome:?}");
    }
    let (_, outcome) = deliver(&flooder, "Hello", "message 6", jiff::Timestamp::now(), "PASS").await;
    assert_eq!(
        outcome,
        MailOutcome::Dropped("the sender's daily limit is reached")
    );
    let hash = stack()
        .function_state("InboundMailFunction", Clock::System)
        .await
        .lookup
        .email_hash(&flooder)
        .await
        .expect("hash");
    let stored = raw_items(&format!("INQUIRER#{hash}")).await;
    assert_eq!(stored.len(), 5, "the sixth was not stored: {stored:?}");
    assert_eq!(
        mails_to(&flooder).await.len(),
        5,
        "five acknowledgements, no more"
    );

    // Forged mail in someone's name (DMARC fails) has its own count: five forgeries, a sixth dropped,
    // and the holder's own proven mail still goes through that day.
    let victim = unique_email("forgedname");
    let forged = [
        ("dmarcVerdict", "FAIL"),
        ("spfVerdict", "FAIL"),
        ("dkimVerdict", "FAIL"),
    ];
    for n in 0..6 {
        let (_, outcome) = deliver_with(
            &uuid::Uuid::new_v4().simple().to_string(),
            &victim,
            "Delete my account",
            &format!("forgery {n}"),
            jiff::Timestamp::now(),
            &forged,
        )
        .await;
        assert_eq!(
            matches!(outcome, MailOutcome::Received { .. }),
            n < 5,
            "forgery {n}: {outcome:?}"
        );
    }
    let (_, outcome) = deliver(&victim, "Hello", "the real me", jiff::Timestamp::now(), "PASS").await;
    assert!(matches!(outcome, MailOutcome::Received { .. }), "{outcome:?}");

    // A domain without DMARC (GRAY) whose mail passes neither SPF nor DKIM: an inquiry for support,
    // and no privacy request for the account holding the address.
    let (email, token, _) = registered_customer("unproven").await;
    let message_id = uuid::Uuid::new_v4().simple().to_string();
    let (_, outcome) = deliver_with(
        &message_id,
        &email,
        "Delete my account",
        "Erase everything now.",
        jiff::Timestamp::now(),
        &[
            ("dmarcVerdict", "GRAY"),
            ("spfVerdict", "GRAY"),
            ("dkimVerdict", "GRAY"),
        ],
    )
    .await;
    let MailOutcome::Received { written_request, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(written_request, None, "an unproven sender opens nothing");
    let (_, list) = call_api(Method::GET, "/v1/privacy-requests", Some(&token), None, None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    // The same domain with DKIM passing is proven enough to open the request (waiting for the holder).
    let (_, outcome) = deliver_with(
        &uuid::Uuid::new_v4().simple().to_string(),
        &email,
        "Delete my account",
        "Erase everything now.",
        jiff::Timestamp::now(),
        &[("dmarcVerdict", "GRAY"), ("spfVerdict", "GRAY")],
    )
    .await;
    assert!(
        matches!(
            outcome,
            MailOutcome::Received {
                written_request: Some(_),
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_message_of_tens_of_megabytes_is_read_only_as_far_as_its_text() {
    use domain::support::MailOutcome;
    // 24 MB of attachment after the text: the function reads the first MiB only (the headers and
    // the text), so its memory does not grow with the message.
    let sender = unique_email("bigmail");
    let filler = "A".repeat(24 * 1024 * 1024);
    let body = format!("Do you cover county fairs? Marker-7731.\r\n\r\n{filler}");
    let (message_id, outcome) = deliver(&sender, "County fair", &body, jiff::Timestamp::now(), "PASS").await;
    let MailOutcome::Received { inquiry_id, .. } = outcome else {
        panic!("{outcome:?}");
    };
    let stack = stack();
    let mailbox = inbound_mail::Mailbox {
        s3: infra::bootstrap::s3_client(&stack.stack.function_sdk_config("InboundMailFunction").await),
        bucket: stack
            .stack
            .physical_id("SupportMailBucket")
            .expect("the mail bucket"),
    };
    let read = mailbox.raw_message(&message_id).await.expect("read");
    assert_eq!(
        read.len(),
        inbound_mail::MAX_READ_BYTES,
        "the first MiB of the message, no more"
    );
    let support = stack.user("bigmailreader", &["support"]).await.id_token;
    let (status, inquiry) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries/{inquiry_id}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{inquiry}");
    let message = inquiry["message"].as_str().unwrap_or_default();
    assert!(message.contains("Marker-7731"), "the text is kept");
    assert!(
        message.len() < inbound_mail::MAX_READ_BYTES,
        "and only a bounded part of it"
    );
}
