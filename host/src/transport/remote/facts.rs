//! What a message sent to a remote server needs to know about itself: the request ids it
//! expects answers for, whether it opens or confirms the session, and the headers a 2026-07-28
//! request mirrors from its body (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`).

use crate::jsonrpc::{self, Envelope, Kind, Parsed};
use hyper::header::HeaderValue;

/// The negotiated revision's header.
pub(super) const VERSION: &str = "mcp-protocol-version";

/// What the client needs to know about a message it sends.
pub(super) struct Facts {
    pub(super) ids: Vec<String>,
    pub(super) initialize: bool,
    pub(super) initialized_notification: bool,
    /// `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version` for a 2026-07-28 request.
    pub(super) mirrored: Vec<(&'static str, String)>,
}

impl Facts {
    pub(super) fn of(message: &[u8]) -> Facts {
        let mut f = Facts {
            ids: Vec::new(),
            initialize: false,
            initialized_notification: false,
            mirrored: Vec::new(),
        };
        if let Ok(parsed) = jsonrpc::parse(message) {
            let single = matches!(parsed, Parsed::Single(_));
            for env in parsed.envelopes() {
                f.note(&env, single);
            }
        }
        f
    }

    fn note(&mut self, env: &Envelope<'_>, single: bool) {
        let method = env.method.as_deref();
        match env.kind() {
            Kind::Request => {
                self.ids.push(env.id_text().to_string());
                self.initialize |= method == Some("initialize");
            }
            Kind::Notification => {
                self.initialized_notification |= method == Some("notifications/initialized")
            }
            _ => {}
        }
        if !single {
            return;
        }
        let facts = jsonrpc::ParamFacts::of(env.params);
        let (Some(revision), Some(method)) = (facts.revision(), method) else {
            return;
        };
        self.mirrored.push((VERSION, revision.to_string()));
        self.mirrored.push(("mcp-method", method.to_string()));
        if let Some(name) = facts.target(Some(method)) {
            self.mirrored.push(("mcp-name", header_safe(name)));
        }
    }

    pub(super) fn mirror(&self, headers: &mut hyper::HeaderMap) {
        for (k, v) in &self.mirrored {
            if let Ok(v) = HeaderValue::try_from(v.as_str()) {
                headers.insert(*k, v);
            }
        }
    }
}

/// A header value as MCP clients write it: plain printable ASCII verbatim, anything else in the
/// `=?base64?…?=` form.
fn header_safe(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !value.starts_with("=?base64?");
    if plain {
        return value.to_string();
    }
    use base64::Engine;
    format!(
        "=?base64?{}?=",
        base64::engine::general_purpose::STANDARD.encode(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateless_requests_mirror_their_body_in_headers() {
        let f = Facts::of(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"send_message","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#);
        assert_eq!(f.ids, ["3"]);
        assert_eq!(
            f.mirrored,
            [
                (VERSION, "2026-07-28".to_string()),
                ("mcp-method", "tools/call".to_string()),
                ("mcp-name", "send_message".to_string())
            ]
        );
        assert_eq!(header_safe("naïve"), "=?base64?bmHDr3Zl?=");
    }
}
