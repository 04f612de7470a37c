//! The cold-start baseline: a `lambda_http` function that answers every request with a fixed body
//! and touches nothing else (`cargo xtask bench functions` runs it beside the product's functions).

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::Text("hello".into())))
    }))
    .await
}
