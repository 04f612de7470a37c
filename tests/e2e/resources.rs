//! The local bootstrap creates exactly what template.yaml declares, and refuses to run on drift.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use e2e::stack;
use edge::auth::Role;
use infra::bootstrap::{BootstrapError, bootstrap, declared_table_shape, live_table_shape};
use infra::template::Template;
use platform::Clock;
use platform::Config;

#[tokio::test]
async fn every_table_has_the_shape_template_yaml_declares() {
    let stack = stack();
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk().await);
    let tables: Vec<&str> = stack
        .stack
        .template
        .resources_of_type("AWS::DynamoDB::Table")
        .map(|(id, _)| id)
        .collect();
    assert!(
        tables.contains(&"DataTable") && tables.contains(&"KeyStoreTable"),
        "{tables:?}"
    );
    for logical_id in tables {
        let name = stack.stack.physical_id(logical_id).expect("physical table name");
        let live = live_table_shape(&dynamodb, &name).await.expect("describe");
        let declared = declared_table_shape(&stack.stack.template, logical_id).expect("declared");
        assert_eq!(live, declared, "{logical_id}");
    }
    let data = declared_table_shape(&stack.stack.template, "DataTable").expect("DataTable");
    assert_eq!(data.ttl_attribute.as_deref(), Some(platform::store::EXPIRES_AT));
    assert!(
        data.indexes.contains_key("by-due-date"),
        "the retention job's index"
    );
}

#[tokio::test]
async fn a_template_that_no_longer_matches_the_tables_is_refused() {
    let stack = stack();
    let text = std::fs::read_to_string(infra::repo_root().join("template.yaml")).expect("template");
    for (what, from, to) in [
        (
            "TTL attribute",
            "AttributeName: expires_at",
            "AttributeName: expiry",
        ),
        (
            "index projection",
            "ProjectionType: KEYS_ONLY",
            "ProjectionType: ALL",
        ),
    ] {
        assert!(
            text.contains(from),
            "{what}: the template changed, update this test"
        );
        let drifted = Template::parse(&text.replacen(from, to, 1)).expect("still a template");
        match bootstrap(&stack.stack.endpoint, drifted).await {
            Err(BootstrapError::Drift { table, .. }) => {
                assert!(table.ends_with("DataTable"), "{what}: {table}")
            }
            other => panic!("{what}: expected a drift error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_user_pool_groups_are_the_roles_the_code_knows() {
    let stack = stack();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk().await);
    let pool = stack.stack.physical_id("UserPool").expect("pool");
    let mut groups: Vec<String> = cognito
        .list_groups()
        .user_pool_id(&pool)
        .send()
        .await
        .expect("groups")
        .groups
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| g.group_name)
        .collect();
    groups.sort();
    let mut roles: Vec<String> = Role::ALL.iter().map(|r| r.group_name().to_owned()).collect();
    roles.sort();
    assert_eq!(groups, roles);
}

#[tokio::test]
async fn every_function_gets_a_complete_configuration_from_the_template() {
    let stack = stack();
    for function in stack.stack.template.functions().expect("functions") {
        let config: Config = stack.stack.function_config(&function.logical_id).expect("config");
        assert_eq!(
            config.table_name,
            stack.stack.physical_id("DataTable").expect("table")
        );
        assert_eq!(
            config.user_pool_id,
            stack.stack.physical_id("UserPool").expect("pool")
        );
        assert!(
            config.data_key_arn.starts_with("arn:aws:kms:"),
            "{}",
            config.data_key_arn
        );
    }
}

#[tokio::test]
#[allow(clippy::disallowed_methods)] // A probe of the SES identity itself, not a mail to anyone.
async fn the_key_and_the_mail_identity_work() {
    let stack = stack();
    let state = stack.state("RegistrationFunction", Clock::System).await;
    let ciphertext = state
        .kms
        .encrypt()
        .key_id(&state.config.data_key_arn)
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"probe".to_vec()))
        .send()
        .await
        .expect("encrypt under the data key")
        .ciphertext_blob
        .expect("ciphertext");
    let plaintext = state
        .kms
        .decrypt()
        .ciphertext_blob(ciphertext)
        .send()
        .await
        .expect("decrypt")
        .plaintext;
    assert_eq!(plaintext.map(|p| p.into_inner()), Some(b"probe".to_vec()));
    // The emulator, like SES, refuses unverified senders: this proves the identity was created.
    let text = |data: &str| Content::builder().data(data).build().expect("content");
    let ses = aws_sdk_sesv2::Client::new(&stack.sdk().await);
    ses.send_email()
        .from_email_address(&state.config.mail_sender)
        .destination(Destination::builder().to_addresses("probe@example.com").build())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(text("probe"))
                        .body(Body::builder().text(text("probe")).build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("the sender identity is verified");
    let refused = ses
        .send_email()
        .from_email_address("stranger@elsewhere.example")
        .destination(Destination::builder().to_addresses("probe@example.com").build())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(text("x"))
                        .body(Body::builder().text(text("x")).build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(refused.is_err(), "an unverified sender must be refused");
}
