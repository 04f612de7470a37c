//! Structured JSON logs to stdout (CloudWatch). Every line inside a request carries its request id
//! (the router's `request` span). Personal data never goes into a field or message: log ids only.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the JSON subscriber once; later calls (tests, the local gateway) are no-ops.
/// The level comes from `RUST_LOG` (default `info`).
pub fn init() {
    init_with_writer(std::io::stdout);
    // A panic's message may quote a value (an `expect` on a parsed field, an index): log where it
    // happened, never what it said.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %location, "panic");
    }));
}

/// Like [`init`], writing to `writer`: tests capture the very lines production writes.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
}
