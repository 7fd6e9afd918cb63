//! The customers projection's rows after a known history; the password hash is never
//! stored.
use std::sync::Arc;

use domain::account::{AccountEvent, Gender, Role};
use projector::CustomersProjection;

use crate::support::{Db, account, account_stream, at, registered, run_to_head};

crate::backend_tests!(customer_rows_after_a_known_history);

async fn customer_rows_after_a_known_history(db: Db) {
    let (ann, staff) = (account(1), account(4));
    db.append(
        &account_stream(ann),
        &[
            registered(1, Role::Customer, at(0)),
            AccountEvent::CustomerProfileUpdated {
                name: Some("Ann Smith".into()),
                gender: None,
                at: at(10),
            },
            AccountEvent::PasswordChanged {
                password_hash: "$argon2id$secret-new-hash".into(),
                at: at(20),
            },
        ],
    )
    .await;
    db.append(&account_stream(staff), &[registered(4, Role::Staff, at(5))])
        .await;
    db.append(
        &account_stream(ann),
        &[
            AccountEvent::AccountLocked {
                reason: "fraud check".into(),
                at: at(30),
            },
            AccountEvent::CustomerProfileUpdated {
                name: None,
                gender: Some(Gender::Other),
                at: at(40),
            },
        ],
    )
    .await;
    db.append(
        &account_stream(staff),
        &[
            AccountEvent::AccountLocked {
                reason: "left".into(),
                at: at(50),
            },
            AccountEvent::AccountUnlocked { at: at(60) },
        ],
    )
    .await;

    run_to_head(&db, Arc::new(CustomersProjection), 3).await;
    let dump = db.dump("customers").await;
    let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
    let mut expected = vec![
        row(&[
            &ann.to_string(),
            "CUSTOMER",
            "user1@example.com",
            "Ann Smith",
            "user1@example.com",
            "+49150000001",
            "OTHER",
            "1",
            "2025-06-15T15:06:40.123456Z",
            "2025-06-15T15:07:20.123456Z",
        ]),
        row(&[
            &staff.to_string(),
            "STAFF",
            "user4@example.com",
            "Person 4",
            "NULL",
            "NULL",
            "NULL",
            "0",
            "2025-06-15T15:06:45.123456Z",
            "2025-06-15T15:07:40.123456Z",
        ]),
    ];
    expected.sort();
    assert_eq!(dump["rm_customers"], expected);
    let everything = format!("{dump:?}");
    assert!(
        !everything.contains("argon2"),
        "no password hash is stored: {everything}"
    );
}
