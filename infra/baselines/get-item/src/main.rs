//! The second cold-start baseline: a `lambda_http` function that reads one item by key from the
//! table in `TABLE_NAME` (plain SDK, no encryption) per request. With `WARM_CONNECTIONS=1` it makes
//! one such read during init, so that the first request finds the connection open.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = std::env::var("TABLE_NAME")?;
    if std::env::var("WARM_CONNECTIONS").as_deref() == Ok("1") {
        read(&client, &table).await?;
    }
    lambda_http::run(service_fn(|_: Request| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let found = read(&client, &table).await?;
            Ok::<_, Error>(Response::new(Body::Text(format!("{{\"found\":{found}}}"))))
        }
    }))
    .await
}

async fn read(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<bool, Error> {
    let output = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("BASELINE#cold-start".into()))
        .key("sk", AttributeValue::S("ITEM".into()))
        .send()
        .await?;
    Ok(output.item.is_some())
}
