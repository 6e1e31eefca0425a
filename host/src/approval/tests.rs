//! Requests asked, decided, used and expired, each move checked against the store.

use super::*;
use crate::state::memory::MemoryStore;

fn transfer(amount: u64) -> String {
    format!(r#"{{"to": "ACME", "amount": {amount}}}"#)
}

fn asking(arguments: &str) -> Ask<'_> {
    Ask {
        server: "bank",
        tool: "transfer",
        caller: "agent",
        arguments,
        rule: "tools.transfer.rules[0]",
        rule_version: "v1",
        message: "Transfer?",
        timeout_ms: 60_000,
    }
}

#[tokio::test]
async fn an_approval_lets_exactly_that_call_through_once() {
    let store = MemoryStore::new();
    let args = transfer(250);
    let Answer::Pending { approval, new } = ask(&store, &asking(&args), 1_000).await.unwrap()
    else {
        panic!("a first ask is pending")
    };
    assert!(new);
    let again = ask(&store, &asking(&args), 2_000).await.unwrap();
    assert_eq!(
        again,
        Answer::Pending {
            approval: approval.clone(),
            new: false
        },
        "asking again waits on the same request"
    );
    let reordered = r#"{"amount":250,"to":"ACME"}"#;
    let other = transfer(251);
    decide(&store, &approval.id, true, "ops", "operator", 3_000)
        .await
        .unwrap();
    assert!(
        matches!(
            ask(&store, &asking(&other), 4_000).await.unwrap(),
            Answer::Pending { new: true, .. }
        ),
        "other arguments are another request"
    );
    let Answer::Granted(granted) = ask(&store, &asking(reordered), 4_000).await.unwrap() else {
        panic!("the same arguments in another key order are the same call")
    };
    assert_eq!(granted.id, approval.id);
    assert!(
        matches!(
            ask(&store, &asking(&args), 4_000).await.unwrap(),
            Answer::Granted(_)
        ),
        "granted until it is used"
    );
    assert!(consume(&store, &granted, 4_500).await.unwrap());
    assert!(
        !consume(&store, &granted, 4_600).await.unwrap(),
        "used once"
    );
    assert!(
        matches!(
            ask(&store, &asking(&args), 5_000).await.unwrap(),
            Answer::Pending { new: true, .. }
        ),
        "an approval is used once"
    );
    let err = decide(&store, &approval.id, true, "ops", "operator", 6_000)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "approval request `{}` is used, not pending: only a pending request can be decided",
            approval.id
        )
    );
}

#[tokio::test]
async fn refusals_and_timeouts_are_told_once_and_then_asked_again() {
    let store = MemoryStore::new();
    let args = transfer(500);
    let Answer::Pending { approval, .. } = ask(&store, &asking(&args), 0).await.unwrap() else {
        panic!()
    };
    decide(&store, &approval.id, false, "ops", "operator", 1)
        .await
        .unwrap();
    assert!(matches!(
        ask(&store, &asking(&args), 2).await.unwrap(),
        Answer::Denied(_)
    ));
    let Answer::Pending {
        approval,
        new: true,
    } = ask(&store, &asking(&args), 3).await.unwrap()
    else {
        panic!("after a refusal, a new request")
    };
    assert!(matches!(
        ask(&store, &asking(&args), 3 + 60_000).await.unwrap(),
        Answer::Expired(a) if a.id == approval.id
    ));
    assert!(matches!(
        decide(&store, &approval.id, true, "ops", "operator", 3 + 60_001).await,
        Err(DecideError::NotPending {
            state: "expired",
            ..
        })
    ));
    assert!(matches!(
        decide(&store, "ap-nope", true, "ops", "operator", 0).await,
        Err(DecideError::NotFound(_))
    ));
    let listed = list(&store, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, approval.id, "newest first");
}

#[tokio::test]
async fn an_approval_not_used_in_time_expires() {
    let store = MemoryStore::new();
    let args = transfer(101);
    let Answer::Pending { approval, .. } = ask(&store, &asking(&args), 0).await.unwrap() else {
        panic!()
    };
    decide(&store, &approval.id, true, "ops", "operator", 50_000)
        .await
        .unwrap();
    let Answer::Granted(granted) = ask(&store, &asking(&args), 50_000 + 59_999).await.unwrap()
    else {
        panic!("usable for the timeout from the decision")
    };
    assert!(consume(&store, &granted, 50_000 + 59_999).await.unwrap());
    let Answer::Pending { approval, .. } = ask(&store, &asking(&args), 200_000).await.unwrap()
    else {
        panic!()
    };
    decide(&store, &approval.id, true, "ops", "operator", 200_001)
        .await
        .unwrap();
    assert!(matches!(
        ask(&store, &asking(&args), 200_001 + 60_000).await.unwrap(),
        Answer::Expired(_)
    ));
}
