//! The key set-up (`functions/key-setup`), driven by the CloudFormation custom-resource event in
//! `events/key-setup-create.json`, against a key store of its own: it creates the system and beacon
//! branch keys, answers CloudFormation at the pre-signed URL, is idempotent on update, destroys nothing
//! on delete, and answers FAILED when it cannot create them or cannot even start.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::{event, stack};
use key_setup::{CustomResourceEvent, KeySetup};
use platform::crypto::{BEACON_KEY_ID, SYSTEM_KEY_ID};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Listens once at a local URL standing in for CloudFormation's pre-signed S3 URL and returns the
/// answer the function PUT there.
async fn one_answer() -> (String, tokio::task::JoinHandle<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!(
        "http://{}/answer?X-Amz-Signature=fixture",
        listener.local_addr().expect("address")
    );
    let answer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("the function answers");
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = socket.read(&mut buffer).await.expect("read");
            received.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    assert!(head.starts_with("PUT /answer"), "{head}");
                    socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .expect("write");
                    return serde_json::from_str(body).expect("a JSON answer");
                }
            }
            if read == 0 {
                panic!("the connection closed before the answer was complete");
            }
        }
    });
    (url, answer)
}

fn fixture(request_type: &str, url: &str) -> CustomResourceEvent {
    let mut event: Value = serde_json::from_str(&event("key-setup-create.json")).expect("fixture");
    event["RequestType"] = Value::from(request_type);
    event["ResponseURL"] = Value::from(url);
    serde_json::from_value(event).expect("a custom-resource event")
}

async fn active_keys(table: &str) -> Vec<String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack().sdk().await);
    let mut found = Vec::new();
    for id in [SYSTEM_KEY_ID, BEACON_KEY_ID] {
        let item = dynamodb
            .get_item()
            .table_name(table)
            .key("branch-key-id", AttributeValue::S(id.into()))
            .key("type", AttributeValue::S("branch:ACTIVE".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("read the key store");
        if item.item.is_some() {
            found.push(id.to_owned());
        }
    }
    found
}

#[tokio::test]
async fn the_key_set_up_creates_the_system_keys_once_and_answers_cloudformation() {
    let stack = stack();
    // A key store of its own (the shared one already has the keys, which every test needs).
    let table = format!(
        "{}-copy-{}",
        stack.stack.physical_id("KeyStoreTable").expect("key store"),
        uuid::Uuid::new_v4().simple()
    );
    stack
        .stack
        .create_table_copy("KeyStoreTable", &table)
        .await
        .expect("a fresh key store");
    let mut config = stack.stack.function_config("KeySetupFunction").expect("config");
    config.key_store_table_name = table.clone();
    let sdk = stack.stack.function_sdk_config("KeySetupFunction").await;
    let setup = KeySetup::new(&config, &sdk).expect("the set-up");
    assert!(active_keys(&table).await.is_empty());

    for request_type in ["Create", "Update"] {
        let (url, answer) = one_answer().await;
        setup
            .handle(fixture(request_type, &url))
            .await
            .expect(request_type);
        let answer = answer.await.expect("the answer");
        assert_eq!(answer["Status"], "SUCCESS", "{answer}");
        assert_eq!(answer["PhysicalResourceId"], key_setup::PHYSICAL_ID);
        assert_eq!(answer["RequestId"], "fixture-request");
        assert_eq!(answer["LogicalResourceId"], "SystemKeys");
        assert_eq!(
            active_keys(&table).await,
            [SYSTEM_KEY_ID, BEACON_KEY_ID],
            "{request_type}"
        );
    }

    let (url, answer) = one_answer().await;
    setup.handle(fixture("Delete", &url)).await.expect("delete");
    assert_eq!(answer.await.expect("the answer")["Status"], "SUCCESS");
    assert_eq!(
        active_keys(&table).await.len(),
        2,
        "deleting the resource keeps the keys"
    );

    // No key store: the deployment is told, instead of waiting for a timeout.
    config.key_store_table_name = format!("{table}-missing");
    let broken = KeySetup::new(&config, &sdk).expect("the set-up");
    let (url, answer) = one_answer().await;
    // Answered, so the invocation itself succeeds (a retry would only answer again).
    broken.handle(fixture("Create", &url)).await.expect("answered");
    let answer = answer.await.expect("the answer");
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert!(
        !answer["Reason"].as_str().unwrap_or_default().contains(&table),
        "{answer}"
    );
}
