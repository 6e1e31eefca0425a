//! The JSON-RPC envelope, and nothing more: Tollgate reads `jsonrpc`, `id`, `method`, `params`
//! (for `tools/call`: `name`, `arguments`, `_meta`) and `result`/`error`, borrowing from the
//! original bytes so everything it does not change is forwarded exactly as it came.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// JSON-RPC error codes Tollgate answers with.
pub mod codes {
    /// Not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a valid request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Bad parameters (and unknown / hidden tools, as MCP servers answer them).
    pub const INVALID_PARAMS: i64 = -32602;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// A routing header that disagrees with the body (2026-07-28).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The request needs a client capability it did not declare (2026-07-28).
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// A protocol revision the server does not serve (2026-07-28).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// Tollgate (or the link to the server) failed while handling the request.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A denial whose code Tollgate does not know (a plugin's own word), in the range's generic
    /// server error; the denial's own code still reaches the agent in the error's `data`.
    pub const OTHER_DENIAL: i64 = -32000;

    /// Internal: the message with which Tollgate tells a session that a question it asked the
    /// client went unanswered until its request expired (never sent to a peer).
    pub const QUESTION_UNANSWERED: i64 = -32099;

    /// The JSON-RPC code of a denial answered as an error (`deny_as: error`): the known codes
    /// of [`tollgate_sdk::codes::ALL`] are `-32001`, `-32002`, … in that order; any other code
    /// is [`OTHER_DENIAL`].
    pub fn of_denial(code: &str) -> i64 {
        match tollgate_sdk::codes::ALL.iter().position(|c| *c == code) {
            Some(i) => -32001 - i as i64,
            None => OTHER_DENIAL,
        }
    }
}

/// One message's envelope, borrowed from its bytes.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    /// Must be `"2.0"`.
    #[serde(default, borrow)]
    pub jsonrpc: Option<std::borrow::Cow<'a, str>>,
    /// Request or response id, as its original JSON text.
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    /// Method of a request or notification.
    #[serde(default, borrow)]
    pub method: Option<std::borrow::Cow<'a, str>>,
    /// Parameters, untouched.
    #[serde(default, borrow)]
    pub params: Option<&'a RawValue>,
    /// A response's result, untouched.
    #[serde(default, borrow)]
    pub result: Option<&'a RawValue>,
    /// A response's error, untouched.
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

/// What kind of message an envelope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and `id`.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `id` and `result` or `error`.
    Response,
    /// None of the above.
    Invalid,
}

impl Envelope<'_> {
    /// Classify the message.
    pub fn kind(&self) -> Kind {
        match (
            &self.method,
            &self.id,
            self.result.is_some() || self.error.is_some(),
        ) {
            (Some(_), Some(_), _) => Kind::Request,
            (Some(_), None, _) => Kind::Notification,
            (None, Some(_), true) => Kind::Response,
            _ => Kind::Invalid,
        }
    }

    /// The id's JSON text, `null` when absent.
    pub fn id_text(&self) -> &str {
        self.id.map(RawValue::get).unwrap_or("null")
    }
}

/// A message line: one envelope, or a batch of raw elements.
pub enum Parsed<'a> {
    /// A single message.
    Single(Envelope<'a>),
    /// A JSON array (2025-03-26 batches): its raw elements.
    Batch(Vec<&'a RawValue>),
}

impl<'a> Parsed<'a> {
    /// Every envelope of the message: the single one, or each batch element that is one, in
    /// order. Elements that are not are skipped: where they matter (the agent's batches), the
    /// session answers each with its own error instead.
    pub fn envelopes(self) -> impl Iterator<Item = Envelope<'a>> {
        let (single, items) = match self {
            Parsed::Single(env) => (Some(env), Vec::new()),
            Parsed::Batch(items) => (None, items),
        };
        let elements = items
            .into_iter()
            .filter_map(|item| serde_json::from_str::<Envelope>(item.get()).ok());
        single.into_iter().chain(elements)
    }
}

/// Parse a line. `Err` carries the JSON-RPC error code and message to answer with.
pub fn parse(bytes: &[u8]) -> Result<Parsed<'_>, (i64, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        (
            codes::PARSE_ERROR,
            format!("Parse error: message is not valid UTF-8 ({e})"),
        )
    })?;
    let first = text.trim_start().as_bytes().first().copied();
    if first == Some(b'[') {
        let items: Vec<&RawValue> = serde_json::from_str(text)
            .map_err(|e| (codes::PARSE_ERROR, format!("Parse error: {e}")))?;
        if items.is_empty() {
            return Err((
                codes::INVALID_REQUEST,
                "Invalid Request: empty batch".into(),
            ));
        }
        return Ok(Parsed::Batch(items));
    }
    match serde_json::from_str::<Envelope>(text) {
        Ok(env) => Ok(Parsed::Single(env)),
        Err(e) if e.is_data() => Err((codes::INVALID_REQUEST, format!("Invalid Request: {e}"))),
        Err(e) => Err((codes::PARSE_ERROR, format!("Parse error: {e}"))),
    }
}

/// `tools/call` parameters as far as policy needs them.
#[derive(Debug, Deserialize)]
pub struct CallParams<'a> {
    /// The tool.
    pub name: String,
    /// The arguments, untouched (absent or `null` means `{}`).
    #[serde(default, borrow)]
    pub arguments: Option<&'a RawValue>,
    /// Request metadata.
    #[serde(default, rename = "_meta")]
    pub meta: Option<serde_json::Map<String, Value>>,
    /// A 2026-07-28 retry's echoed request state.
    #[serde(default, rename = "requestState")]
    pub request_state: Option<Value>,
    /// A 2026-07-28 retry's answers to the questions its first attempt got.
    #[serde(default, rename = "inputResponses")]
    pub input_responses: Option<serde_json::Map<String, Value>>,
}

/// Read `tools/call` params; the error says what is wrong, for a `-32602` answer.
pub fn call_params<'a>(params: Option<&'a RawValue>) -> Result<CallParams<'a>, String> {
    let raw = params.ok_or("Invalid params: tools/call needs params with a tool `name`")?;
    let p: CallParams =
        serde_json::from_str(raw.get()).map_err(|e| format!("Invalid params: {e}"))?;
    if let Some(args) = p.arguments {
        let t = args.get().trim_start();
        if !(t.starts_with('{') || t == "null") {
            return Err(format!(
                "Invalid params: `arguments` must be an object, got {}",
                args.get()
            ));
        }
    }
    Ok(p)
}

/// The `_meta` key in which 2026-07-28 requests carry their protocol revision.
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// The `_meta` key in which 2026-07-28 requests carry the client's `Implementation` (name,
/// version).
pub const CLIENT_INFO_META: &str = "io.modelcontextprotocol/clientInfo";

/// What the HTTP layers read of a request's `params`: the name its `Mcp-Name` header mirrors and
/// the revision in `_meta`. The arguments are skipped over, not built into values; each field is
/// any JSON, so one of an unexpected type spoils only itself.
#[derive(Debug, Default, Deserialize)]
pub struct ParamFacts {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    uri: Option<Value>,
    #[serde(default, rename = "_meta")]
    meta: Option<Value>,
}

impl ParamFacts {
    /// Read `params` (nothing, if they are absent or not an object).
    pub fn of(params: Option<&RawValue>) -> Self {
        params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default()
    }

    /// What `method` is about: `params.name` (tools/call, prompts/get) or `params.uri`
    /// (resources/read).
    pub fn target(&self, method: Option<&str>) -> Option<&str> {
        match method {
            Some("tools/call" | "prompts/get") => self.name.as_ref()?.as_str(),
            Some("resources/read") => self.uri.as_ref()?.as_str(),
            _ => None,
        }
    }

    /// The protocol revision of a stateless (2026-07-28) request.
    pub fn revision(&self) -> Option<&str> {
        self.meta.as_ref()?.get(PROTOCOL_VERSION_META)?.as_str()
    }
}

/// The `_meta.progressToken` a request's params ask for (as JSON text), if any: what routes the
/// server's progress notifications about it. Params that cannot hold one (no `progressToken`
/// and no `\u` escape that could spell it) are not parsed.
pub fn progress_token(params: Option<&RawValue>) -> Option<String> {
    #[derive(Deserialize)]
    struct Meta<'a> {
        #[serde(rename = "progressToken", borrow)]
        token: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct P<'a> {
        #[serde(rename = "_meta", borrow)]
        meta: Option<Meta<'a>>,
    }
    let params = params?.get();
    if !params.contains("progressToken") && !params.contains("\\u") {
        return None;
    }
    let p: P = serde_json::from_str(params).ok()?;
    p.meta?.token.map(|t| t.get().to_string())
}

/// Who a server's message is for, read where the message is parsed anyway so that the
/// transport routing it does not parse it again: the request a response answers, or the request
/// a progress or listen-stream notification is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipient {
    /// A response: the id of the request it answers (JSON text).
    pub answers: Option<String>,
    /// A `notifications/progress`: its `params.progressToken` (JSON text).
    pub progress: Option<String>,
    /// A 2026-07-28 notification's `subscriptions/listen` request id (JSON text).
    pub subscription: Option<String>,
}

impl Recipient {
    /// Read a parsed message.
    pub fn of(env: &Envelope<'_>) -> Self {
        if env.kind() == Kind::Response {
            return Recipient {
                answers: Some(env.id_text().to_string()),
                ..Recipient::default()
            };
        }
        let progress = match env.method.as_deref() {
            Some("notifications/progress") => notification_progress_token(env.params),
            _ => None,
        };
        Recipient {
            answers: None,
            progress,
            subscription: subscription_id(env.params),
        }
    }

    /// Parse `message` and read it (a batch or invalid JSON is for no one in particular).
    pub fn read(message: &[u8]) -> Self {
        match parse(message) {
            Ok(Parsed::Single(env)) => Recipient::of(&env),
            _ => Recipient::default(),
        }
    }
}

/// Where a 2026-07-28 listen-stream notification names its `subscriptions/listen` request.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A notification's `params._meta["io.modelcontextprotocol/subscriptionId"]` as JSON text.
pub fn subscription_id(params: Option<&serde_json::value::RawValue>) -> Option<String> {
    let params = params?.get();
    if !params.contains(SUBSCRIPTION_ID) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(params).ok()?;
    v.get("_meta")?
        .get(SUBSCRIPTION_ID)
        .map(|id| id.to_string())
}

/// A notification's `params.progressToken` as JSON text.
fn notification_progress_token(params: Option<&serde_json::value::RawValue>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(rename = "progressToken", borrow)]
        token: Option<&'a serde_json::value::RawValue>,
    }
    let p: P = serde_json::from_str(params?.get()).ok()?;
    p.token.map(|t| t.get().to_string())
}

/// A JSON-RPC error response line.
pub fn error_response(id: &str, code: i64, message: &str, data: Option<&Value>) -> Vec<u8> {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data.clone();
    }
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{error}}}"#).into_bytes()
}

/// A JSON-RPC result response line.
pub fn result_response(id: &str, result: &Value) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes()
}

#[cfg(test)]
mod tests;
