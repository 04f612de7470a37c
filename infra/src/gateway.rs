//! The local API gateway: API Gateway HTTP API (payload 2.0) in front of the functions.
//!
//! It routes by the route keys template.yaml declares, verifies the bearer JWT as the HTTP API's JWT
//! authorizer does (signature from the user pool's JWKS, issuer, audience or client_id, expiry), builds
//! the payload-2.0 event (route key, path parameters, request id, source IP, claims as strings), turns
//! it into a request with `lambda_http`'s own conversion, and calls the same router the Lambda binary
//! runs. It also serves the OpenAPI document at `/openapi.json` and its reference page at `/docs`.

use crate::bootstrap::{ACCOUNT_ID, BootstrapError, LocalStack};
use crate::template::{RouteSpec, TemplateError};
use axum::body::{Body as AxumBody, to_bytes};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response as AxumResponse};
use base64::Engine;
use edge::http::Router;
use http::{HeaderValue, StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::Body;
use platform::AppState;
use platform::Clock;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::RwLock;

/// API Gateway's payload limit for HTTP APIs.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Why the gateway could not be built.
#[derive(Debug, Error)]
pub enum GatewayError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error(
        "{function} declares HTTP routes but crate {binary} has no router in infra::gateway::function_router"
    )]
    NoRouter { function: String, binary: String },
    #[error(transparent)]
    Startup(#[from] platform::state::StartupError),
    #[error("the OpenAPI document is not valid YAML: {0}")]
    OpenApi(serde_norway::Error),
}

/// The router of the function crate `binary`; `None` for functions that are not HTTP functions.
/// Adding a function crate means adding one line here (a test checks every templated HTTP function).
pub fn function_router(binary: &str) -> Option<Router> {
    match binary {
        "registration" => Some(registration::router()),
        "requests" => Some(requests::router()),
        "scheduling" => Some(scheduling::router()),
        "privacy" => Some(privacy::router()),
        "support" => Some(support::router()),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

struct Route {
    spec: RouteSpec,
    segments: Vec<Segment>,
    router: Arc<Router>,
    state: AppState,
}

/// The local gateway.
pub struct Gateway {
    routes: Vec<Route>,
    verifier: JwtVerifier,
    openapi_json: String,
    clock: Clock,
    trust_forwarded_for: bool,
    contract: Option<crate::contract::ContractLog>,
}

impl Gateway {
    /// Builds the gateway for `stack`: one route per templated `HttpApi` event, each bound to its
    /// function's router and state. `clock` drives token expiry and the functions' "now".
    pub async fn new(stack: &LocalStack, clock: Clock) -> Result<Self, GatewayError> {
        let mut routes = Vec::new();
        for function in stack.template.functions()? {
            if function.routes.is_empty() {
                continue;
            }
            let router = function_router(&function.binary).ok_or_else(|| GatewayError::NoRouter {
                function: function.logical_id.clone(),
                binary: function.binary.clone(),
            })?;
            let router = Arc::new(router);
            let sdk = stack.function_sdk_config(&function.logical_id).await;
            let state =
                AppState::new(stack.function_config(&function.logical_id)?, &sdk, clock.clone()).await?;
            for spec in function.routes {
                routes.push(Route {
                    segments: parse_segments(&spec.path),
                    spec,
                    router: Arc::clone(&router),
                    state: state.clone(),
                });
            }
        }
        let (issuer, audiences) = stack.template.jwt_authorizer(stack)?;
        let pool_id = issuer.rsplit('/').next().unwrap_or_default();
        let jwks_url = format!("{}/{pool_id}/.well-known/jwks.json", stack.endpoint);
        let openapi: serde_json::Value =
            serde_norway::from_str(edge::OPENAPI_YAML).map_err(GatewayError::OpenApi)?;
        Ok(Self {
            routes,
            verifier: JwtVerifier::new(issuer, audiences, jwks_url, clock.clone()),
            openapi_json: openapi.to_string(),
            clock,
            trust_forwarded_for: false,
            contract: None,
        })
    }

    /// Takes the client address from the first `X-Forwarded-For` entry when present, instead of the
    /// TCP peer. For the test harness only, which plays many clients from one machine (per-IP rate
    /// limits would otherwise count every test as one client); API Gateway and the dev stack use the
    /// connection's address.
    pub fn trusting_forwarded_for(mut self) -> Self {
        self.trust_forwarded_for = true;
        self
    }

    /// Checks every response to a route against the OpenAPI document and records it in `log` (see
    /// [`crate::contract`]). For the test harness: the end-to-end tests' responses are the evidence
    /// that the document describes what the code answers.
    pub fn checking_contract(mut self, log: crate::contract::ContractLog) -> Self {
        self.contract = Some(log);
        self
    }

    /// Serves on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = axum::Router::new().fallback(handle).with_state(Arc::new(self));
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// The route keys the gateway serves.
    pub fn route_keys(&self) -> Vec<String> {
        self.routes.iter().map(|route| route.spec.route_key()).collect()
    }

    /// The most specific route for `method` and `path`, with its path parameters. API Gateway prefers
    /// more literal segments, then an exact method over `ANY`.
    fn find(&self, method: &str, path: &str) -> Option<(&Route, BTreeMap<String, String>)> {
        self.routes
            .iter()
            .filter(|route| route.spec.method == "ANY" || route.spec.method == method)
            .filter_map(|route| Some((route, match_path(&route.segments, path)?)))
            .max_by_key(|(route, _)| {
                let literals = route
                    .segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count();
                (literals, route.spec.method != "ANY")
            })
    }
}

fn parse_segments(path: &str) -> Vec<Segment> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) => Segment::Greedy(greedy.to_owned()),
                    None => Segment::Param(name.to_owned()),
                },
                None => Segment::Literal(segment.to_owned()),
            },
        )
        .collect()
}

fn match_path(segments: &[Segment], path: &str) -> Option<BTreeMap<String, String>> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut params = BTreeMap::new();
    for (index, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                if index >= parts.len() {
                    return None;
                }
                params.insert(name.clone(), parts[index..].join("/"));
                return Some(params);
            }
            Segment::Literal(literal) => {
                if parts.get(index) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = parts.get(index)?;
                params.insert(name.clone(), percent_decode(value));
            }
        }
    }
    (parts.len() == segments.len()).then_some(params)
}

fn percent_decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, decoded)| decoded.into_owned())
        .unwrap_or_else(|| value.to_owned())
}

/// An answer API Gateway gives itself, before any function runs: `{"message": "..."}` as JSON, the
/// body the HTTP API's JWT authorizer, route matching and payload limit answer with (a client must
/// handle these as well as our problems, so the local stack answers the same).
fn gateway_message(status: StatusCode, message: &'static str) -> AxumResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

/// The JWT authorizer's refusal: 401 `{"message":"Unauthorized"}`, with the reason only in the
/// `WWW-Authenticate` challenge (RFC 6750: `invalid_token` and a description; a bare `Bearer`
/// when no token came).
fn unauthorized(reason: &TokenError) -> AxumResponse {
    let mut response = gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized");
    let challenge = match reason {
        TokenError::Missing => "Bearer".to_owned(),
        other => format!("Bearer error=\"invalid_token\", error_description=\"{other}\""),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Serves one request, and checks the answer against the OpenAPI document when asked to.
async fn handle(
    State(gateway): State<Arc<Gateway>>,
    connect: ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> AxumResponse {
    let Some(log) = &gateway.contract else {
        return route_request(&gateway, connect, request).await.1;
    };
    // The request body is kept only for the example capture (off unless a developer asks).
    let (request_parts, request_body) = request.into_parts();
    let Ok(request_bytes) = to_bytes(request_body, MAX_BODY_BYTES).await else {
        return gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let request = axum::extract::Request::from_parts(request_parts, AxumBody::from(request_bytes.clone()));
    let (route_key, response) = route_request(&gateway, connect, request).await;
    let Some(route_key) = route_key else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let answer = crate::contract::Answer {
        route_key: &route_key,
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body: &bytes,
    };
    log.record(&answer);
    log.capture(&answer, &request_bytes);
    AxumResponse::from_parts(parts, AxumBody::from(bytes))
}

/// `/docs` and its files (see [`crate::docs`]), read from disk on each request; a 503 naming the
/// command that installs the page when it is not installed.
fn docs_file(path: &str) -> AxumResponse {
    let Some((file, media_type)) = crate::docs::file_for(path) else {
        return gateway_message(StatusCode::NOT_FOUND, "Not Found");
    };
    match std::fs::read(&file) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, media_type),
                (
                    header::CONTENT_SECURITY_POLICY,
                    crate::docs::CONTENT_SECURITY_POLICY,
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the /docs page is not installed: `cargo xtask dev` installs it (npm ci in infra/docs)",
        )
            .into_response(),
    }
}

/// Routes one request: the matched route key (none when nothing matched) and the answer.
async fn route_request(
    gateway: &Gateway,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> (Option<String>, AxumResponse) {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let method = parts.method.as_str().to_owned();
    if method == "GET" && (path == "/docs" || path.starts_with("/docs/")) {
        return (None, docs_file(&path));
    }
    if method == "GET" && path == "/openapi.json" {
        let document = (
            [(header::CONTENT_TYPE, "application/json")],
            gateway.openapi_json.clone(),
        );
        return (None, document.into_response());
    }
    let Some((route, path_parameters)) = gateway.find(&method, &path) else {
        return (None, gateway_message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let route_key = route.spec.route_key();
    let claims = if route.spec.authenticated {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match gateway.verifier.verify(authorization).await {
            Ok(claims) => Some(claims),
            Err(error) => {
                tracing::info!(route = %route.spec.route_key(), reason = %error, "token rejected");
                return (Some(route_key), unauthorized(&error));
            }
        }
    } else {
        None
    };
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return (
            Some(route_key),
            gateway_message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        );
    };
    let forwarded = gateway
        .trust_forwarded_for
        .then(|| parts.headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok());
    let client = forwarded.map_or(peer, |ip| SocketAddr::new(ip, peer.port()));
    let event = payload_v2_event(
        &gateway.clock,
        &route.spec,
        &parts,
        &path_parameters,
        claims,
        &bytes,
        &client,
    );
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(error) => {
            tracing::info!(route = %route_key, reason = %error, "request not representable as an event");
            return (
                Some(route_key),
                gateway_message(StatusCode::BAD_REQUEST, "Bad Request"),
            );
        }
    };
    let request_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let response = route.router.handle(&route.state, request).await;
    let mut response = to_axum(response);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", value);
    }
    (Some(route_key), response)
}

/// The payload-2.0 event API Gateway would send for this request.
fn payload_v2_event(
    clock: &Clock,
    route: &RouteSpec,
    parts: &http::request::Parts,
    path_parameters: &BTreeMap<String, String>,
    claims: Option<BTreeMap<String, String>>,
    body: &[u8],
    peer: &SocketAddr,
) -> Value {
    let now = clock.now();
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        if name == header::COOKIE {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_owned())));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value.to_owned()));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query = Map::new();
    for (name, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(name.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(name.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let time = jiff::fmt::strtime::format(
        "%d/%b/%Y:%H:%M:%S %z",
        &now.to_zoned_datetime(jiff::tz::TimeZone::UTC),
    )
    .unwrap_or_default();
    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": "local",
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or(host),
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": format!("{:?}", parts.version),
            "sourceIp": peer.ip().to_string(),
            "userAgent": parts.headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or(""),
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": route.route_key(),
        "stage": "$default",
        "time": time,
        "timeEpoch": now.as_millisecond(),
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !path_parameters.is_empty() {
        event["pathParameters"] = json!(path_parameters);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

fn to_axum(response: http::Response<Body>) -> AxumResponse {
    let (parts, body) = response.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Empty => Vec::new(),
        Body::Text(text) => text.into_bytes(),
        Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    AxumResponse::from_parts(parts, AxumBody::from(bytes))
}

/// Why a bearer token was refused. The gateway answers 401 with this text in its `WWW-Authenticate`
/// challenge (never the token).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("no bearer token in the Authorization header")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is not signed with RS256")]
    Algorithm,
    #[error("the token is signed by a key the user pool does not publish")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token was issued for another audience")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the user pool's keys cannot be fetched: {0}")]
    Jwks(String),
}

/// Verifies tokens as the HTTP API's JWT authorizer does.
pub struct JwtVerifier {
    issuer: String,
    audiences: Vec<String>,
    jwks_url: String,
    clock: Clock,
    keys: RwLock<HashMap<String, DecodingKey>>,
    http: reqwest::Client,
}

impl JwtVerifier {
    /// A verifier for tokens of `issuer` meant for one of `audiences`, keys from `jwks_url`.
    pub fn new(issuer: String, audiences: Vec<String>, jwks_url: String, clock: Clock) -> Self {
        Self {
            issuer,
            audiences,
            jwks_url,
            clock,
            keys: RwLock::default(),
            http: reqwest::Client::new(),
        }
    }

    /// Verifies the `Authorization` header value (with or without `Bearer `) and returns the claims
    /// flattened to strings, as API Gateway passes them to the function.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<BTreeMap<String, String>, TokenError> {
        let token = authorization
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        let token = token
            .strip_prefix("Bearer ")
            .or_else(|| token.strip_prefix("bearer "))
            .unwrap_or(token)
            .trim();
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(
                |error| match error.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Signature,
                    _ => TokenError::Malformed,
                },
            )?;
        let claims = data.claims;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::Issuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.audiences.iter().any(|x| x == a)),
            _ => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(|c| self.audiences.iter().any(|x| x == c)),
        };
        if !audience_ok {
            return Err(TokenError::Audience);
        }
        let now = self.clock.epoch_seconds();
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp > now => {}
            _ => return Err(TokenError::Expired),
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now)
        {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims
            .into_iter()
            .map(|(name, value)| (name, claim_string(&value)))
            .collect())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| TokenError::Jwks(error.to_string()))?
            .json()
            .await
            .map_err(|error| TokenError::Jwks(error.to_string()))?;
        let mut keys = self.keys.write().await;
        for jwk in &set.keys {
            if let (Some(id), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                keys.insert(id, key);
            }
        }
        keys.get(kid).cloned().ok_or(TokenError::UnknownKey)
    }
}

/// A claim as the HTTP API JWT authorizer hands it to the function: strings as they are, numbers and
/// booleans as text, arrays as `[a b c]`.
pub fn claim_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(claim_string).collect();
            format!("[{}]", inner.join(" "))
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Route key → whether it needs a token, as the OpenAPI document says.
    fn documented_routes() -> BTreeMap<String, bool> {
        let document: Value = serde_norway::from_str(edge::OPENAPI_YAML).expect("openapi.yaml parses");
        let default_secured = document["security"].as_array().is_some_and(|s| !s.is_empty());
        let mut routes = BTreeMap::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                if !["get", "put", "post", "delete", "patch", "head", "options"].contains(&method.as_str()) {
                    continue;
                }
                let secured = match operation.get("security") {
                    Some(Value::Array(requirements)) => !requirements.is_empty(),
                    _ => default_secured,
                };
                routes.insert(format!("{} {path}", method.to_ascii_uppercase()), secured);
            }
        }
        routes
    }

    #[test]
    fn template_routers_and_openapi_declare_the_same_routes() {
        let template = crate::project_template().expect("template.yaml");
        let mut templated = BTreeMap::new();
        let mut served = BTreeSet::new();
        for function in template.functions().expect("functions") {
            let router = function_router(&function.binary);
            if function.routes.is_empty() {
                continue;
            }
            let router = router.unwrap_or_else(|| panic!("{} has routes but no router", function.logical_id));
            let keys: BTreeSet<String> = router.route_keys().map(str::to_owned).collect();
            let declared: BTreeSet<String> = function.routes.iter().map(RouteSpec::route_key).collect();
            assert_eq!(keys, declared, "{}: router vs template.yaml", function.logical_id);
            served.extend(keys);
            for route in &function.routes {
                let previous = templated.insert(route.route_key(), route.authenticated);
                assert!(
                    previous.is_none(),
                    "{} is declared by two functions",
                    route.route_key()
                );
            }
        }
        let documented = documented_routes();
        assert_eq!(
            templated.keys().collect::<BTreeSet<_>>(),
            documented.keys().collect::<BTreeSet<_>>(),
            "template.yaml vs shared/edge/openapi.yaml"
        );
        assert_eq!(
            served,
            templated.keys().cloned().collect(),
            "routers vs template.yaml"
        );
        assert_eq!(
            templated, documented,
            "which routes need a token: template.yaml vs openapi.yaml"
        );
    }

    #[test]
    fn every_function_crate_is_in_the_template() {
        let template = crate::project_template().expect("template.yaml");
        let binaries: BTreeSet<String> = template
            .functions()
            .expect("functions")
            .into_iter()
            .map(|f| f.binary)
            .collect();
        let workspace = std::fs::read_to_string(crate::repo_root().join("Cargo.toml")).expect("Cargo.toml");
        for crate_name in [
            "registration",
            "requests",
            "scheduling",
            "privacy",
            "retention",
            "privacy-worker",
        ] {
            assert!(
                workspace.contains(&format!("functions/{crate_name}")),
                "{crate_name} in the workspace"
            );
            assert!(
                binaries.contains(crate_name),
                "{crate_name} has a function in template.yaml"
            );
        }
    }

    #[test]
    fn claims_flatten_like_api_gateway() {
        assert_eq!(
            claim_string(&json!(["customer", "provider"])),
            "[customer provider]"
        );
        assert_eq!(claim_string(&json!(1_700_000_000)), "1700000000");
        assert_eq!(claim_string(&json!(true)), "true");
        assert_eq!(claim_string(&json!("x")), "x");
    }

    #[test]
    fn paths_match_like_api_gateway() {
        let segments = parse_segments("/v1/agencies/{id}/do-not-hire/{provider_id}");
        let params = match_path(&segments, "/v1/agencies/a%201/do-not-hire/p2").expect("matches");
        assert_eq!(params.get("id").map(String::as_str), Some("a 1"));
        assert_eq!(params.get("provider_id").map(String::as_str), Some("p2"));
        assert!(match_path(&segments, "/v1/agencies/a1/do-not-hire").is_none());
        assert!(match_path(&segments, "/v1/agencies/a1/do-not-hire/p2/extra").is_none());
        let greedy = parse_segments("/files/{proxy+}");
        assert_eq!(
            match_path(&greedy, "/files/a/b").and_then(|p| p.get("proxy").cloned()),
            Some("a/b".into())
        );
    }
}
