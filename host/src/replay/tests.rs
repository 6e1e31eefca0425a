//! Case files parsed strictly, and a mismatch shown as a diff.

use super::*;

#[test]
fn case_files_parse_strictly() {
    let cases = parse_cases(
        "cases:\n  - {name: a, tool: t, expect: deny, code: denied, upstream: error_result}\n",
    )
    .unwrap();
    assert_eq!(cases[0].upstream, ServerOutcome::ErrorResult);
    assert!(parse_cases("cases:\n  - {name: a, tool: t, expect: maybe}\n").is_err());
    assert!(parse_cases("cases:\n  - {name: a, tool: t, expect: allow, typo: 1}\n").is_err());
    assert!(
        parse_cases("cases:\n  - {name: a, tool: t, expect: allow, code: x}\n")
            .unwrap_err()
            .contains("go with `expect: deny`")
    );
}

#[test]
fn a_mismatch_renders_a_diff() {
    let outcome = Outcome {
        case: parse_cases("cases:\n  - {name: limit, tool: t, expect: deny, code: rate_limited}\n")
            .unwrap()
            .remove(0),
        actual: Actual {
            decision: Expect::Allow,
            code: None,
            reason: None,
            rule: None,
            result: None,
            asked: false,
        },
    };
    assert!(!outcome.passed());
    let text = outcome.render(0);
    assert!(text.starts_with("✗ 1. limit"), "{text}");
    assert!(text.contains("- expected: deny") && text.contains("+ actual:   allow"));
    assert!(text.contains("- expected: rate_limited") && text.contains("+ actual:   (none)"));
}
