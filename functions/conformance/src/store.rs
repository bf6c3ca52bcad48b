//! The [`Store`] suite.
//!
//! What it pins down beyond the trait's comments, so both adapters agree:
//! - an `update_*` (and `put_folder` with `Some`) of a record that does not exist is a
//!   [`StoreError::Conflict`], like a DynamoDB condition on a missing item;
//! - records read back equal what was written, field for field (times to the nanosecond);
//! - `list_users` orders by source address, pages with offset/limit, and its total counts all
//!   matches, not the page; `count_users_by_state` may leave out states with no users;
//! - `list_events` is newest first by the event's time, whatever the order of appends;
//! - `list_folders` and `list_projects` are compared as sets (their order is not part of the
//!   port);
//! - concurrent version-checked updates of one record: exactly one wins.

use contract::{InviteTo, Progress, Security, SkippedItem, UserState};
use domain::error::StoreError;
use domain::model::{
    AdminSession, Connector, ConnectorAuth, EmailAddress, FolderState, Invite, MailUser, Project,
    ProjectId, Sealed, UserEvent, UserId, UserQuery,
};
use domain::ports::Store;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::audit::audit_trail;
use crate::limiter::{
    a_line_counts_the_places_before_a_rank, ended_slots_pass_on, lines_serve_users_in_rank_order,
    racing_holders_never_exceed_the_cap, slots_up_to_the_cap, usage_adds_up_per_key_and_hour,
};
use crate::runner::Report;

type Check = fn(Arc<dyn Store>) -> BoxFuture<'static, ()>;

macro_rules! checks {
    ($($name:literal => $f:ident),* $(,)?) => {
        vec![$(($name, (|s| $f(s).boxed()) as Check)),*]
    };
}

fn checks() -> Vec<(&'static str, Check)> {
    checks![
        "projects: insert, get, duplicate id" => projects_insert_get,
        "projects: version-checked update" => projects_update_conflict,
        "projects: list" => projects_list,
        "users: insert, get, unique source address per project" => users_insert_unique,
        "users: find by source address" => users_find_by_source,
        "users: version-checked update" => users_update_conflict,
        "users: update refreshes the indexed fields" => users_update_reindexes,
        "users: list order, filters, search, paging, total" => users_list,
        "users: count by state" => users_count_by_state,
        "users: delete cascades to credentials, invites, folders, events" => users_delete_cascades,
        "users: concurrent updates, exactly one wins" => users_concurrent_updates,
        "users: concurrent inserts of one address, exactly one wins" => users_concurrent_inserts,
        "credentials: put, replace, get, delete" => credentials_roundtrip,
        "invites: insert, duplicate, get, version-checked update" => invites_roundtrip,
        "invites: delete all of a user" => invites_delete_of_user,
        "settings: put, overwrite, put if absent" => settings_roundtrip,
        "sessions: put, overwrite, get, delete" => sessions_roundtrip,
        "events: newest first, limit, per user" => events_order_and_limit,
        "folders: insert, duplicate, version-checked update, list" => folders_roundtrip,
        "folder details: skipped items and copy-map pages, paged, per folder, deleted with the user" => folder_details,
        "audit: append only, per project, newest first, paged by id" => audit_trail,
        "limiter: slots up to the cap, release, in use, keys apart" => slots_up_to_the_cap,
        "limiter: an ended slot passes on; its old holder can neither renew nor release it" => ended_slots_pass_on,
        "limiter: racing holders never exceed the cap" => racing_holders_never_exceed_the_cap,
        "limiter: a line counts the places before a rank, kept places only" => a_line_counts_the_places_before_a_rank,
        "limiter: usage adds up per key and hour, racing adds included" => usage_adds_up_per_key_and_hour,
        "schedule on the limiter: lines serve users in rank order, refused jobs hold nothing" => lines_serve_users_in_rank_order,
    ]
}

/// Runs every store check, each on a fresh store from `make`, and panics naming the checks
/// that failed.
pub async fn store_suite<S, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let mut report = Report::new("store");
    for (name, check) in checks() {
        if !Report::selected(name) {
            continue;
        }
        let store: Arc<dyn Store> = Arc::new(make().await);
        report.run(name, check(store)).await;
    }
    report.finish();
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("test address is valid")
}

/// A fixed instant with nanoseconds, so a store that rounds times is caught.
fn at(seconds: i64) -> OffsetDateTime {
    datetime!(2026-03-01 12:00:00.123456789 UTC) + Duration::seconds(seconds)
}

fn project(name: &str) -> Project {
    Project {
        id: ProjectId::new(),
        name: name.to_owned(),
        source: Connector {
            kind: contract::ConnectorKind::Imap,
            host: "imap.source.example".into(),
            port: 993,
            security: Security::Tls,
            auth: ConnectorAuth::PerUser,
        },
        target: Connector {
            kind: contract::ConnectorKind::Imap,
            host: "imap.target.example".into(),
            port: 143,
            security: Security::Starttls,
            auth: ConnectorAuth::Admin {
                login_pattern: "{email}*admin".into(),
                password: Some(Sealed(vec![1, 0, 255, 42, 7])),
            },
        },
        invite_to: InviteTo::Source,
        admin_email: Some(email("admin@example.com")),
        notify_user: true,
        copy: domain::CopyOptions {
            exclude: vec!["Junk".into()],
            max_message_bytes: Some(25_000_000),
            ..Default::default()
        },
        retention: contract::Retention { idle_days: 9 },
        sync: Default::default(),
        closed_at: Some(at(3)),
        created_at: at(0),
        version: 1,
    }
}

fn user(project: ProjectId, source: &str, target: &str, name: &str, state: UserState) -> MailUser {
    MailUser {
        id: UserId::new(),
        project_id: project,
        source_email: email(source),
        target_email: email(target),
        display_name: name.to_owned(),
        state,
        pass: 1,
        progress: Progress {
            messages_total: 120,
            messages_done: 30,
            bytes_total: 1_048_576,
            bytes_done: 262_144,
            skipped: 1,
            throughput_bps: Some(12_500.5),
            eta_seconds: Some(90),
        },
        last_error: None,
        priority: 0,
        waiting_since: None,
        sync: Default::default(),
        preflight: None,
        line: None,
        has_credentials: false,
        invite_sent_at: Some(at(5)),
        created_at: at(1),
        updated_at: at(2),
        version: 1,
    }
}

async fn seeded_user(s: &dyn Store, source: &str) -> (Project, MailUser) {
    let p = project("Seeded");
    s.insert_project(&p).await.expect("insert_project");
    let u = user(
        p.id,
        source,
        "new@target.example",
        "Seeded User",
        UserState::New,
    );
    s.insert_user(&u).await.expect("insert_user");
    (p, u)
}

fn invite(u: &MailUser) -> Invite {
    Invite {
        token_hash: uuid::Uuid::new_v4().simple().to_string(),
        user_id: u.id,
        project_id: u.project_id,
        created_at: at(10),
        expires_at: at(10 + 7 * 86_400),
        failed_attempts: 0,
        testing_until: None,
        purpose: Default::default(),
        version: 1,
    }
}

fn folder(user: UserId, source_name: &str) -> FolderState {
    FolderState {
        user_id: user,
        source_name: source_name.to_owned(),
        target_name: format!("Migrated/{source_name}"),
        pass: 1,
        uidvalidity: Some(1_700_000_001),
        last_uid: 41,
        in_flight: Some(domain::InFlight {
            to_uid: 50,
            target_uidvalidity: 7,
            target_uidnext: 13,
        }),
        highest_modseq: Some(9_000_000_000),
        source_messages: 100,
        source_bytes: 5_000_000,
        copied_messages: 41,
        copied_bytes: 2_000_000,
        target_messages: None,
        target_bytes: None,
        skipped: vec![SkippedItem {
            uid: 7,
            size: 60_000_000,
            reason: "too large for the target".into(),
            cause: contract::SkipCause::TargetRefused,
        }],
        skipped_count: 0,
        done: false,
        copies: domain::CopyMap {
            target_uidvalidity: Some(7),
            runs: vec![[1, 101, 40], [45, 141, 3]],
            pages: 2,
        },
        map_rebuilt_in_pass: Some(2),
        planned_in_pass: Some(2),
        copied_before_pass: Some(40),
        source_mark: Some(domain::SourceMark {
            uidvalidity: 7,
            uidnext: 46,
            messages: 44,
            highest_modseq: 90,
            removal_settled: true,
        }),
        subscribed: true,
        special_use: Some(domain::mailbox::SpecialUse::Sent),
        renamed_from: Some("Migrated/Sent: 2024".into()),
        content_checked: 20,
        altered: vec![contract::AlteredItem {
            uid: 3,
            target_uid: 103,
            change: "8-bit header bytes replaced (2 bytes)".into(),
        }],
        altered_count: 1,
        shares_target: true,
        moves: None,
        lease_owner: Some("worker-1".into()),
        lease_until: Some(at(600)),
        version: 1,
    }
}

fn event(user: UserId, seconds: i64, message: &str) -> UserEvent {
    UserEvent {
        user_id: user,
        at: at(seconds),
        message: message.to_owned(),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::Conflict) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn assert_exists<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::AlreadyExists) => {}
        other => panic!("{what}: expected AlreadyExists, got {other:?}"),
    }
}

fn sources(users: &[MailUser]) -> Vec<String> {
    users.iter().map(|u| u.source_email.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Projects

async fn projects_insert_get(s: Arc<dyn Store>) {
    let p = project("Alpha");
    assert_eq!(
        s.get_project(p.id).await.expect("get_project"),
        None,
        "a project not yet inserted"
    );
    s.insert_project(&p).await.expect("insert_project");
    assert_eq!(
        s.get_project(p.id).await.expect("get_project"),
        Some(p.clone()),
        "read back"
    );

    let mut again = p.clone();
    again.name = "Alpha again".into();
    assert_exists(
        s.insert_project(&again).await,
        "inserting a second project with the same id",
    );
    assert_eq!(
        s.get_project(p.id).await.expect("get_project"),
        Some(p),
        "a refused insert changes nothing"
    );
}

async fn projects_update_conflict(s: Arc<dyn Store>) {
    let p = project("Beta");
    s.insert_project(&p).await.expect("insert_project");

    let mut v2 = p.clone();
    v2.name = "Beta renamed".into();
    v2.notify_user = false;
    v2.admin_email = None;
    v2.version = 2;
    s.update_project(&v2, 1)
        .await
        .expect("update from version 1");
    assert_eq!(
        s.get_project(p.id).await.expect("get_project"),
        Some(v2.clone()),
        "updated project"
    );

    let mut stale = p.clone();
    stale.name = "lost update".into();
    stale.version = 2;
    assert_conflict(
        s.update_project(&stale, 1).await,
        "update with a stale expected version",
    );
    assert_eq!(
        s.get_project(p.id).await.expect("get_project"),
        Some(v2),
        "a conflict changes nothing"
    );

    let mut ghost = project("Ghost");
    ghost.version = 2;
    assert_conflict(
        s.update_project(&ghost, 1).await,
        "update of a project that does not exist",
    );
    assert_eq!(
        s.get_project(ghost.id).await.expect("get_project"),
        None,
        "a failed update creates nothing"
    );
}

async fn projects_list(s: Arc<dyn Store>) {
    assert!(
        s.list_projects().await.expect("list_projects").is_empty(),
        "a fresh store has no projects"
    );
    let mut want = Vec::new();
    for (i, name) in ["One", "Two", "Three"].into_iter().enumerate() {
        let mut p = project(name);
        p.created_at = at(i64::try_from(i).expect("small"));
        s.insert_project(&p).await.expect("insert_project");
        want.push(p);
    }
    let mut got = s.list_projects().await.expect("list_projects");
    got.sort_by_key(|p| p.id);
    want.sort_by_key(|p| p.id);
    assert_eq!(got, want, "every project listed once");
}

// ---------------------------------------------------------------------------------------------
// Users

async fn users_insert_unique(s: Arc<dyn Store>) {
    let p1 = project("P1");
    let p2 = project("P2");
    s.insert_project(&p1).await.expect("insert_project");
    s.insert_project(&p2).await.expect("insert_project");

    let u = user(
        p1.id,
        "alice@source.example",
        "alice@target.example",
        "Alice",
        UserState::New,
    );
    assert_eq!(
        s.get_user(u.id).await.expect("get_user"),
        None,
        "a user not yet inserted"
    );
    s.insert_user(&u).await.expect("insert_user");
    assert_eq!(
        s.get_user(u.id).await.expect("get_user"),
        Some(u.clone()),
        "read back"
    );

    let same_id = MailUser {
        source_email: email("other@source.example"),
        ..u.clone()
    };
    assert_exists(
        s.insert_user(&same_id).await,
        "inserting a second user with the same id",
    );

    let same_source = user(
        p1.id,
        "alice@source.example",
        "alice2@target.example",
        "Alice Two",
        UserState::New,
    );
    assert_exists(
        s.insert_user(&same_source).await,
        "inserting a second user with the same source address in the same project",
    );
    assert_eq!(
        s.get_user(same_source.id).await.expect("get_user"),
        None,
        "the refused user is not stored"
    );

    let other_project = user(
        p2.id,
        "alice@source.example",
        "alice@target.example",
        "Alice",
        UserState::New,
    );
    s.insert_user(&other_project)
        .await
        .expect("the same source address in another project is allowed");
    assert_eq!(
        s.get_user(other_project.id).await.expect("get_user"),
        Some(other_project),
        "read back"
    );
    assert_eq!(
        s.get_user(u.id).await.expect("get_user"),
        Some(u),
        "the first user is unchanged"
    );
}

async fn users_find_by_source(s: Arc<dyn Store>) {
    let p1 = project("P1");
    let p2 = project("P2");
    s.insert_project(&p1).await.expect("insert_project");
    s.insert_project(&p2).await.expect("insert_project");
    let a1 = user(
        p1.id,
        "bob@source.example",
        "bob@target.example",
        "Bob",
        UserState::New,
    );
    let a2 = user(
        p2.id,
        "bob@source.example",
        "robert@target.example",
        "Robert",
        UserState::Working,
    );
    let b1 = user(
        p1.id,
        "carol@source.example",
        "carol@target.example",
        "Carol",
        UserState::New,
    );
    for u in [&a1, &a2, &b1] {
        s.insert_user(u).await.expect("insert_user");
    }
    let bob = email("bob@source.example");
    assert_eq!(
        s.find_user_by_source(p1.id, &bob).await.expect("find"),
        Some(a1),
        "bob in project 1"
    );
    assert_eq!(
        s.find_user_by_source(p2.id, &bob).await.expect("find"),
        Some(a2),
        "bob in project 2"
    );
    assert_eq!(
        s.find_user_by_source(p2.id, &email("carol@source.example"))
            .await
            .expect("find"),
        None,
        "carol is only in project 1"
    );
    assert_eq!(
        s.find_user_by_source(p1.id, &email("nobody@source.example"))
            .await
            .expect("find"),
        None,
        "an unknown address"
    );
    // The target address is not a source address.
    assert_eq!(
        s.find_user_by_source(p1.id, &email("bob@target.example"))
            .await
            .expect("find"),
        None,
        "lookup by a target address"
    );
}

async fn users_update_conflict(s: Arc<dyn Store>) {
    let (_, u) = seeded_user(s.as_ref(), "dave@source.example").await;

    let mut v2 = u.clone();
    v2.state = UserState::Scheduled;
    v2.has_credentials = true;
    v2.last_error = Some("previous attempt: connection reset".into());
    v2.updated_at = at(100);
    v2.version = 2;
    s.update_user(&v2, 1).await.expect("update from version 1");
    assert_eq!(
        s.get_user(u.id).await.expect("get_user"),
        Some(v2.clone()),
        "updated user"
    );

    let mut stale = u.clone();
    stale.state = UserState::Failed;
    stale.version = 2;
    assert_conflict(
        s.update_user(&stale, 1).await,
        "update with a stale expected version",
    );
    assert_eq!(
        s.get_user(u.id).await.expect("get_user"),
        Some(v2.clone()),
        "a conflict changes nothing"
    );

    let mut v3 = v2.clone();
    v3.state = UserState::Working;
    v3.version = 3;
    s.update_user(&v3, 2).await.expect("update from version 2");
    assert_eq!(
        s.get_user(u.id).await.expect("get_user"),
        Some(v3),
        "second update"
    );

    let mut ghost = user(
        u.project_id,
        "ghost@source.example",
        "ghost@target.example",
        "Ghost",
        UserState::New,
    );
    ghost.version = 2;
    assert_conflict(
        s.update_user(&ghost, 1).await,
        "update of a user that does not exist",
    );
    assert_eq!(
        s.get_user(ghost.id).await.expect("get_user"),
        None,
        "a failed update creates nothing"
    );
}

async fn users_update_reindexes(s: Arc<dyn Store>) {
    let (p, u) = seeded_user(s.as_ref(), "erin@source.example").await;
    let mut v2 = u.clone();
    v2.state = UserState::Completed;
    v2.display_name = "Erin Zylinski".into();
    v2.target_email = email("erin.z@target.example");
    v2.version = 2;
    s.update_user(&v2, 1).await.expect("update_user");

    let q = |state: Option<UserState>, search: Option<&str>| UserQuery {
        state,
        search: search.map(str::to_owned),
        offset: 0,
        limit: 100,
    };
    let (old_state, total) = s
        .list_users(p.id, &q(Some(UserState::New), None))
        .await
        .expect("list_users");
    assert!(
        old_state.is_empty() && total == 0,
        "the user is no longer listed under its old state"
    );
    let (new_state, total) = s
        .list_users(p.id, &q(Some(UserState::Completed), None))
        .await
        .expect("list_users");
    assert_eq!(
        (new_state, total),
        (vec![v2.clone()], 1),
        "the user is listed under its new state"
    );
    let (by_name, _) = s
        .list_users(p.id, &q(None, Some("zylinski")))
        .await
        .expect("list_users");
    assert_eq!(by_name, vec![v2.clone()], "found by its new display name");
    let (by_target, _) = s
        .list_users(p.id, &q(None, Some("erin.z@")))
        .await
        .expect("list_users");
    assert_eq!(by_target, vec![v2], "found by its new target address");
    let counts = counts(
        s.count_users_by_state(p.id)
            .await
            .expect("count_users_by_state"),
    );
    assert_eq!(
        counts,
        BTreeMap::from([(UserState::Completed, 1)]),
        "counts follow the update"
    );
}

/// The project the listing checks use: 7 users, plus 2 in another project that must never
/// show up.
async fn listing_fixture(s: &dyn Store) -> (Project, Vec<MailUser>) {
    let p = project("Listing");
    let other = project("Other");
    s.insert_project(&p).await.expect("insert_project");
    s.insert_project(&other).await.expect("insert_project");
    let rows = [
        // Target addresses sort differently from source addresses, so the order is checked.
        (
            "greta@source.example",
            "a.greta@target.example",
            "Greta Garbo",
            UserState::New,
        ),
        (
            "alice@source.example",
            "zz.alice@target.example",
            "Alice Liddell",
            UserState::Working,
        ),
        (
            "frank@source.example",
            "frank@target.example",
            "Frank Zappa",
            UserState::Completed,
        ),
        (
            "carol@source.example",
            "carol.new@target.example",
            "Carol Danvers",
            UserState::Working,
        ),
        (
            "bob@source.example",
            "bob@target.example",
            "Bob Ross",
            UserState::New,
        ),
        (
            "eve@source.example",
            "eve@target.example",
            "Ève Müller-ÅSTRÖM",
            UserState::Failed,
        ),
        (
            "dan@source.example",
            "daniel@target.example",
            "Dan Brown",
            UserState::New,
        ),
    ];
    let mut users = Vec::new();
    for (source, target, name, state) in rows {
        let u = user(p.id, source, target, name, state);
        s.insert_user(&u).await.expect("insert_user");
        users.push(u);
    }
    for source in ["aaron@source.example", "alice@source.example"] {
        let u = user(
            other.id,
            source,
            "x@target.example",
            "Alice Elsewhere",
            UserState::New,
        );
        s.insert_user(&u).await.expect("insert_user");
    }
    users.sort_by(|a, b| a.source_email.cmp(&b.source_email));
    (p, users)
}

async fn users_list(s: Arc<dyn Store>) {
    let (p, all) = listing_fixture(s.as_ref()).await;
    let list = |state: Option<UserState>, search: Option<&str>, offset: u64, limit: u64| {
        let s = Arc::clone(&s);
        let q = UserQuery {
            state,
            search: search.map(str::to_owned),
            offset,
            limit,
        };
        async move { s.list_users(p.id, &q).await.expect("list_users") }
    };

    let (users, total) = list(None, None, 0, 100).await;
    assert_eq!(
        users, all,
        "all users of the project, ordered by source address, nothing of the other project"
    );
    assert_eq!(total, 7, "total without filter");

    // Paging: consecutive pages tile the ordered list; the total is always all matches.
    let mut paged = Vec::new();
    for offset in [0, 3, 6] {
        let (page, total) = list(None, None, offset, 3).await;
        assert_eq!(total, 7, "total on the page at offset {offset}");
        assert!(
            page.len() <= 3,
            "page at offset {offset} longer than its limit"
        );
        paged.extend(page);
    }
    assert_eq!(
        sources(&paged),
        sources(&all),
        "pages of 3 at offsets 0, 3, 6"
    );
    let (beyond, total) = list(None, None, 10, 3).await;
    assert!(beyond.is_empty(), "a page past the end is empty");
    assert_eq!(total, 7, "total on a page past the end");

    let (working, total) = list(Some(UserState::Working), None, 0, 100).await;
    assert_eq!(
        sources(&working),
        ["alice@source.example", "carol@source.example"],
        "state filter"
    );
    assert_eq!(total, 2, "total with state filter");
    let (new_page, total) = list(Some(UserState::New), None, 1, 1).await;
    assert_eq!(
        sources(&new_page),
        ["dan@source.example"],
        "state filter with paging"
    );
    assert_eq!(total, 3, "total with state filter and paging");
    let (none, total) = list(Some(UserState::Verified), None, 0, 100).await;
    assert!(none.is_empty() && total == 0, "a state nobody is in");

    let (by_source, total) = list(None, Some("ALICE@"), 0, 100).await;
    assert_eq!(
        (sources(&by_source), total),
        (vec!["alice@source.example".to_owned()], 1),
        "search by source, any case"
    );
    let (by_target, _) = list(None, Some("carol.new"), 0, 100).await;
    assert_eq!(
        sources(&by_target),
        ["carol@source.example"],
        "search by target address"
    );
    let (by_target2, _) = list(None, Some("daniel"), 0, 100).await;
    assert_eq!(
        sources(&by_target2),
        ["dan@source.example"],
        "search by a target-only part"
    );
    let (by_name, _) = list(None, Some("zAPPA"), 0, 100).await;
    assert_eq!(
        sources(&by_name),
        ["frank@source.example"],
        "search by display name, any case"
    );
    let (by_unicode, _) = list(None, Some("müller-åström"), 0, 100).await;
    assert_eq!(
        sources(&by_unicode),
        ["eve@source.example"],
        "search by a non-ASCII display name, any case"
    );
    let (by_domain, total) = list(None, Some("source.example"), 2, 2).await;
    assert_eq!(
        sources(&by_domain),
        ["carol@source.example", "dan@source.example"],
        "search with paging"
    );
    assert_eq!(total, 7, "total of a search with paging");
    let (literal, total) = list(None, Some("%"), 0, 100).await;
    assert!(
        literal.is_empty() && total == 0,
        "search text is literal, not a pattern"
    );
    let (nothing, total) = list(None, Some("nobody-like-this"), 0, 100).await;
    assert!(nothing.is_empty() && total == 0, "search without match");

    let (both, total) = list(Some(UserState::New), Some("ro"), 0, 100).await;
    assert_eq!(
        (sources(&both), total),
        (
            vec![
                "bob@source.example".to_owned(),
                "dan@source.example".to_owned()
            ],
            2
        ),
        "state filter and search together (Bob Ross, Dan Brown; not Carol, who is working)"
    );
}

fn counts(v: Vec<(UserState, u64)>) -> BTreeMap<UserState, u64> {
    let mut map = BTreeMap::new();
    for (state, n) in v {
        assert!(!map.contains_key(&state), "state {state:?} counted twice");
        if n > 0 {
            map.insert(state, n);
        }
    }
    map
}

async fn users_count_by_state(s: Arc<dyn Store>) {
    let (p, _) = listing_fixture(s.as_ref()).await;
    let got = counts(
        s.count_users_by_state(p.id)
            .await
            .expect("count_users_by_state"),
    );
    let want = BTreeMap::from([
        (UserState::New, 3),
        (UserState::Working, 2),
        (UserState::Completed, 1),
        (UserState::Failed, 1),
    ]);
    assert_eq!(got, want, "counts of the listing project only");
    let empty = project("Empty");
    s.insert_project(&empty).await.expect("insert_project");
    let none = counts(
        s.count_users_by_state(empty.id)
            .await
            .expect("count_users_by_state"),
    );
    assert!(none.is_empty(), "a project without users has no counts");
}

async fn users_delete_cascades(s: Arc<dyn Store>) {
    let (p, gone) = seeded_user(s.as_ref(), "frank@source.example").await;
    let kept = user(
        p.id,
        "grace@source.example",
        "grace@target.example",
        "Grace",
        UserState::Working,
    );
    s.insert_user(&kept).await.expect("insert_user");
    let mut invites = BTreeMap::new();
    for u in [&gone, &kept] {
        s.put_credentials(u.id, &Sealed(vec![9; 40]))
            .await
            .expect("put_credentials");
        let i = invite(u);
        s.insert_invite(&i).await.expect("insert_invite");
        invites.insert(u.id, i);
        for name in ["INBOX", "Sent"] {
            s.put_folder(&folder(u.id, name), None)
                .await
                .expect("put_folder");
        }
        s.append_event(&event(u.id, 1, "started"))
            .await
            .expect("append_event");
        s.append_event(&event(u.id, 2, "copied"))
            .await
            .expect("append_event");
    }

    s.delete_user(gone.id).await.expect("delete_user");

    assert_eq!(
        s.get_user(gone.id).await.expect("get_user"),
        None,
        "user deleted"
    );
    assert_eq!(
        s.find_user_by_source(p.id, &gone.source_email)
            .await
            .expect("find"),
        None,
        "not found by address"
    );
    assert_eq!(
        s.get_credentials(gone.id).await.expect("get_credentials"),
        None,
        "credentials deleted"
    );
    assert_eq!(
        s.get_invite(&invites[&gone.id].token_hash)
            .await
            .expect("get_invite"),
        None,
        "invite deleted"
    );
    assert!(
        s.list_folders(gone.id)
            .await
            .expect("list_folders")
            .is_empty(),
        "folders deleted"
    );
    assert_eq!(
        s.get_folder(gone.id, "INBOX").await.expect("get_folder"),
        None,
        "folder deleted"
    );
    assert!(
        s.list_events(gone.id, 10)
            .await
            .expect("list_events")
            .is_empty(),
        "events deleted"
    );
    let (listed, total) = s
        .list_users(
            p.id,
            &UserQuery {
                limit: 100,
                ..UserQuery::default()
            },
        )
        .await
        .expect("list_users");
    assert_eq!(
        (sources(&listed), total),
        (vec![kept.source_email.to_string()], 1),
        "listing after delete"
    );

    // The other user keeps everything.
    assert_eq!(
        s.get_user(kept.id).await.expect("get_user"),
        Some(kept.clone()),
        "other user kept"
    );
    assert!(
        s.get_credentials(kept.id)
            .await
            .expect("get_credentials")
            .is_some(),
        "other credentials kept"
    );
    assert!(
        s.get_invite(&invites[&kept.id].token_hash)
            .await
            .expect("get_invite")
            .is_some(),
        "other invite kept"
    );
    assert_eq!(
        s.list_folders(kept.id).await.expect("list_folders").len(),
        2,
        "other folders kept"
    );
    assert_eq!(
        s.list_events(kept.id, 10).await.expect("list_events").len(),
        2,
        "other events kept"
    );

    s.delete_user(gone.id)
        .await
        .expect("deleting a user that does not exist succeeds");
    let again = user(
        p.id,
        "frank@source.example",
        "frank@target.example",
        "Frank again",
        UserState::New,
    );
    s.insert_user(&again)
        .await
        .expect("the source address is free again after the delete");
}

async fn users_concurrent_updates(s: Arc<dyn Store>) {
    let (_, u) = seeded_user(s.as_ref(), "henry@source.example").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = Arc::clone(&s);
        let mut next = u.clone();
        next.display_name = format!("writer {i}");
        next.version = 2;
        tasks.push(tokio::spawn(async move {
            (next.display_name.clone(), s.update_user(&next, 1).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (name, r) = t.await.expect("update task");
        match r {
            Ok(()) => winners.push(name),
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("concurrent update failed with {e:?} instead of Conflict"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 8 concurrent updates from version 1 wins: {winners:?}"
    );
    let stored = s
        .get_user(u.id)
        .await
        .expect("get_user")
        .expect("user exists");
    assert_eq!(
        (stored.version, stored.display_name),
        (2, winners[0].clone()),
        "the winner's write is stored"
    );
}

async fn users_concurrent_inserts(s: Arc<dyn Store>) {
    let p = project("Race");
    s.insert_project(&p).await.expect("insert_project");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = Arc::clone(&s);
        let u = user(
            p.id,
            "ivy@source.example",
            "ivy@target.example",
            &format!("Ivy {i}"),
            UserState::New,
        );
        tasks.push(tokio::spawn(async move { (u.id, s.insert_user(&u).await) }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (id, r) = t.await.expect("insert task");
        match r {
            Ok(()) => winners.push(id),
            Err(StoreError::AlreadyExists) => {}
            Err(e) => panic!("concurrent insert failed with {e:?} instead of AlreadyExists"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 8 concurrent inserts of one address wins"
    );
    let found = s
        .find_user_by_source(p.id, &email("ivy@source.example"))
        .await
        .expect("find")
        .expect("stored");
    assert_eq!(found.id, winners[0], "the winner is stored");
    let (_, total) = s
        .list_users(
            p.id,
            &UserQuery {
                limit: 100,
                ..UserQuery::default()
            },
        )
        .await
        .expect("list_users");
    assert_eq!(total, 1, "one user in the project");
}

// ---------------------------------------------------------------------------------------------
// Credentials, invites, settings, sessions

async fn credentials_roundtrip(s: Arc<dyn Store>) {
    let (_, u) = seeded_user(s.as_ref(), "jack@source.example").await;
    assert_eq!(
        s.get_credentials(u.id).await.expect("get_credentials"),
        None,
        "none stored yet"
    );
    let first = Sealed((0..=255).collect());
    s.put_credentials(u.id, &first)
        .await
        .expect("put_credentials");
    assert_eq!(
        s.get_credentials(u.id).await.expect("get_credentials"),
        Some(first),
        "every byte value survives"
    );
    let second = Sealed(vec![1, 2, 3]);
    s.put_credentials(u.id, &second)
        .await
        .expect("put_credentials replaces");
    assert_eq!(
        s.get_credentials(u.id).await.expect("get_credentials"),
        Some(second),
        "replaced"
    );
    s.delete_credentials(u.id)
        .await
        .expect("delete_credentials");
    assert_eq!(
        s.get_credentials(u.id).await.expect("get_credentials"),
        None,
        "deleted"
    );
    s.delete_credentials(u.id)
        .await
        .expect("deleting absent credentials succeeds");
    assert!(
        s.get_user(u.id).await.expect("get_user").is_some(),
        "the user stays"
    );
}

async fn invites_roundtrip(s: Arc<dyn Store>) {
    let (_, u) = seeded_user(s.as_ref(), "kate@source.example").await;
    let i = invite(&u);
    assert_eq!(
        s.get_invite(&i.token_hash).await.expect("get_invite"),
        None,
        "not yet inserted"
    );
    s.insert_invite(&i).await.expect("insert_invite");
    assert_eq!(
        s.get_invite(&i.token_hash).await.expect("get_invite"),
        Some(i.clone()),
        "read back"
    );
    let dup = Invite {
        failed_attempts: 3,
        testing_until: None,
        purpose: Default::default(),
        ..i.clone()
    };
    assert_exists(
        s.insert_invite(&dup).await,
        "inserting an invite with a taken hash",
    );

    let v2 = Invite {
        failed_attempts: 1,
        testing_until: None,
        purpose: Default::default(),
        version: 2,
        ..i.clone()
    };
    s.update_invite(&v2, 1)
        .await
        .expect("update from version 1");
    assert_eq!(
        s.get_invite(&i.token_hash).await.expect("get_invite"),
        Some(v2.clone()),
        "updated"
    );
    let stale = Invite {
        failed_attempts: 5,
        testing_until: None,
        purpose: Default::default(),
        version: 2,
        ..i.clone()
    };
    assert_conflict(
        s.update_invite(&stale, 1).await,
        "update with a stale expected version",
    );
    assert_eq!(
        s.get_invite(&i.token_hash).await.expect("get_invite"),
        Some(v2),
        "a conflict changes nothing"
    );

    let ghost = Invite {
        version: 2,
        ..invite(&u)
    };
    assert_conflict(
        s.update_invite(&ghost, 1).await,
        "update of an invite that does not exist",
    );
    assert_eq!(
        s.get_invite(&ghost.token_hash).await.expect("get_invite"),
        None,
        "a failed update creates nothing"
    );
}

async fn invites_delete_of_user(s: Arc<dyn Store>) {
    let (p, u) = seeded_user(s.as_ref(), "liam@source.example").await;
    let other = user(
        p.id,
        "mia@source.example",
        "mia@target.example",
        "Mia",
        UserState::EmailSent,
    );
    s.insert_user(&other).await.expect("insert_user");
    let (a, b, c) = (invite(&u), invite(&u), invite(&other));
    for i in [&a, &b, &c] {
        s.insert_invite(i).await.expect("insert_invite");
    }
    s.delete_invites_of_user(u.id)
        .await
        .expect("delete_invites_of_user");
    assert_eq!(
        s.get_invite(&a.token_hash).await.expect("get_invite"),
        None,
        "first invite deleted"
    );
    assert_eq!(
        s.get_invite(&b.token_hash).await.expect("get_invite"),
        None,
        "second invite deleted"
    );
    assert_eq!(
        s.get_invite(&c.token_hash).await.expect("get_invite"),
        Some(c),
        "another user's invite kept"
    );
    s.delete_invites_of_user(u.id)
        .await
        .expect("deleting when there are none succeeds");
    assert!(
        s.get_user(u.id).await.expect("get_user").is_some(),
        "the user stays"
    );
}

async fn settings_roundtrip(s: Arc<dyn Store>) {
    assert_eq!(
        s.get_setting("admin.password_hash")
            .await
            .expect("get_setting"),
        None,
        "absent"
    );
    s.put_setting("admin.password_hash", "$argon2id$v=19$first")
        .await
        .expect("put_setting");
    assert_eq!(
        s.get_setting("admin.password_hash")
            .await
            .expect("get_setting")
            .as_deref(),
        Some("$argon2id$v=19$first"),
        "stored"
    );
    s.put_setting("admin.password_hash", "$argon2id$v=19$second")
        .await
        .expect("put_setting overwrites");
    assert_eq!(
        s.get_setting("admin.password_hash")
            .await
            .expect("get_setting")
            .as_deref(),
        Some("$argon2id$v=19$second"),
        "overwritten"
    );
    assert!(
        !s.put_setting_if_absent("admin.password_hash", "third")
            .await
            .expect("put_setting_if_absent"),
        "put_if_absent on a present key reports false"
    );
    assert_eq!(
        s.get_setting("admin.password_hash")
            .await
            .expect("get_setting")
            .as_deref(),
        Some("$argon2id$v=19$second"),
        "put_if_absent on a present key changes nothing"
    );
    assert!(
        s.put_setting_if_absent("ui.welcome", "héllo ✓")
            .await
            .expect("put_setting_if_absent"),
        "new key"
    );
    assert_eq!(
        s.get_setting("ui.welcome")
            .await
            .expect("get_setting")
            .as_deref(),
        Some("héllo ✓"),
        "stored"
    );
    s.put_setting("empty", "")
        .await
        .expect("put_setting with an empty value");
    assert_eq!(
        s.get_setting("empty")
            .await
            .expect("get_setting")
            .as_deref(),
        Some(""),
        "empty value kept"
    );
}

async fn sessions_roundtrip(s: Arc<dyn Store>) {
    let session = AdminSession {
        token_hash: uuid::Uuid::new_v4().simple().to_string(),
        expires_at: at(3600),
    };
    assert_eq!(
        s.get_session(&session.token_hash)
            .await
            .expect("get_session"),
        None,
        "absent"
    );
    s.put_session(&session).await.expect("put_session");
    assert_eq!(
        s.get_session(&session.token_hash)
            .await
            .expect("get_session"),
        Some(session.clone()),
        "stored"
    );
    let extended = AdminSession {
        expires_at: at(7200),
        ..session.clone()
    };
    s.put_session(&extended)
        .await
        .expect("put_session overwrites");
    assert_eq!(
        s.get_session(&session.token_hash)
            .await
            .expect("get_session"),
        Some(extended),
        "overwritten"
    );
    let other = AdminSession {
        token_hash: uuid::Uuid::new_v4().simple().to_string(),
        expires_at: at(60),
    };
    s.put_session(&other).await.expect("put_session");
    s.delete_session(&session.token_hash)
        .await
        .expect("delete_session");
    assert_eq!(
        s.get_session(&session.token_hash)
            .await
            .expect("get_session"),
        None,
        "deleted"
    );
    assert_eq!(
        s.get_session(&other.token_hash).await.expect("get_session"),
        Some(other),
        "other session kept"
    );
    s.delete_session(&session.token_hash)
        .await
        .expect("deleting an absent session succeeds");
}

// ---------------------------------------------------------------------------------------------
// Events and folders

async fn events_order_and_limit(s: Arc<dyn Store>) {
    let (p, u) = seeded_user(s.as_ref(), "noah@source.example").await;
    let other = user(
        p.id,
        "olivia@source.example",
        "olivia@target.example",
        "Olivia",
        UserState::New,
    );
    s.insert_user(&other).await.expect("insert_user");
    assert!(
        s.list_events(u.id, 10)
            .await
            .expect("list_events")
            .is_empty(),
        "no events yet"
    );
    // Appended mostly in time order, one late arrival out of order.
    for (secs, msg) in [
        (10, "created"),
        (20, "invite sent"),
        (30, "credentials saved"),
        (40, "copy started"),
    ] {
        s.append_event(&event(u.id, secs, msg))
            .await
            .expect("append_event");
    }
    s.append_event(&event(u.id, 25, "late: invite opened"))
        .await
        .expect("append_event");
    s.append_event(&event(other.id, 35, "someone else"))
        .await
        .expect("append_event");

    let all = s.list_events(u.id, 100).await.expect("list_events");
    let messages: Vec<&str> = all.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "copy started",
            "credentials saved",
            "late: invite opened",
            "invite sent",
            "created"
        ],
        "newest first by time, only this user's"
    );
    assert_eq!(
        all[0],
        event(u.id, 40, "copy started"),
        "event read back field for field"
    );
    let newest = s.list_events(u.id, 2).await.expect("list_events");
    assert_eq!(newest, all[..2].to_vec(), "limit keeps the newest");
}

async fn folders_roundtrip(s: Arc<dyn Store>) {
    let (p, u) = seeded_user(s.as_ref(), "paul@source.example").await;
    let other = user(
        p.id,
        "quinn@source.example",
        "quinn@target.example",
        "Quinn",
        UserState::New,
    );
    s.insert_user(&other).await.expect("insert_user");
    assert!(
        s.list_folders(u.id).await.expect("list_folders").is_empty(),
        "no folders yet"
    );
    assert_eq!(
        s.get_folder(u.id, "INBOX").await.expect("get_folder"),
        None,
        "absent"
    );

    // Names with separators, spaces, non-ASCII and key-like characters.
    let names = [
        "INBOX",
        "INBOX/Sub folder",
        "Entwürfe",
        "Archive#2024",
        "a.b.c",
    ];
    let mut want = Vec::new();
    for name in names {
        let f = folder(u.id, name);
        s.put_folder(&f, None).await.expect("insert folder");
        want.push(f);
    }
    s.put_folder(&folder(other.id, "INBOX"), None)
        .await
        .expect("the same name for another user");
    assert_eq!(
        s.get_folder(u.id, "Entwürfe").await.expect("get_folder"),
        Some(want[2].clone()),
        "read back"
    );
    assert_exists(
        s.put_folder(&folder(u.id, "INBOX"), None).await,
        "inserting a folder that exists",
    );
    assert_eq!(
        s.get_folder(u.id, "INBOX").await.expect("get_folder"),
        Some(want[0].clone()),
        "refused insert changes nothing"
    );

    let mut v2 = want[0].clone();
    v2.last_uid = 99;
    v2.in_flight = None;
    v2.copied_messages = 99;
    v2.done = true;
    v2.lease_owner = None;
    v2.lease_until = None;
    v2.target_messages = Some(100);
    v2.version = 2;
    s.put_folder(&v2, Some(1))
        .await
        .expect("update from version 1");
    assert_eq!(
        s.get_folder(u.id, "INBOX").await.expect("get_folder"),
        Some(v2.clone()),
        "updated"
    );
    let mut stale = want[0].clone();
    stale.last_uid = 1;
    stale.version = 2;
    assert_conflict(
        s.put_folder(&stale, Some(1)).await,
        "update with a stale expected version",
    );
    assert_eq!(
        s.get_folder(u.id, "INBOX").await.expect("get_folder"),
        Some(v2.clone()),
        "a conflict changes nothing"
    );
    let mut ghost = folder(u.id, "Never inserted");
    ghost.version = 2;
    assert_conflict(
        s.put_folder(&ghost, Some(1)).await,
        "update of a folder that does not exist",
    );
    assert_eq!(
        s.get_folder(u.id, "Never inserted")
            .await
            .expect("get_folder"),
        None,
        "a failed update creates nothing"
    );

    want[0] = v2;
    let mut got = s.list_folders(u.id).await.expect("list_folders");
    got.sort_by(|a, b| a.source_name.cmp(&b.source_name));
    want.sort_by(|a, b| a.source_name.cmp(&b.source_name));
    assert_eq!(
        got, want,
        "all of this user's folders, nothing of the other user"
    );
}

async fn folder_details(s: Arc<dyn Store>) {
    let (_, u) = seeded_user(s.as_ref(), "rita@source.example").await;
    // Folder names whose keys could run into each other if built carelessly.
    let (a, b, c) = ("A", "A#1", "Ärchiv/2024");
    s.put_folder(&folder(u.id, a), None)
        .await
        .expect("put_folder");
    let item = |uid: u32, reason: &str| SkippedItem {
        uid,
        size: u64::from(uid) * 10,
        reason: reason.into(),
        cause: contract::SkipCause::TargetRefused,
    };
    let many: Vec<SkippedItem> = (1..=60).map(|uid| item(uid * 3, "refused")).collect();
    s.put_skipped(u.id, a, &many).await.expect("put_skipped");
    s.put_skipped(u.id, b, &[item(1, "other folder")])
        .await
        .expect("put_skipped");
    s.put_skipped(u.id, a, &[item(6, "replaced")])
        .await
        .expect("replace one");

    // Paged by UID, per folder, the replaced item in place.
    let first = s.list_skipped(u.id, a, 0, 25).await.expect("list_skipped");
    assert_eq!(first.len(), 25);
    assert_eq!(first[0], item(3, "refused"));
    assert_eq!(first[1], item(6, "replaced"));
    let mut all = first.clone();
    let mut after = first.last().unwrap().uid;
    loop {
        let page = s.list_skipped(u.id, a, after, 25).await.expect("page");
        let Some(last) = page.last() else { break };
        after = last.uid;
        all.extend(page);
    }
    assert_eq!(all.len(), 60, "every item once, in pages");
    assert!(all.windows(2).all(|w| w[0].uid < w[1].uid), "by UID");
    assert_eq!(
        s.list_skipped(u.id, b, 0, 100).await.expect("list"),
        vec![item(1, "other folder")]
    );
    assert!(
        s.list_skipped(u.id, c, 0, 100)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        s.list_skipped(u.id, a, u32::MAX, 100)
            .await
            .expect("list")
            .is_empty()
    );

    // Copy-map pages: replace, list in page order, per folder.
    s.put_copy_page(u.id, a, 1, &[[100, 5, 3]])
        .await
        .expect("page 1");
    s.put_copy_page(u.id, a, 0, &[[1, 1, 40], [45, 41, 2]])
        .await
        .expect("page 0");
    s.put_copy_page(u.id, a, 1, &[[100, 5, 4]])
        .await
        .expect("replace 1");
    s.put_copy_page(u.id, b, 0, &[[7, 7, 1]])
        .await
        .expect("other folder");
    assert_eq!(
        s.list_copy_pages(u.id, a).await.expect("pages"),
        vec![(0, vec![[1, 1, 40], [45, 41, 2]]), (1, vec![[100, 5, 4]])]
    );

    // Clearing is per folder; the checkpoints are untouched.
    s.clear_skipped(u.id, a).await.expect("clear_skipped");
    s.clear_copy_pages(u.id, a).await.expect("clear_copy_pages");
    assert!(
        s.list_skipped(u.id, a, 0, 100)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(s.list_copy_pages(u.id, a).await.expect("pages").is_empty());
    assert_eq!(
        s.list_skipped(u.id, b, 0, 100).await.expect("list").len(),
        1
    );
    assert_eq!(s.list_copy_pages(u.id, b).await.expect("pages").len(), 1);
    assert_eq!(
        s.list_folders(u.id).await.expect("list_folders").len(),
        1,
        "details are not folders"
    );

    // Deleting the user deletes them.
    s.delete_user(u.id).await.expect("delete_user");
    assert!(
        s.list_skipped(u.id, b, 0, 100)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(s.list_copy_pages(u.id, b).await.expect("pages").is_empty());
}
