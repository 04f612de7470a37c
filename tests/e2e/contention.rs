//! The local stack contends as DynamoDB does (infra/python/serial_moto.py): each error of the model
//! shown with two overlapping requests, on an emulator of the test's own (its settings are changed
//! here, which the shared one must not see).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactWriteItem,
};
use infra::emulator::Emulator;
use serde_json::{Value, json};
use std::time::Duration;

const TABLE: &str = "contention";

async fn settings(emulator: &Emulator, changes: Option<Value>) -> Value {
    let url = format!("{}/_officertrak/contention", emulator.endpoint);
    let client = reqwest::Client::new();
    let request = match changes {
        Some(changes) => client.post(url).json(&changes),
        None => client.get(url),
    };
    request
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON")
}

/// A client of `emulator` that does not retry (each refusal is seen as the emulator gave it) and a
/// table keyed like the application's.
async fn client_with_table(emulator: &Emulator) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&emulator.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let client = Client::new(&config);
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("table");
    client
}

fn item(pk: &str, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    [
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ]
    .into()
}

fn put_in_transaction(
    client: &Client,
    pk: &str,
) -> impl Future<Output = Result<(), TransactWriteItemsError>> + use<> {
    let request = client.transact_write_items().transact_items(
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(TABLE)
                    .set_item(Some(item(pk, "1")))
                    .build()
                    .expect("put"),
            )
            .build(),
    );
    async move {
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|error| error.into_service_error())
    }
}

#[tokio::test]
async fn an_item_held_by_a_transaction_refuses_a_second_transaction_and_a_single_write() {
    let emulator = Emulator::start_on_free_port(None).await.expect("emulator");
    let client = client_with_table(&emulator).await;
    // A transaction "runs" a second here: long enough for the overlap to be certain.
    settings(&emulator, Some(json!({"transaction_ms": 1000}))).await;

    let first = tokio::spawn(put_in_transaction(&client, "shared"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    match put_in_transaction(&client, "shared").await {
        Err(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons: Vec<_> = cancelled
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .collect();
            assert_eq!(reasons, ["TransactionConflict"]);
        }
        other => panic!("a transaction on a held item must be cancelled: {other:?}"),
    }
    let single = client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("shared", "1")))
        .send()
        .await
        .expect_err("a single write to a held item is refused");
    assert_eq!(single.code(), Some("TransactionConflictException"));
    // Another item is not held: a transaction on it goes through meanwhile.
    put_in_transaction(&client, "other")
        .await
        .expect("an item nobody holds");

    first.await.expect("task").expect("the first transaction commits");
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item("shared", "1")))
        .send()
        .await
        .expect("once the transaction has ended, the item is free");
    let counts = settings(&emulator, None).await;
    assert_eq!(counts["transaction_conflicts"], 1, "{counts}");
    assert_eq!(counts["write_conflicts"], 1, "{counts}");
    emulator.stop().await;
}

#[tokio::test]
async fn writes_past_a_partitions_rate_are_throttled_and_other_partitions_are_not() {
    let emulator = Emulator::start_on_free_port(None).await.expect("emulator");
    let client = client_with_table(&emulator).await;
    settings(
        &emulator,
        Some(json!({"transaction_ms": 0, "partition_write_units": 2})),
    )
    .await;
    let write = |pk: &'static str, sk: String| {
        client
            .put_item()
            .table_name(TABLE)
            .set_item(Some(item(pk, &sk)))
            .send()
    };
    let mut codes = Vec::new();
    for n in 0..4 {
        codes.push(
            write("hot", n.to_string())
                .await
                .err()
                .and_then(|e| e.code().map(str::to_owned)),
        );
    }
    assert_eq!(codes[..2], [None, None], "two units a second: the first two pass");
    assert_eq!(
        codes[2].as_deref(),
        Some("ProvisionedThroughputExceededException"),
        "{codes:?}"
    );
    write("cold", "0".into())
        .await
        .expect("another partition has its own rate");
    match put_in_transaction(&client, "hot").await {
        Err(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            assert_eq!(
                cancelled.cancellation_reasons()[0].code(),
                Some("ThrottlingError")
            );
        }
        other => panic!("a transaction on a throttled partition is cancelled: {other:?}"),
    }
    let counts = settings(&emulator, None).await;
    assert!(counts["throttled"].as_u64().unwrap_or(0) >= 2, "{counts}");
    emulator.stop().await;
}
