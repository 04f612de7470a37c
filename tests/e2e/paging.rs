//! Every list is bounded and paged: a caller with more items than a page reads all of them, page
//! by page, in a stable order, with a cursor only they can use.

use domain::scheduling::assignments::Assignment;
use e2e::{call_api, stack, sub_of, unique_email};
use jiff::{SignedDuration, Timestamp};
use platform::Clock;
use reqwest::{Method, StatusCode};
use std::collections::BTreeSet;

#[tokio::test]
async fn an_officer_with_120_shifts_pages_through_all_of_them_in_a_stable_order() {
    let stack = stack();
    let officer_token = stack
        .user_with_email(&unique_email("pager"), &["provider"])
        .await
        .id_token;
    let officer = sub_of(&officer_token);
    let state = stack.state("SchedulingFunction", Clock::System).await;
    state.keys.create_user_key(&officer).await.expect("key");
    let now = Timestamp::now();
    let mut created = BTreeSet::new();
    for n in 0..120 {
        let start = now + SignedDuration::from_hours(24 * (n + 30));
        let request_id = uuid::Uuid::new_v4().to_string();
        let assignment = Assignment::new(
            &request_id,
            &officer,
            "agency-of-the-pager",
            start,
            start + SignedDuration::from_hours(4),
            now,
        );
        state.store.create(&assignment).await.expect("assignment");
        created.insert(assignment.assignment_id);
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/providers/me/assignments?limit=50&cursor={cursor}"),
            None => "/v1/providers/me/assignments?limit=50".to_owned(),
        };
        let (status, page) = call_api(Method::GET, &path, Some(&officer_token), None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 50, "a page holds at most its limit");
        seen.extend(items);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(pages, 3, "120 shifts in pages of 50");
    let ids: Vec<&str> = seen.iter().filter_map(|a| a["assignment_id"].as_str()).collect();
    let distinct: BTreeSet<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(ids.len(), 120, "no shift twice");
    assert_eq!(distinct, created, "every shift, none of anyone else");
    let requests: Vec<&str> = seen.iter().filter_map(|a| a["request_id"].as_str()).collect();
    assert!(
        requests.windows(2).all(|pair| pair[0] < pair[1]),
        "one stable order (by request) across the pages"
    );

    // The cursor is the officer's: another officer, or an edited cursor, gets a 400.
    let cursor = {
        let (_, page) = call_api(
            Method::GET,
            "/v1/providers/me/assignments?limit=10",
            Some(&officer_token),
            None,
            None,
        )
        .await;
        page["next_cursor"].as_str().expect("a next page").to_owned()
    };
    let other = stack
        .user_with_email(&unique_email("pager2"), &["provider"])
        .await
        .id_token;
    let path = format!("/v1/providers/me/assignments?cursor={cursor}");
    let (status, _) = call_api(Method::GET, &path, Some(&other), None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let edited = format!("/v1/providers/me/assignments?cursor=A{cursor}");
    let (status, _) = call_api(Method::GET, &edited, Some(&officer_token), None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call_api(
        Method::GET,
        "/v1/providers/me/assignments?limit=0",
        Some(&officer_token),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Reads list `path` page by page (`limit` each) as `token`: the ids (`id_field`) in the order
/// served, and how many pages it took; every page holds at most `limit`.
async fn page_through(path: &str, token: &str, limit: usize, id_field: &str) -> (Vec<String>, usize) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}{separator}limit={limit}&cursor={cursor}"),
            None => format!("{path}{separator}limit={limit}"),
        };
        let (status, page) = call_api(Method::GET, &page_path, Some(token), None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= limit, "a page holds at most {limit}");
        ids.extend(
            items
                .iter()
                .filter_map(|i| i[id_field].as_str().map(str::to_owned)),
        );
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn the_support_queue_and_the_privacy_request_lists_are_paged_never_read_whole() {
    let stack = stack();
    // 60 anonymous inquiries (5 a day per address: 12 senders).
    let mut inquiries = Vec::new();
    for sender in 0..12 {
        let email = unique_email(&format!("pagedsender{sender}"));
        for n in 0..5 {
            let body = serde_json::json!({"name": "Rosalind Pagewright", "email": email, "topic": "general", "message": format!("question {n}")});
            let (status, receipt) =
                call_api(Method::POST, "/v1/support/inquiries", None, Some(&body), None).await;
            assert_eq!(status, StatusCode::CREATED, "{receipt}");
            inquiries.push(receipt["inquiry_id"].as_str().expect("id").to_owned());
        }
    }
    let support = stack.user("pagedsupport", &["support"]).await.id_token;
    let (ids, pages) = page_through("/v1/support/inquiries", &support, 25, "inquiry_id").await;
    assert!(pages >= 3, "60 and more inquiries take several pages of 25");
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no inquiry is served twice");
    for id in &inquiries {
        assert!(ids.contains(id), "inquiry {id} is on a page");
    }
    let positions: Vec<usize> = inquiries
        .iter()
        .filter_map(|id| ids.iter().position(|seen| seen == id))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "oldest first, as sent");
    // A cursor of the open queue is no cursor of the answered one.
    let (_, first) = call_api(
        Method::GET,
        "/v1/support/inquiries?limit=1",
        Some(&support),
        None,
        None,
    )
    .await;
    let cursor = first["next_cursor"].as_str().expect("more").to_owned();
    let (status, _) = call_api(
        Method::GET,
        &format!("/v1/support/inquiries?status=answered&cursor={cursor}"),
        Some(&support),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 40 closed privacy requests of two people (20 each, within the per-person limit): the privacy
    // officers page through them.
    let mut requests = Vec::new();
    for _ in 0..2 {
        let token = stack.user("pagedsubject", &["customer"]).await.id_token;
        for _ in 0..20 {
            let (status, done) = call_api(
                Method::POST,
                "/v1/privacy-requests",
                Some(&token),
                Some(&serde_json::json!({"type": "marketing_opt_out"})),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{done}");
            requests.push(done["id"].as_str().expect("id").to_owned());
        }
    }
    let dpo = stack.user("pageddpo", &["privacy_officer"]).await.id_token;
    let (ids, pages) = page_through("/v1/admin/privacy-requests?status=closed", &dpo, 15, "id").await;
    assert!(pages >= 3);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no request is served twice");
    for id in &requests {
        assert!(ids.contains(id), "request {id} is on a page");
    }
    let (status, problem) = call_api(
        Method::GET,
        "/v1/admin/privacy-requests?status=closed&limit=101",
        Some(&dpo),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}
