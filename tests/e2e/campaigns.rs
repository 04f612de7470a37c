//! Marketing only by consent, per channel and purpose, through the local gateway and the hourly
//! run as it sends: ten people with mixed consents, a restriction, an erasure and one who never
//! registered get exactly the campaigns they should; an unsubscribe link stops the next one at once;
//! a purpose added later reaches only those who said yes to it; post goes to a list of consented
//! entries only; the inventory and the person's partition say what they were sent.

use crate::accounts::customer_body;
use e2e::{call_api, mails_to, raw_partition, stack, sub_of, unique_email};
use platform::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// One person of the scenario: their token, id, e-mail and name.
struct Person {
    token: String,
    id: String,
    email: String,
    name: String,
}

/// A customer registered through the API with `marketing` as their one marketing answer.
async fn customer(tag: &str, who: &str, marketing: bool) -> Person {
    let email = unique_email(&format!("campaign{}", who.to_lowercase()));
    let token = stack().user_with_email(&email, &["customer"]).await.id_token;
    let name = format!("{who} Campaignson-{tag}");
    let mut body = customer_body(&email, &name);
    body["marketing_consent"] = json!(marketing);
    let (status, account) = call_api(Method::POST, "/v1/customers", Some(&token), Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    Person {
        id: sub_of(&token),
        token,
        email,
        name,
    }
}

async fn decide(person: &Person, purpose: &str, granted: bool) {
    let (status, answer) = call_api(
        Method::PUT,
        &format!("/v1/me/consents/{purpose}"),
        Some(&person.token),
        Some(&json!({"granted": granted, "source": "app"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let decided = answer["purposes"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["purpose"] == purpose))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        decided["consent"],
        if granted { "granted" } else { "refused" },
        "{answer}"
    );
}

/// Ops create a campaign; the hourly run's sending step sends it to the end.
async fn send(ops: &str, body: Value) -> Value {
    let (status, created) = call_api(Method::POST, "/v1/admin/campaigns", Some(ops), Some(&body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["campaign_id"].as_str().expect("id").to_owned();
    let state = stack().function_state("RetentionFunction", Clock::System).await;
    for _ in 0..50 {
        domain::campaigns::send_due(&state, 10_000)
            .await
            .expect("sending");
        let (_, campaign) = call_api(
            Method::GET,
            &format!("/v1/admin/campaigns/{id}"),
            Some(ops),
            None,
            None,
        )
        .await;
        if campaign["status"] == "sent" {
            return campaign;
        }
    }
    panic!("campaign {id} was not sent to the end");
}

/// The names on a post campaign's list for the mail house, every page.
async fn post_list(ops: &str, campaign_id: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/v1/admin/campaigns/{campaign_id}/recipients?after={after}"),
            None => format!("/v1/admin/campaigns/{campaign_id}/recipients"),
        };
        let (status, page) = call_api(Method::GET, &path, Some(ops), None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for entry in page["items"].as_array().into_iter().flatten() {
            assert!(entry.get("phone").is_none(), "a letter needs no number: {entry}");
            assert!(
                entry["address"]["line1"].is_string(),
                "a letter needs an address: {entry}"
            );
            names.push(entry["name"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return names,
        }
    }
}

/// How many mails `person` got whose subject is `subject`.
async fn got(person: &Person, subject: &str) -> usize {
    mails_to(&person.email)
        .await
        .iter()
        .filter(|m| m.contains(subject))
        .count()
}

#[tokio::test]
async fn campaigns_reach_exactly_those_who_consented_to_their_channel_and_purpose() {
    let stack = stack();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let ops = stack.user("campaignops", &["ops"]).await.id_token;
    let privacy_officer = stack.user("campaigndpo", &["privacy_officer"]).await.id_token;

    let yes = customer(&tag, "Yes", true).await;
    let no = customer(&tag, "No", false).await;
    let post_only = customer(&tag, "Postonly", true).await;
    decide(&post_only, "marketing_email", false).await;
    decide(&post_only, "marketing_phone", false).await;
    let email_only = customer(&tag, "Emailonly", false).await;
    decide(&email_only, "marketing_email", true).await;
    let restricted = customer(&tag, "Restricted", true).await;
    let (status, restriction) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&restricted.token),
        Some(&json!({"type": "restriction", "jurisdiction": "gdpr"})),
        None,
    )
    .await;
    assert!(status.is_success(), "{restriction}");
    let erased = customer(&tag, "Erased", true).await;
    let (status, deletion) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&erased.token),
        Some(&json!({"type": "deletion", "jurisdiction": "ccpa"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deletion}");
    let done = e2e::await_request(&erased.token, deletion["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    let unsubscriber = customer(&tag, "Unsubscriber", true).await;
    let surveyed = customer(&tag, "Surveyed", true).await;
    let not_asked = customer(&tag, "Notasked", true).await;
    // Yes to the survey, no to marketing e-mail: a survey by e-mail does not reach them either.
    let survey_no_email = customer(&tag, "Surveynoemail", false).await;
    // Signed in as a customer, never registered: no account, nothing held, nothing sent.
    let unregistered_email = unique_email("campaignunregistered");
    stack.user_with_email(&unregistered_email, &["customer"]).await;
    let (me_status, _) = call_api(Method::GET, "/v1/me", Some(&yes.token), None, None).await;
    assert_eq!(me_status, StatusCode::OK);

    // A purpose added later needs each person's yes before anything is sent for it.
    let letters: String = tag.chars().map(|c| char::from(b'a' + (c as u8) % 26)).collect();
    let survey = format!("member_survey_{letters}");
    let (status, added) = call_api(
        Method::POST,
        "/v1/admin/purposes",
        Some(&privacy_officer),
        Some(&json!({"purpose": survey, "description": "a yearly survey of how our service worked for you"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(
        (added["needs_consent"].clone(), added["original"].clone()),
        (json!(true), json!(false))
    );
    let (status, _) = call_api(
        Method::POST,
        "/v1/admin/purposes",
        Some(&ops),
        Some(&json!({"purpose": format!("{survey}_x"), "description": "ops may not add purposes"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    decide(&surveyed, &survey, true).await;
    decide(&survey_no_email, &survey, true).await;
    let (status, _) = call_api(
        Method::PUT,
        "/v1/me/consents/scheduling",
        Some(&yes.token),
        Some(&json!({"granted": false, "source": "app"})),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the service itself needs no consent"
    );
    let (status, refused) = call_api(
        Method::POST,
        "/v1/admin/campaigns",
        Some(&ops),
        Some(
            &json!({"subject": "Letters by mail", "body": "x", "channel": "email", "audience": "customers",
                     "purpose": "marketing_post"}),
        ),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an e-mail campaign cannot go out on a yes to letters: {refused}"
    );

    // 1. E-mail to customers, under marketing by e-mail.
    let first = format!("Early-bird security {tag}");
    let campaign = send(
        &ops,
        json!({"subject": first, "body": "Book before May.", "channel": "email", "audience": "customers"}),
    )
    .await;
    assert!(campaign["sent"].as_u64().unwrap_or(0) >= 5, "{campaign}");
    for (person, expected) in [
        (&yes, 1),
        (&no, 0),
        (&post_only, 0),
        (&email_only, 1),
        (&restricted, 0),
        (&erased, 0),
        (&unsubscriber, 1),
        (&surveyed, 1),
        (&not_asked, 1),
    ] {
        assert_eq!(
            got(person, &first).await,
            expected,
            "{} got the first campaign {campaign}: {:?}",
            person.name,
            mails_to(&person.email).await
        );
    }
    let unregistered_mail = mails_to(&unregistered_email).await;
    assert!(
        unregistered_mail.iter().all(|m| !m.contains(&first)),
        "{unregistered_mail:?}"
    );
    // The record that it went (no content) is in the recipient's partition, and in no one else's.
    let deliveries =
        |items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]| {
            items
                .iter()
                .filter(|i| {
                    i.get("item_type").and_then(|v| v.as_s().ok()).map(String::as_str)
                        == Some("campaign_delivery")
                })
                .count()
        };
    assert_eq!(deliveries(&raw_partition(&yes.id).await), 1);
    assert_eq!(deliveries(&raw_partition(&no.id).await), 0);
    assert!(
        !format!("{:?}", raw_partition(&yes.id).await).contains("Book before May"),
        "the delivery record holds no content"
    );

    // 2. The unsubscribe link, as the mail carries it: in its List-Unsubscribe header (RFC 8058,
    // one-click) and its text. Opening it changes nothing; a forged token changes nothing; the
    // mail client's one-click POST stops the next mail.
    let mail: Value = mails_to(&unsubscriber.email)
        .await
        .into_iter()
        .find(|m| m.contains(&first))
        .and_then(|m| serde_json::from_str(&m).ok())
        .expect("the mail");
    let raw = mail["raw_data"]
        .as_str()
        .expect("a raw message, with its headers")
        .to_owned();
    let url = raw
        .split("\r\n")
        .find_map(|line| line.strip_prefix("List-Unsubscribe: <"))
        .and_then(|rest| rest.strip_suffix('>'))
        .expect("a List-Unsubscribe header")
        .to_owned();
    assert!(
        raw.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
        "{raw}"
    );
    let link_prefix = format!("{}/v1/unsubscribe/one-click?token=", stack.api);
    let token = url
        .strip_prefix(&link_prefix)
        .expect("the link points at the API's one-click route")
        .to_owned();
    assert!(
        token.starts_with(&format!("{}.marketing_email.", unsubscriber.id)),
        "{url}"
    );
    // The bodies are quoted-printable: soft line breaks undone, `=3D` is `=`.
    let bodies = raw.replace("=\r\n", "").replace("=3D", "=");
    assert!(
        bodies.contains(&format!("<a href=\"{url}\">Unsubscribe from these mails</a>")),
        "a link in the HTML: {raw}"
    );
    assert!(
        bodies.contains(&format!("needed): {url}")),
        "the link in the text: {raw}"
    );
    let web = reqwest::Client::new();
    let page = web.get(&url).send().await.expect("the page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(page.headers().get("set-cookie").is_none());
    let page = page.text().await.expect("a page");
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(page.contains("updates and promotions by e-mail"), "{page}");
    let marketing_email = |consents: &Value| {
        consents["purposes"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["purpose"] == "marketing_email"))
            .map(|p| p["consent"].clone())
            .unwrap_or(Value::Null)
    };
    let (_, consents) = call_api(
        Method::GET,
        "/v1/me/consents",
        Some(&unsubscriber.token),
        None,
        None,
    )
    .await;
    assert_eq!(
        marketing_email(&consents),
        "granted",
        "opening the link changes nothing: {consents}"
    );
    let forged = format!("{}.marketing_email.4102444800.{}", yes.id, "0".repeat(64));
    let (status, _) = call_api(
        Method::POST,
        "/v1/unsubscribe",
        None,
        Some(&json!({"token": forged})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let forged_click = web
        .post(format!("{link_prefix}{forged}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("an answer");
    assert_eq!(forged_click.status(), StatusCode::FORBIDDEN);
    let (_, consents) = call_api(Method::GET, "/v1/me/consents", Some(&yes.token), None, None).await;
    assert_eq!(marketing_email(&consents), "granted", "{consents}");
    // What a mail client sends for the header.
    let click = web
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("an answer");
    assert_eq!(click.status(), StatusCode::OK);
    let unsubscribed: Value = click.json().await.expect("JSON");
    assert_eq!(
        unsubscribed,
        json!({"purpose": "marketing_email", "granted": false})
    );
    let (_, consents) = call_api(
        Method::GET,
        "/v1/me/consents",
        Some(&unsubscriber.token),
        None,
        None,
    )
    .await;
    assert_eq!(marketing_email(&consents), "refused", "{consents}");
    // The app's route takes the same token (again: still off).
    let (status, unsubscribed) = call_api(
        Method::POST,
        "/v1/unsubscribe",
        None,
        Some(&json!({"token": token})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{unsubscribed}");
    assert_eq!(unsubscribed["granted"], false);
    // The page's own button (a browser) gets a page back.
    let button = web
        .post(&url)
        .header("accept", "text/html")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("an answer");
    assert_eq!(button.status(), StatusCode::OK);
    assert!(button.text().await.unwrap_or_default().contains("Unsubscribed"));
    let second = format!("Holiday rates {tag}");
    send(
        &ops,
        json!({"subject": second, "body": "Holiday rates are out.", "channel": "email", "audience": "customers"}),
    )
    .await;
    assert_eq!(
        got(&unsubscriber, &second).await,
        0,
        "unsubscribing stops the next campaign"
    );
    assert_eq!(got(&yes, &second).await, 1);

    // 3. Post: no mail, a list of consented entries only, with the postal address.
    let letter = send(
        &ops,
        json!({"subject": format!("Catalogue {tag}"), "body": "Our catalogue.", "channel": "post", "audience": "customers"}),
    )
    .await;
    let letter_id = letter["campaign_id"].as_str().expect("id").to_owned();
    let names = post_list(&ops, &letter_id).await;
    for person in [&yes, &post_only, &unsubscriber, &surveyed, &not_asked] {
        assert!(
            names.contains(&person.name),
            "{} is on the post list",
            person.name
        );
    }
    for person in [&no, &email_only, &restricted, &erased] {
        assert!(
            !names.contains(&person.name),
            "{} is not on the post list",
            person.name
        );
    }
    // Handing the list to the mail house is a disclosure to a processor, logged for each person on
    // it (and for nobody left off it).
    let logged = |person: &Person| {
        let id = person.id.clone();
        async move {
            e2e::raw_items_of(&platform::keys::privacy_partition(&id))
                .await
                .iter()
                .filter(|item| {
                    item.get("item_type")
                        .and_then(|t| t.as_s().ok())
                        .map(String::as_str)
                        == Some("disclosure")
                        && item
                            .get("recipient")
                            .and_then(|r| r.as_s().ok())
                            .is_some_and(|r| r.contains("mail house"))
                })
                .count()
        }
    };
    for person in [&yes, &post_only] {
        assert!(
            logged(person).await >= 1,
            "{}: the handover is logged",
            person.name
        );
    }
    for person in [&no, &restricted] {
        assert_eq!(logged(person).await, 0, "{} was not handed over", person.name);
    }
    assert_eq!(
        got(&yes, &format!("Catalogue {tag}")).await,
        0,
        "post is not e-mailed"
    );
    // The list is checked again when it is read: a withdrawal since the sending takes them off it.
    decide(&yes, "marketing_post", false).await;
    assert!(
        !post_list(&ops, &letter_id).await.contains(&yes.name),
        "a withdrawn consent is honoured"
    );
    let (status, _) = call_api(
        Method::GET,
        &format!(
            "/v1/admin/campaigns/{}/recipients",
            campaign["campaign_id"].as_str().expect("id")
        ),
        Some(&ops),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "an e-mail campaign has no list");

    // 4. A campaign for the purpose added later reaches only the one who said yes to it.
    let third = format!("Tell us how we did {tag}");
    send(
        &ops,
        json!({"subject": third, "body": "Five questions.", "channel": "email", "audience": "customers", "purpose": survey}),
    )
    .await;
    assert_eq!(got(&surveyed, &third).await, 1);
    for person in [&yes, &not_asked, &email_only, &survey_no_email] {
        assert_eq!(
            got(person, &third).await,
            0,
            "{} did not say yes to both",
            person.name
        );
    }
    let (status, _) = call_api(
        Method::POST,
        "/v1/admin/campaigns",
        Some(&ops),
        Some(&json!({"subject": "x", "body": "y", "channel": "email", "audience": "customers", "purpose": "scheduling"})),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no campaign for a purpose that needs no consent"
    );

    // The person sees each purpose with their decision, and what they were sent.
    let (_, inventory) = call_api(
        Method::GET,
        "/v1/me/data-inventory",
        Some(&surveyed.token),
        None,
        None,
    )
    .await;
    let consent_of = |purpose: &str| {
        inventory["purposes"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["purpose"] == purpose))
            .map(|p| p["consent"].clone())
    };
    assert_eq!(consent_of(&survey), Some(json!("granted")), "{inventory}");
    assert_eq!(consent_of("marketing_post"), Some(json!("granted")));
    assert_eq!(consent_of("scheduling"), Some(json!("not_needed")));
    let sent_to_them = inventory["categories"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["category"] == "campaign_delivery"))
        .map(|c| c["records_held"].clone());
    // Two e-mails, the letter and the survey (and any campaign another test made meanwhile).
    assert!(
        sent_to_them
            .as_ref()
            .and_then(Value::as_u64)
            .is_some_and(|n| n >= 4),
        "{sent_to_them:?}"
    );
    // Their export holds their decisions, per purpose, and the campaigns they were sent.
    let (status, queued) = call_api(
        Method::POST,
        "/v1/privacy-requests",
        Some(&surveyed.token),
        Some(&json!({"type": "access", "jurisdiction": "ccpa"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let access = e2e::await_request(&surveyed.token, queued["id"].as_str().expect("id")).await;
    let exported = &access["result"]["export"]["items_by_type"];
    assert!(
        exported["campaign_delivery"].as_u64().unwrap_or(0) >= 4,
        "{access}"
    );
    assert!(
        exported["consent_state"].as_u64().unwrap_or(0) >= 4,
        "three marketing channels and the survey: {access}"
    );
    let (_, consents) = call_api(Method::GET, "/v1/me/consents", Some(&post_only.token), None, None).await;
    let post_only_email = consents["purposes"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["purpose"] == "marketing_email"))
        .map(|p| p["consent"].clone());
    assert_eq!(post_only_email, Some(json!("refused")), "{consents}");
}
