//! Structured JSON logs to stdout (CloudWatch). Every line inside a request carries its request id
//! (the router's `request` span). Personal data never goes into a field or message: log ids only.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once; later calls (tests, the local gateway) are no-ops.
/// The level comes from `RUST_LOG` (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_ansi(false)
        .try_init();
}
