//! The quiet data, through the local gateway: client telemetry that nothing links to its sender (no
//! access-log line, no IP, no user, only allow-listed values in daily counters, rare ones hidden), and
//! no cookie on any response of any route.

use e2e::{captured_logs, stack, sub_of};
use platform::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post_telemetry(token: Option<&str>, ip: &str, body: &Value) -> StatusCode {
    let mut request = reqwest::Client::new()
        .post(stack().url("/v1/telemetry"))
        .header("x-forwarded-for", ip)
        .header("x-app-version", "ios/4.1.0")
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("gateway").status()
}

#[tokio::test]
async fn telemetry_from_a_signed_in_user_leaves_nothing_that_links_back_to_them() {
    let stack = stack();
    let user = stack.user("telemetry", &["customer"]).await.id_token;
    let user_id = sub_of(&user);
    let ip = "203.0.113.77";
    let report = json!({
        "browser": "Opera", "browser_major": 113, "os": "android", "javascript": true,
        "screen_width": 412, "colour_depth": 24,
        "referrer": "https://duckduckgo.com/?q=security+guards+for+my+wedding",
        "search_keywords": "security guards for my wedding",
        "app_version": "ios/4.1.0"
    });
    for _ in 0..5 {
        assert_eq!(
            post_telemetry(Some(&user), ip, &report).await,
            StatusCode::NO_CONTENT
        );
    }
    // One report of a value nobody else sends: counted, but hidden from the report.
    let rare = json!({"browser": "samsung", "browser_major": 3});
    assert_eq!(post_telemetry(None, ip, &rare).await, StatusCode::NO_CONTENT);
    // An unknown field is refused: the set of fields is fixed.
    assert_eq!(
        post_telemetry(None, ip, &json!({"email": "someone@example.com"})).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let state = stack.state("PrivacyFunction", Clock::System).await;
    let mine = edge::access_log::entries_of(&state.store, &user_id, 1000)
        .await
        .expect("access log");
    assert!(
        mine.iter().all(|e| e.route != "POST /v1/telemetry"),
        "no access-log line under the user"
    );
    let anonymous = edge::access_log::entries_of(&state.store, edge::access_log::ANONYMOUS, 100_000)
        .await
        .expect("access log");
    assert!(
        anonymous.iter().all(|e| e.route != "POST /v1/telemetry"),
        "nor under anonymous, where the IP would be"
    );
    let today = state
        .clock
        .now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let counters = edge::usage::counters(&state, today).await.expect("counters");
    for key in counters.keys() {
        assert!(
            !key.contains(&user_id) && !key.contains(ip) && !key.contains("wedding"),
            "a counter key links back: {key}"
        );
    }
    for line in captured_logs().lines() {
        assert!(!line.contains(ip), "the IP is in a log line: {line}");
        assert!(
            !(line.contains(&user_id) && line.contains("telemetry")),
            "a log line links the user to telemetry: {line}"
        );
    }

    let ops = stack.user("telemetryops", &["ops"]).await.id_token;
    let (status, usage) =
        e2e::call_api(reqwest::Method::GET, "/v1/admin/usage", Some(&ops), None, None).await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let telemetry = &usage["telemetry"];
    assert!(
        telemetry["browser"]["opera/113"].as_u64().unwrap_or(0) >= 5,
        "{usage}"
    );
    assert!(
        telemetry["keyword"]["security"].as_u64().unwrap_or(0) >= 5,
        "{usage}"
    );
    assert!(
        telemetry["referrer"]["duckduckgo.com"].as_u64().unwrap_or(0) >= 5,
        "{usage}"
    );
    assert!(
        telemetry["browser"].get("samsung/3").is_none(),
        "a rare value is hidden: {usage}"
    );
}

#[tokio::test]
async fn no_response_of_any_route_sets_a_cookie() {
    let stack = stack();
    let ops = stack.user("cookieops", &["ops"]).await.id_token;
    let client = reqwest::Client::new();
    let template = infra::project_template().expect("template.yaml");
    let mut checked = 0;
    for function in template.functions().expect("functions") {
        for route in &function.routes {
            let path: String = route
                .path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "0f0e0d0c-0000-4000-8000-000000000001"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).expect("method");
            // Anonymous for every route; signed in (as ops) for the reads, which change nothing.
            let mut calls = vec![client.request(method.clone(), stack.url(&path))];
            if method == reqwest::Method::GET {
                calls.push(client.request(method.clone(), stack.url(&path)).bearer_auth(&ops));
            }
            for call in calls {
                let response = call.send().await.expect("gateway");
                assert!(
                    response.headers().get(reqwest::header::SET_COOKIE).is_none(),
                    "{} {} set a cookie",
                    route.method,
                    route.path
                );
                checked += 1;
            }
        }
    }
    // The gateway's own pages and answers too: the reference page and its files, the document,
    // a path no route matches.
    for path in [
        "/docs",
        "/docs/docs.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/openapi.json",
        "/v1/no-such-route",
    ] {
        let response = client.get(stack.url(path)).send().await.expect("gateway");
        assert!(
            response.headers().get(reqwest::header::SET_COOKIE).is_none(),
            "{path} set a cookie"
        );
        checked += 1;
    }
    eprintln!("responses checked for Set-Cookie: {checked}");
    assert!(checked > 60, "every route was called: {checked}");
}
