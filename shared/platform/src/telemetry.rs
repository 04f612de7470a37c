//! Structured JSON logs to stdout (CloudWatch), and traces. Every line inside a request carries its
//! request id (the router's `request` span). Personal data never goes into a field or message: log
//! ids only.
//!
//! Traces: the router's `request` span, every AWS SDK operation inside it (DynamoDB, KMS, Cognito,
//! SES, SQS, Secrets Manager, the key store's calls included) and every call to the payment processor
//! become X-Ray segment documents ([`TraceSink`]). In Lambda (`Tracing: Active`) they go to the X-Ray
//! daemon Lambda runs beside the function, under the invocation's trace, so the service map shows
//! which call was slow; locally they go to a file, one document a line, the same documents. Spans
//! carry operation names and ids, never a request's data.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::{XrayIdGenerator, XrayPropagator};
use opentelemetry_aws::xray_exporter::{SegmentDocument, SegmentDocumentExporter, XrayExporter};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where the spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceSink {
    /// Nowhere (no daemon, no file asked for).
    Off,
    /// The X-Ray daemon at this address (Lambda sets `AWS_XRAY_DAEMON_ADDRESS` when tracing is
    /// active). Only spans of a sampled invocation are sent, under its trace.
    XrayDaemon(std::net::SocketAddr),
    /// A file of segment documents, one JSON line each, every span sent (the local stack).
    File(PathBuf),
}

impl TraceSink {
    /// The X-Ray daemon when Lambda runs one, else the file `OFFICERTRAK_TRACE_FILE` names (the
    /// local stack and the tests set it), else nowhere.
    pub fn from_env() -> Self {
        if let Some(address) = std::env::var("AWS_XRAY_DAEMON_ADDRESS")
            .ok()
            .and_then(|a| a.parse().ok())
        {
            return Self::XrayDaemon(address);
        }
        match std::env::var_os("OFFICERTRAK_TRACE_FILE") {
            Some(path) if !path.is_empty() => Self::File(PathBuf::from(path)),
            _ => Self::Off,
        }
    }
}

/// Installs the JSON subscriber once; later calls (tests, the local gateway) are no-ops.
/// The level comes from `RUST_LOG`, else from Lambda's log level setting (`AWS_LAMBDA_LOG_LEVEL`,
/// set by the function's `LoggingConfig.ApplicationLogLevel`), else `info`.
pub fn init() {
    init_with(std::io::stdout, TraceSink::from_env());
    hide_panic_messages();
}

/// A panic's message may quote a value (an `expect` on a parsed field, an index): log where it
/// happened, never what it said.
pub fn hide_panic_messages() {
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
    init_with(writer, TraceSink::from_env());
}

/// Like [`init_with_writer`], with the traces going to `traces`.
pub fn init_with<W>(writer: W, traces: TraceSink)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(log_directives(level_directive(
            std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        )))
    });
    // A span below info (the SDK's operations, a processor call) is for the trace only: as the
    // current span of a log line it would hide the request span and its request id.
    let filter = filter.and(tracing_subscriber::filter::filter_fn(|meta| {
        !meta.is_span() || *meta.level() <= tracing::Level::INFO
    }));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_ansi(false)
        .with_writer(writer)
        .with_filter(filter);
    let spans = tracer(&traces).map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && is_traced(meta.target(), meta.name())
            }))
    });
    let _ = tracing_subscriber::registry().with(logs).with(spans).try_init();
}

/// Whether a span becomes part of the trace: the router's request, an AWS SDK operation (the
/// SDK names them `DynamoDB.PutItem` and so on, at debug level, so they never reach the logs),
/// or a call to the payment processor.
fn is_traced(target: &str, name: &str) -> bool {
    (target == "edge::http" && name == "request")
        || (target.starts_with("aws_sdk_") && name.contains('.'))
        || (target == "platform::processor" && name == "processor")
}

/// The tracer of `sink`, built once per process (its provider lives as long as the process).
fn tracer(sink: &TraceSink) -> Option<opentelemetry_sdk::trace::SdkTracer> {
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    let builder = SdkTracerProvider::builder()
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(
                    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "officertrak-local".into()),
                )
                .build(),
        );
    // The simple processor sends each span as it ends: a frozen Lambda sandbox never holds spans
    // back, and a UDP datagram to the daemon costs microseconds.
    let provider = match sink {
        TraceSink::Off => return None,
        TraceSink::XrayDaemon(address) => {
            let client =
                match opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient::new(*address) {
                    Ok(client) => client,
                    Err(error) => {
                        eprintln!("traces off: the X-Ray daemon's socket: {error}");
                        return None;
                    }
                };
            // Only under a sampled invocation: Lambda decides, and nothing is traced alone.
            builder
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
                .with_simple_exporter(XrayExporter::new(client).with_translator(translator()))
                .build()
        }
        TraceSink::File(path) => {
            let file = match std::fs::OpenOptions::new().create(true).append(true).open(path) {
                Ok(file) => file,
                Err(error) => {
                    eprintln!("traces off: {}: {error}", path.display());
                    return None;
                }
            };
            builder
                .with_sampler(Sampler::AlwaysOn)
                .with_simple_exporter(
                    XrayExporter::new(SegmentFile(Mutex::new(file))).with_translator(translator()),
                )
                .build()
        }
    };
    Some(PROVIDER.get_or_init(|| provider).tracer("officertrak"))
}

/// The route of a request becomes an X-Ray annotation: traces are searched by it
/// (`annotation.route = "POST /v1/service-requests"`).
fn translator() -> opentelemetry_aws::xray_exporter::SegmentTranslator {
    opentelemetry_aws::xray_exporter::SegmentTranslator::new().with_indexed_attr("route".to_owned())
}

/// Segment documents appended to a file, one JSON line each: what the X-Ray daemon would receive.
#[derive(Debug)]
struct SegmentFile(Mutex<std::fs::File>);

impl SegmentDocumentExporter for SegmentFile {
    type Error = std::io::Error;

    async fn export_segment_documents(&self, batch: Vec<SegmentDocument<'_>>) -> Result<(), Self::Error> {
        let mut lines = String::new();
        for document in batch {
            lines.push_str(&document.to_string());
            lines.push('\n');
        }
        let mut file = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("the trace file's lock is poisoned"))?;
        file.write_all(lines.as_bytes())
    }
}

/// The kind of the router's request span: in Lambda a part of the invocation Lambda already
/// traces (an X-Ray subsegment under the function's segment), locally the served request itself (a
/// segment of its own).
pub fn request_span_kind() -> &'static str {
    if std::env::var_os("_X_AMZN_TRACE_ID").is_some() {
        "internal"
    } else {
        "server"
    }
}

/// Puts `span` (the router's request span) under the Lambda invocation's trace, which the runtime
/// gives in `_X_AMZN_TRACE_ID`: its segment hangs under the function's own, sampled as Lambda
/// decided. Outside Lambda, and untraced, nothing happens.
pub fn continue_lambda_trace(span: &tracing::Span) {
    let Ok(header) = std::env::var("_X_AMZN_TRACE_ID") else {
        return;
    };
    let carrier = std::collections::HashMap::from([("x-amzn-trace-id".to_owned(), header)]);
    let parent = XrayPropagator::default().extract(&carrier);
    // A span the tracer does not see (traces off) has no parent to set: nothing to do.
    let _ = span.set_parent(parent);
}

/// The project's own crates: the only ones Lambda's log level makes more verbose than `info`. At
/// debug or trace the SDK and the HTTP stack log whole requests and answers (bodies, attributes):
/// personal data, which never goes into a log.
const OWN_CRATES: [&str; 13] = [
    "platform",
    "edge",
    "domain",
    "jobs",
    "registration",
    "requests",
    "scheduling",
    "privacy",
    "support",
    "inbound_mail",
    "retention",
    "privacy_worker",
    "key_setup",
];

/// The filter directives for `level`: that level for the project's own crates, and never more
/// than `info` for anyone else's.
pub fn log_directives(level: &str) -> String {
    if matches!(level, "warn" | "error") {
        return level.to_owned();
    }
    let own: Vec<String> = OWN_CRATES.iter().map(|c| format!("{c}={level}")).collect();
    format!("info,{}", own.join(","))
}

/// The `tracing` level for Lambda's log level setting: the same names, and `FATAL` (which `tracing`
/// has not) as `error`; anything else, or none, is `info`. Lambda's JSON log format filters on each
/// line's `level` field, which these lines carry.
pub fn level_directive(lambda_level: Option<&str>) -> &'static str {
    match lambda_level.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::{OWN_CRATES, is_traced, level_directive, log_directives};

    #[test]
    fn lambdas_log_levels_map_to_tracing_levels() {
        assert_eq!(level_directive(Some("DEBUG")), "debug");
        assert_eq!(level_directive(Some("warn")), "warn");
        assert_eq!(level_directive(Some("FATAL")), "error");
        assert_eq!(level_directive(Some("TRACE")), "trace");
        assert_eq!(level_directive(Some("nonsense")), "info");
        assert_eq!(level_directive(None), "info");
    }

    #[test]
    fn only_our_own_crates_log_below_info() {
        let debug = log_directives("debug");
        assert!(debug.starts_with("info,"), "{debug}");
        assert!(debug.contains("domain=debug") && debug.contains("privacy_worker=debug"));
        assert!(!debug.contains("aws_smithy"), "{debug}");
        assert_eq!(log_directives("warn"), "warn");
        assert_eq!(
            log_directives("info"),
            format!("info,{}", OWN_CRATES.map(|c| format!("{c}=info")).join(","))
        );
    }

    #[test]
    fn requests_sdk_operations_and_processor_calls_are_traced_and_nothing_else() {
        assert!(is_traced("edge::http", "request"));
        assert!(is_traced(
            "aws_sdk_dynamodb::operation::put_item",
            "DynamoDB.PutItem"
        ));
        assert!(is_traced("aws_sdk_kms::operation::decrypt", "KMS.Decrypt"));
        assert!(is_traced("platform::processor", "processor"));
        // The runtime's inner steps of an operation, and anything else, stay out.
        assert!(!is_traced(
            "aws_smithy_runtime::client::orchestrator",
            "try_attempt"
        ));
        assert!(!is_traced(
            "aws_sdk_dynamodb::operation::put_item",
            "serialization"
        ));
        assert!(!is_traced("domain::scheduling", "request"));
    }
}
