//! Lambda entry point: all the work is in the library's router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    edge::http::serve_lambda(support::router()).await
}
