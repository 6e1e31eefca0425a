//! Approval asked in band: a held call released by its answer (once) or dropped when cancelled, and only Tollgate's own fields stripped from a retry.

use super::*;

fn params(text: &str) -> CallParams<'_> {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_held_call_is_released_by_its_answer_once_or_dropped_when_cancelled() {
    let questions = Questions::default();
    let question = ClientQuestion {
        approval: "ap-1".into(),
        message: "Send?".into(),
        rule: "r".into(),
        expires_ms: 0,
    };
    let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t"}}"#;
    let asked: Value = serde_json::from_slice(&questions.ask(&question, "7", call, false)).unwrap();
    assert!(
        asked["params"].get("mode").is_none(),
        "2025-06-18 has no mode"
    );
    assert!(questions.holds("7"));
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{{"action":"accept","content":{{"approve":true}}}}}}"#,
        asked["id"]
    );
    let env: Envelope = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        questions.answered(&env),
        Some((call.to_vec(), Some(ClientAnswer::Approved("ap-1".into()))))
    );
    assert_eq!(questions.answered(&env), None, "released once");
    let asked: Value = serde_json::from_slice(&questions.ask(&question, "8", call, true)).unwrap();
    let unanswered = Questions::unanswered(&questions.ask(&question, "9", call, true));
    assert_eq!(
        questions.answered(&serde_json::from_slice(&unanswered).unwrap()),
        Some((call.to_vec(), Some(ClientAnswer::TimedOut("ap-1".into()))))
    );
    assert!(questions.drop_call("8") && !questions.holds("8"));
    let late = format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{{"action":"accept"}}}}"#,
        asked["id"]
    );
    assert_eq!(
        questions.answered(&serde_json::from_str(&late).unwrap()),
        None
    );
}

#[test]
fn answers_are_read_from_the_retry_and_only_tollgates_fields_are_stripped() {
    let retry = r#"{"name":"t","requestState":"dev.tollgate/approval:ap-1","inputResponses":{"dev.tollgate/approval":{"action":"accept","content":{"approve":true}}},"_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}"#;
    let (in_band, ours) = read(&params(retry), true);
    assert!(ours && in_band.can_ask);
    assert_eq!(in_band.answer, Some(ClientAnswer::Approved("ap-1".into())));
    let line = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{retry}}}"#);
    let stripped: Value = serde_json::from_slice(&strip(line.as_bytes())).unwrap();
    assert_eq!(
        stripped["params"],
        json!({"name": "t", "_meta": {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}})
    );
    let servers = r#"{"name":"t","requestState":"server-state","inputResponses":{"k":{}}}"#;
    let (in_band, ours) = read(&params(servers), true);
    assert!(!ours && !in_band.can_ask && in_band.answer.is_none());
    for (response, answer) in [
        (
            r#"{"action":"decline"}"#,
            ClientAnswer::Declined("x".into()),
        ),
        (
            r#"{"action":"cancel"}"#,
            ClientAnswer::Cancelled("x".into()),
        ),
        (
            r#"{"action":"accept","content":{"approve":false}}"#,
            ClientAnswer::Declined("x".into()),
        ),
    ] {
        let text = format!(
            r#"{{"name":"t","requestState":"dev.tollgate/approval:x","inputResponses":{{"dev.tollgate/approval":{response}}}}}"#
        );
        assert_eq!(read(&params(&text), true).0.answer, Some(answer));
    }
}
