//! What the DynamoDB store does beyond the shared suite: moving a user's uniqueness claim when
//! its source address changes, reading listings that span several 1 MB query pages, deleting
//! users with more children than one batch write takes, and listing users spread over the
//! index's partitions.

use aws::DynamoStore;
use aws::moto::{MotoServer, unique_name};
use contract::{InviteTo, Progress, Security, UserState};
use domain::error::StoreError;
use domain::model::{
    Connector, ConnectorAuth, EmailAddress, FolderState, MailUser, Project, ProjectId, UserEvent,
    UserId, UserQuery,
};
use domain::ports::Store;
use time::OffsetDateTime;

async fn store(moto: &MotoServer) -> DynamoStore {
    let store = moto.aws().await.dynamo_store(unique_name("store"));
    store.create_table().await.expect("create the table");
    store
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("valid address")
}

fn project() -> Project {
    let connector = Connector {
        kind: contract::ConnectorKind::Imap,
        host: "imap.example.com".into(),
        port: 993,
        security: Security::Tls,
        auth: ConnectorAuth::PerUser,
    };
    Project {
        id: ProjectId::new(),
        name: "Dynamo".into(),
        source: connector.clone(),
        target: connector,
        invite_to: InviteTo::Source,
        admin_email: None,
        notify_user: false,
        copy: Default::default(),
        retention: Default::default(),
        sync: Default::default(),
        closed_at: None,
        created_at: OffsetDateTime::now_utc(),
        version: 1,
    }
}

fn user(project: ProjectId, source: &str, name: &str) -> MailUser {
    let now = OffsetDateTime::now_utc();
    MailUser {
        id: UserId::new(),
        project_id: project,
        source_email: email(source),
        target_email: email("new@target.example"),
        display_name: name.into(),
        state: UserState::New,
        pass: 1,
        progress: Progress::default(),
        last_error: None,
        priority: 0,
        waiting_since: None,
        sync: Default::default(),
        preflight: None,
        line: None,
        has_credentials: false,
        invite_sent_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn all() -> UserQuery {
    UserQuery {
        limit: 0,
        ..UserQuery::default()
    }
}

#[tokio::test]
async fn changing_the_source_address_moves_the_uniqueness_claim() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let s = store(&moto).await;
    let p = project();
    s.insert_project(&p).await.unwrap();
    let ann = user(p.id, "ann@source.example", "Ann");
    let bob = user(p.id, "bob@source.example", "Bob");
    s.insert_user(&ann).await.unwrap();
    s.insert_user(&bob).await.unwrap();

    // Act: Ann's source address changes.
    let mut moved = ann.clone();
    moved.source_email = email("ann.lee@source.example");
    moved.version = 2;
    s.update_user(&moved, 1)
        .await
        .expect("move to a free address");

    // Assert
    assert_eq!(
        s.find_user_by_source(p.id, &email("ann.lee@source.example"))
            .await
            .unwrap(),
        Some(moved.clone()),
        "found by the new address"
    );
    assert_eq!(
        s.find_user_by_source(p.id, &email("ann@source.example"))
            .await
            .unwrap(),
        None,
        "not by the old one"
    );
    let newcomer = user(p.id, "ann@source.example", "Another Ann");
    s.insert_user(&newcomer)
        .await
        .expect("the old address is free again");

    // Moving onto a taken address is refused and changes nothing.
    let mut onto_bob = moved.clone();
    onto_bob.source_email = email("bob@source.example");
    onto_bob.version = 3;
    match s.update_user(&onto_bob, 2).await {
        Err(StoreError::AlreadyExists) => {}
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(s.get_user(ann.id).await.unwrap(), Some(moved.clone()));
    assert_eq!(
        s.find_user_by_source(p.id, &email("bob@source.example"))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(bob.id),
        "Bob keeps his address"
    );

    // A stale version is a conflict whether or not the address changes.
    let mut stale = moved.clone();
    stale.source_email = email("ann.other@source.example");
    stale.version = 3;
    match s.update_user(&stale, 1).await {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    let (listed, total) = s.list_users(p.id, &all()).await.unwrap();
    let sources: Vec<&str> = listed.iter().map(|u| u.source_email.as_str()).collect();
    assert_eq!(
        sources,
        [
            "ann.lee@source.example",
            "ann@source.example",
            "bob@source.example"
        ]
    );
    assert_eq!(total, 3);

    // Deleting the moved user frees its new address, not Bob's.
    s.delete_user(ann.id).await.unwrap();
    s.insert_user(&user(p.id, "ann.lee@source.example", "Ann again"))
        .await
        .expect("the moved user's address is free after the delete");
}

#[tokio::test]
async fn listings_span_several_query_pages() {
    // Arrange: 12 users of ~250 KB each, so the index query needs several 1 MB pages.
    let moto = MotoServer::start().expect("moto_server starts");
    let s = store(&moto).await;
    let p = project();
    s.insert_project(&p).await.unwrap();
    let padding = "x".repeat(80_000);
    let mut want = Vec::new();
    for i in 0..12 {
        let mut u = user(
            p.id,
            &format!("user{i:02}@source.example"),
            &format!("User {i:02} {padding}"),
        );
        if i % 3 == 0 {
            u.state = UserState::Working;
        }
        s.insert_user(&u).await.expect("insert a large user");
        want.push(u);
    }

    // Act
    let (every, total) = s.list_users(p.id, &all()).await.unwrap();
    let (page, page_total) = s
        .list_users(
            p.id,
            &UserQuery {
                offset: 5,
                limit: 4,
                ..UserQuery::default()
            },
        )
        .await
        .unwrap();
    let (working, working_total) = s
        .list_users(
            p.id,
            &UserQuery {
                state: Some(UserState::Working),
                search: Some("USER 09".into()),
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let counts = s.count_users_by_state(p.id).await.unwrap();

    // Assert
    assert_eq!((every.len(), total), (12, 12));
    assert_eq!(every, want, "all users, in source order, read back whole");
    assert_eq!(page_total, 12);
    assert_eq!(page, want[5..9].to_vec(), "a page across query pages");
    assert_eq!(working_total, 1);
    assert_eq!(working[0].id, want[9].id);
    let mut counts = counts;
    counts.sort_by_key(|(st, _)| st.as_str());
    assert_eq!(counts, [(UserState::New, 8), (UserState::Working, 4)]);
}

#[tokio::test]
async fn deleting_a_user_removes_more_children_than_one_batch() {
    // Arrange: 40 events and 30 folders, more than a BatchWriteItem's 25.
    let moto = MotoServer::start().expect("moto_server starts");
    let s = store(&moto).await;
    let p = project();
    s.insert_project(&p).await.unwrap();
    let u = user(p.id, "busy@source.example", "Busy");
    s.insert_user(&u).await.unwrap();
    let now = OffsetDateTime::now_utc();
    for i in 0..40 {
        s.append_event(&UserEvent {
            user_id: u.id,
            at: now + time::Duration::seconds(i),
            message: format!("event {i}"),
        })
        .await
        .unwrap();
    }
    for i in 0..30 {
        s.put_folder(&folder(u.id, &format!("Folder {i}")), None)
            .await
            .unwrap();
    }
    assert_eq!(s.list_events(u.id, 100).await.unwrap().len(), 40);
    assert_eq!(
        s.list_events(u.id, 3).await.unwrap()[0].message,
        "event 39",
        "newest first"
    );

    // Act
    s.delete_user(u.id).await.unwrap();

    // Assert
    assert!(s.list_events(u.id, 100).await.unwrap().is_empty());
    assert!(s.list_folders(u.id).await.unwrap().is_empty());
    assert_eq!(s.get_user(u.id).await.unwrap(), None);
}

fn folder(user: UserId, name: &str) -> FolderState {
    FolderState {
        uidvalidity: Some(1),
        ..FolderState::new(user, name, name, 1)
    }
}

#[tokio::test]
async fn a_projects_users_spread_over_index_partitions_still_list_and_count_in_order() {
    use aws_sdk_dynamodb::types::AttributeValue;
    // Arrange: 80 users (spread by their random ids), one written the way the store wrote
    // users before sharding (its index partition the project's own), and another project's.
    let moto = MotoServer::start().expect("moto_server starts");
    let s = store(&moto).await;
    let p = project();
    s.insert_project(&p).await.unwrap();
    let other = project();
    s.insert_project(&other).await.unwrap();
    s.insert_user(&user(other.id, "zed@source.example", "Other project"))
        .await
        .unwrap();
    let mut want = Vec::new();
    for i in 0..80 {
        let mut u = user(
            p.id,
            &format!("u{i:03}@source.example"),
            &format!("User {i}"),
        );
        if i % 4 == 0 {
            u.state = UserState::Working;
        }
        s.insert_user(&u).await.unwrap();
        want.push(u);
    }
    let legacy = want[41].clone();
    s.client()
        .update_item()
        .table_name(s.table())
        .key("pk", AttributeValue::S(format!("USER#{}", legacy.id)))
        .key("sk", AttributeValue::S("META".into()))
        .update_expression("SET gsi1pk = :old")
        .expression_attribute_values(":old", AttributeValue::S(format!("PROJECT#{}", p.id)))
        .send()
        .await
        .unwrap();

    // Act
    let scan = s
        .client()
        .scan()
        .table_name(s.table())
        .filter_expression("begins_with(pk, :user)")
        .expression_attribute_values(":user", AttributeValue::S("USER#".into()))
        .send()
        .await
        .unwrap();
    let partitions: std::collections::BTreeSet<String> = scan
        .items()
        .iter()
        .filter_map(|i| i.get("gsi1pk")?.as_s().ok().cloned())
        .filter(|k| k.starts_with(&format!("PROJECT#{}", p.id)))
        .collect();
    let (every, total) = s.list_users(p.id, &all()).await.unwrap();
    let (page, _) = s
        .list_users(
            p.id,
            &UserQuery {
                offset: 38,
                limit: 5,
                ..UserQuery::default()
            },
        )
        .await
        .unwrap();
    let (working, working_total) = s
        .list_users(
            p.id,
            &UserQuery {
                state: Some(UserState::Working),
                offset: 2,
                limit: 3,
                ..UserQuery::default()
            },
        )
        .await
        .unwrap();
    let mut counts = s.count_users_by_state(p.id).await.unwrap();
    counts.sort_by_key(|(st, _)| st.as_str());

    // Assert
    assert!(
        partitions.len() >= 12,
        "80 users over most of the 16 shards and the old partition: {partitions:?}"
    );
    assert!(
        partitions.contains(&format!("PROJECT#{}", p.id)),
        "{partitions:?}"
    );
    assert_eq!(total, 80);
    assert_eq!(
        every, want,
        "every user once, in source-address order, across partitions"
    );
    assert_eq!(
        page,
        want[38..43].to_vec(),
        "a window across partitions, the old one included"
    );
    assert_eq!(working_total, 20);
    let working_want: Vec<_> = want
        .iter()
        .filter(|u| u.state == UserState::Working)
        .collect();
    assert_eq!(
        working.iter().collect::<Vec<_>>(),
        working_want[2..5].to_vec(),
        "filters apply in every partition"
    );
    assert_eq!(counts, [(UserState::New, 60), (UserState::Working, 20)]);
}
