//! `GET /api/v1/admin/accounts` and `…/{id}`: the back office's account directory, every
//! role, with filters; admins only.
use domain::{
    account::{AccountEvent, Role},
    ids::AccountId,
};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    helpers::{TestApp, assert_problem, at},
    shop::{account_stream, registered},
};

crate::backend_tests!(
    admins_find_accounts_by_role_state_and_name,
    the_directory_is_for_admins_and_refuses_bad_parameters,
);

const ACCOUNTS: &str = "/api/v1/admin/accounts";

struct People {
    ann: AccountId,
    bob: AccountId,
    ops: AccountId,
}

/// Two customers (Ann, then Bob, who is locked) and a staff member, registered in that
/// order.
async fn people(app: &TestApp) -> People {
    let id = || AccountId::new(Uuid::now_v7());
    let people = People {
        ann: id(),
        bob: id(),
        ops: id(),
    };
    app.append(
        &account_stream(people.ann),
        &[registered(people.ann, 1, 100)],
    )
    .await;
    let locked = AccountEvent::AccountLocked {
        reason: "chargeback".into(),
        at: at(300),
    };
    app.append(
        &account_stream(people.bob),
        &[registered(people.bob, 2, 200), locked],
    )
    .await;
    let staff = AccountEvent::AccountRegistered {
        id: people.ops,
        role: Role::Staff,
        username: "ops.lead".into(),
        name: "Grace Hopper".into(),
        email: None,
        mobile_number: None,
        gender: None,
        password_hash: "$argon2id$not-a-real-hash".into(),
        registered_at: at(400),
    };
    app.append(&account_stream(people.ops), &[staff]).await;
    app.caught_up().await;
    people
}

async fn list(app: &TestApp, query: &str) -> Value {
    let response = app
        .get_as(&format!("{ACCOUNTS}?{query}"), &app.token(Role::Admin))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn admins_find_accounts_by_role_state_and_name(app: TestApp) {
    let p = people(&app).await;
    let (ann, bob, ops) = (p.ann.to_string(), p.bob.to_string(), p.ops.to_string());
    let (ann, bob, ops) = (ann.as_str(), bob.as_str(), ops.as_str());

    let all = list(&app, "").await;
    assert_eq!(ids(&all), [ops, bob, ann], "newest first: {all}");
    assert_eq!(
        (
            all["total"].as_u64(),
            all["page"].as_u64(),
            all["pageSize"].as_u64()
        ),
        (Some(3), Some(1), Some(20))
    );
    let staff = &all["items"][0];
    assert_eq!(staff["role"], "STAFF");
    assert_eq!(staff["username"], "ops.lead");
    assert_eq!(staff["email"], Value::Null);
    assert_eq!(all["items"][1]["locked"], true);
    assert_eq!(
        all["items"][1]["registeredAt"],
        "2025-06-15T15:10:00.000000Z"
    );
    assert_eq!(all["items"][1]["updatedAt"], "2025-06-15T15:11:40.000000Z");
    assert_eq!(all["items"][2]["locked"], false);
    assert_eq!(all["items"][2]["mobileNumber"], "+491700000001");

    assert_eq!(ids(&list(&app, "role=CUSTOMER").await), [bob, ann]);
    assert_eq!(ids(&list(&app, "role=STAFF").await), [ops]);
    assert_eq!(ids(&list(&app, "role=ADMIN").await), Vec::<String>::new());
    assert_eq!(ids(&list(&app, "locked=true").await), [bob]);
    assert_eq!(ids(&list(&app, "locked=false&role=CUSTOMER").await), [ann]);
    // Any part of the name, username, e-mail address or mobile number, any case.
    assert_eq!(ids(&list(&app, "q=SHOPPER2").await), [bob]);
    assert_eq!(ids(&list(&app, "q=grace").await), [ops]);
    assert_eq!(ids(&list(&app, "q=ops.").await), [ops]);
    assert_eq!(ids(&list(&app, "q=%2B4917").await), [bob, ann]);
    assert_eq!(
        ids(&list(&app, "q=example.com&role=CUSTOMER").await),
        [bob, ann]
    );
    // LIKE's wildcards are letters like any other.
    assert_eq!(list(&app, "q=%25").await["total"], 0);
    assert_eq!(list(&app, "q=shopper_").await["total"], 0);
    // Pages.
    let second = list(&app, "pageSize=1&page=2").await;
    assert_eq!(ids(&second), [bob]);
    assert_eq!(second["total"], 3);
    assert_eq!(list(&app, "page=9").await["items"], Value::Array(vec![]));

    let one: Value = app
        .get_as(&format!("{ACCOUNTS}/{bob}"), &app.token(Role::Admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one, all["items"][1]);
    for unknown in [Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        let response = app
            .get_as(&format!("{ACCOUNTS}/{unknown}"), &app.token(Role::Admin))
            .await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

async fn the_directory_is_for_admins_and_refuses_bad_parameters(app: TestApp) {
    let p = people(&app).await;
    for path in [ACCOUNTS.to_owned(), format!("{ACCOUNTS}/{}", p.ann)] {
        for role in [Role::Staff, Role::Customer] {
            let response = app.get_as(&path, &app.token(role)).await;
            assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
        assert_problem(
            app.get(&path).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    for bad in [
        "role=customer",
        "locked=1",
        "q=",
        "pageSize=500",
        "page=0",
        "sort=name",
        "q=a&q=b",
    ] {
        let response = app
            .get_as(&format!("{ACCOUNTS}?{bad}"), &app.token(Role::Admin))
            .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
}
