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
