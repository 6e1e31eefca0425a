//! Reading envelopes, params, progress tokens and recipients; denial codes.

#[test]
fn a_progress_token_is_read_where_params_can_hold_one() {
    let token = |text: &str| {
        let raw = RawValue::from_string(text.to_string()).unwrap();
        progress_token(Some(&raw))
    };
    assert_eq!(
        token(r#"{"_meta":{"progressToken":7},"name":"x"}"#).as_deref(),
        Some("7")
    );
    assert_eq!(
        token(r#"{"_meta":{"progressToken":"p-1"}}"#).as_deref(),
        Some(r#""p-1""#)
    );
    assert_eq!(token(r#"{"name":"x","arguments":{}}"#), None);
    assert_eq!(
        token(r#"{"_meta":{"progress\u0054oken":3}}"#).as_deref(),
        Some("3"),
        "an escaped key is still the key"
    );
    assert_eq!(progress_token(None), None);
}

#[test]
fn denial_codes_map_in_the_sdks_order_and_unknown_ones_to_the_generic_server_error() {
    assert_eq!(codes::of_denial("denied"), -32001);
    assert_eq!(codes::of_denial("rate_limited"), -32002);
    assert_eq!(codes::of_denial("approval_state_invalid"), -32011);
    assert_eq!(codes::of_denial("path_not_allowed"), codes::OTHER_DENIAL);
}

use super::*;

#[test]
fn envelopes_are_classified_without_touching_the_rest() {
    let Ok(Parsed::Single(e)) = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","arguments":{"a":1}}}"#) else {
            panic!()
        };
    assert_eq!(
        (e.kind(), e.id_text(), e.method.as_deref()),
        (Kind::Request, "7", Some("tools/call"))
    );
    let p = call_params(e.params).unwrap();
    assert_eq!(
        (p.name.as_str(), p.arguments.unwrap().get()),
        ("x", r#"{"a":1}"#)
    );
    let Ok(Parsed::Single(n)) =
        parse(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#)
    else {
        panic!()
    };
    assert_eq!(n.kind(), Kind::Notification);
    let Ok(Parsed::Single(r)) = parse(br#"{"jsonrpc":"2.0","id":"a","result":{"x":[1,2]}}"#) else {
        panic!()
    };
    assert_eq!((r.kind(), r.id_text()), (Kind::Response, r#""a""#));
}

#[test]
fn bad_input_gets_the_right_error_code() {
    assert_eq!(parse(b"not json").err().unwrap().0, codes::PARSE_ERROR);
    assert_eq!(parse(b"\xff\xfe").err().unwrap().0, codes::PARSE_ERROR);
    assert_eq!(parse(b"[]").err().unwrap().0, codes::INVALID_REQUEST);
    assert_eq!(
        parse(br#"{"id": {"a": 1}, "method": 5}"#).err().unwrap().0,
        codes::INVALID_REQUEST
    );
    let Ok(Parsed::Batch(items)) = parse(br#"[{"id":1},{"id":2}]"#) else {
        panic!()
    };
    assert_eq!(items.len(), 2);
}

#[test]
fn param_facts_read_the_target_and_revision_and_nothing_else() {
    let raw = |s: &'static str| Some(serde_json::from_str::<&RawValue>(s).unwrap());
    let f = ParamFacts::of(raw(
        r#"{"name":"send","arguments":{"big":[1,2,3]},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#,
    ));
    assert_eq!(f.target(Some("tools/call")), Some("send"));
    assert_eq!(f.target(Some("tools/list")), None);
    assert_eq!(f.revision(), Some("2026-07-28"));
    let f = ParamFacts::of(raw(r#"{"uri":"file:///a","name":7}"#));
    assert_eq!(f.target(Some("resources/read")), Some("file:///a"));
    assert_eq!(f.target(Some("tools/call")), None);
    assert_eq!(f.revision(), None);
    assert_eq!(ParamFacts::of(raw("[1]")).revision(), None);
    assert_eq!(ParamFacts::of(None).target(Some("tools/call")), None);
}

#[test]
fn call_params_must_name_a_tool_and_have_object_arguments() {
    let raw = |s: &'static str| Some(serde_json::from_str::<&RawValue>(s).unwrap());
    assert!(call_params(None).unwrap_err().contains("needs params"));
    assert!(call_params(raw(r#"{"arguments":{}}"#))
        .unwrap_err()
        .contains("missing field `name`"));
    assert_eq!(
        call_params(raw(r#"{"name":"x","arguments":[1]}"#)).unwrap_err(),
        "Invalid params: `arguments` must be an object, got [1]"
    );
    assert!(call_params(raw(r#"{"name":"x","arguments":null}"#)).is_ok());
    assert!(call_params(raw(r#""just a string""#)).is_err());
}

#[test]
fn a_server_message_names_the_request_it_answers_or_is_about() {
    let read = |m: &str| Recipient::read(m.as_bytes());
    assert_eq!(
        read(r#"{"jsonrpc":"2.0","id":"a-1","result":{}}"#)
            .answers
            .as_deref(),
        Some(r#""a-1""#)
    );
    assert_eq!(
        read(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}"#
        ),
        Recipient {
            progress: Some("7".into()),
            ..Recipient::default()
        }
    );
    // A token elsewhere than on a progress notification routes nothing.
    assert_eq!(
        read(r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"progressToken":7}}"#),
        Recipient::default()
    );
    assert_eq!(
        read(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":3}}}"#)
            .subscription
            .as_deref(),
        Some("3")
    );
    assert_eq!(
        read(r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#),
        Recipient::default()
    );
    assert_eq!(read("not json"), Recipient::default());
}
