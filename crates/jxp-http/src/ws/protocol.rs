//! The WebSocket protocol's JSON: parsing client requests and formatting replies and pushed
//! frames. Every request gets exactly one reply; a request that cannot be understood gets an
//! `error` reply naming the problem and changes nothing.

use jxp_core::{Credentials, SubscribeError, SubscribeOk, SubscribeRequest};
use serde_json::{Map, Value, json};

/// A request the connection understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Ping,
    Auth(Credentials),
    Subscribe(SubscribeRequest),
    Unsubscribe(SubscribeRequest),
}

/// A request with its echo fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub action: String,
    pub msg_id: Value,
    pub request: Request,
}

/// Why a frame could not be turned into a request; `action`/`msg_id` are echoed when known.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest {
    pub action: Option<String>,
    pub msg_id: Option<Value>,
    pub message: String,
}

fn bad(action: Option<&str>, msg_id: Option<&Value>, message: impl Into<String>) -> BadRequest {
    BadRequest {
        action: action.map(str::to_owned),
        msg_id: msg_id.cloned(),
        message: message.into(),
    }
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Envelope, BadRequest> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| bad(None, None, format!("Unable to parse message: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(bad(None, None, "msg should be an object"));
    };
    let action = match obj.get("action") {
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err(bad(None, obj.get("msg_id"), "action must be a string")),
        None => return Err(bad(None, obj.get("msg_id"), "missing action")),
    };
    let msg_id = match obj.get("msg_id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id,
        Some(_) => {
            return Err(bad(
                Some(action),
                None,
                "msg_id must be a string or a number",
            ));
        }
        None => return Err(bad(Some(action), None, "missing msg_id")),
    };
    let empty = Map::new();
    let data = match obj.get("data") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(d)) => d,
        Some(_) => return Err(bad(Some(action), Some(msg_id), "data must be an object")),
    };
    let fail = |m: String| bad(Some(action), Some(msg_id), m);
    let request = match action {
        "ping" => Request::Ping,
        "auth" => Request::Auth(auth_credentials(data).map_err(fail)?),
        "subscribe" => Request::Subscribe(subscription(data).map_err(fail)?),
        "unsubscribe" => Request::Unsubscribe(subscription(data).map_err(fail)?),
        other => return Err(fail(format!("action {other} not implemented"))),
    };
    Ok(Envelope {
        action: action.to_owned(),
        msg_id: msg_id.clone(),
        request,
    })
}

fn string_field<'a>(data: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("data.{key} must be a string")),
    }
}

fn auth_credentials(data: &Map<String, Value>) -> Result<Credentials, String> {
    if let Some(token) = string_field(data, "token")? {
        return Ok(Credentials::Bearer(token.to_owned()));
    }
    if let Some(key) = string_field(data, "apikey")? {
        return Ok(Credentials::ApiKey(key.to_owned()));
    }
    match (
        string_field(data, "email")?,
        string_field(data, "password")?,
    ) {
        (Some(email), Some(password)) => Ok(Credentials::Basic {
            email: email.to_owned(),
            password: password.to_owned(),
        }),
        _ => Err("auth needs data.email and data.password, data.apikey or data.token".into()),
    }
}

fn subscription(data: &Map<String, Value>) -> Result<SubscribeRequest, String> {
    let model = string_field(data, "model")?
        .ok_or("data.model is required")?
        .to_owned();
    let id = string_field(data, "id")?.map(str::to_owned);
    let filter = match data.get("filter") {
        None | Some(Value::Null) => None,
        Some(f @ Value::Object(_)) => Some(f.clone()),
        Some(_) => return Err("data.filter must be an object".into()),
    };
    let since = match data.get("since") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or("data.since must be a whole number (a seq)")?,
        ),
    };
    let enter_leave = match data.get("enter_leave") {
        None | Some(Value::Null) => false,
        Some(v) => v
            .as_bool()
            .ok_or("data.enter_leave must be true or false")?,
    };
    Ok(SubscribeRequest {
        model,
        id,
        filter,
        since,
        enter_leave,
    })
}

/// `{"action", "status": "okay", "msg_id", "client_id", "result"}`.
pub fn okay(action: &str, msg_id: &Value, client_id: &str, result: Value) -> String {
    json!({ "action": action, "status": "okay", "msg_id": msg_id, "client_id": client_id, "result": result }).to_string()
}

/// `{"action"?, "status": "error", "msg_id"?, "client_id", "message"}` plus any extra fields.
pub fn error(
    action: Option<&str>,
    msg_id: Option<&Value>,
    client_id: &str,
    message: &str,
    extra: &[(&str, Value)],
) -> String {
    let mut out = Map::new();
    if let Some(a) = action {
        out.insert("action".into(), Value::String(a.to_owned()));
    }
    out.insert("status".into(), Value::String("error".into()));
    if let Some(id) = msg_id {
        out.insert("msg_id".into(), id.clone());
    }
    out.insert("client_id".into(), Value::String(client_id.to_owned()));
    out.insert("message".into(), Value::String(message.to_owned()));
    for (k, v) in extra {
        out.insert((*k).into(), v.clone());
    }
    Value::Object(out).to_string()
}

/// The reply to a subscribe.
pub fn subscribe_reply(
    msg_id: &Value,
    client_id: &str,
    req: &SubscribeRequest,
    result: Result<SubscribeOk, SubscribeError>,
) -> String {
    match result {
        Ok(SubscribeOk::Subscribed) => {
            let what = match &req.id {
                Some(id) => format!("{}/{id}", req.model),
                None => req.model.clone(),
            };
            okay(
                "subscribe",
                msg_id,
                client_id,
                Value::String(format!("Subscribed to {what}")),
            )
        }
        Ok(SubscribeOk::AlreadySubscribed) => okay(
            "subscribe",
            msg_id,
            client_id,
            Value::String("Already subscribed".into()),
        ),
        Err(SubscribeError::ResyncRequired { oldest, latest }) => error(
            Some("subscribe"),
            Some(msg_id),
            client_id,
            "resync required",
            &[
                ("oldest", Value::from(oldest)),
                ("latest", Value::from(latest)),
            ],
        ),
        Err(e) => error(
            Some("subscribe"),
            Some(msg_id),
            client_id,
            &e.to_string(),
            &[],
        ),
    }
}

/// A pushed event is `EVENT_PREFIX`, the client id, `EVENT_MID`, the event body and
/// `EVENT_SUFFIX`: `{"client_id": …, "data": <event body>}`. The writer sends the pieces as
/// they are, so the body serialised once by the hub is neither parsed nor copied again.
pub const EVENT_PREFIX: &str = "{\"client_id\":\"";
pub const EVENT_MID: &str = "\",\"data\":";
pub const EVENT_SUFFIX: &str = "}";

/// A pushed event as one string (the writer sends the same pieces without joining them).
#[cfg(test)]
pub fn event_frame(client_id: &str, body: &str) -> String {
    [EVENT_PREFIX, client_id, EVENT_MID, body, EVENT_SUFFIX].concat()
}

/// `{"client_id", "data": {"event": "deauth", "reason"}}`.
pub fn deauth_frame(client_id: &str, reason: &str) -> String {
    json!({ "client_id": client_id, "data": { "event": "deauth", "reason": reason } }).to_string()
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let e = parse(r#"{"action":"ping","msg_id":1}"#).unwrap();
        assert_eq!(
            (e.action.as_str(), e.msg_id.clone(), e.request),
            ("ping", json!(1), Request::Ping)
        );
        let e = parse(r#"{"action":"auth","msg_id":"a","data":{"apikey":"k"}}"#).unwrap();
        assert_eq!(e.request, Request::Auth(Credentials::ApiKey("k".into())));
        let e = parse(r#"{"action":"subscribe","msg_id":"s","data":{"model":"test","id":"x","filter":{"n":1},"since":4}}"#).unwrap();
        assert_eq!(
            e.request,
            Request::Subscribe(SubscribeRequest {
                model: "test".into(),
                id: Some("x".into()),
                filter: Some(json!({"n":1})),
                since: Some(4),
                enter_leave: false,
            })
        );
        let e = parse(
            r#"{"action":"subscribe","msg_id":"s","data":{"model":"test","enter_leave":true}}"#,
        )
        .unwrap();
        assert_eq!(
            e.request,
            Request::Subscribe(SubscribeRequest {
                model: "test".into(),
                id: None,
                filter: None,
                since: None,
                enter_leave: true,
            })
        );
    }

    #[test]
    fn rejects_bad_frames_with_a_reason() {
        let cases = [
            ("not json", "Unable to parse message"),
            ("[1]", "msg should be an object"),
            (r#"{"msg_id":1}"#, "missing action"),
            (r#"{"action":"ping"}"#, "missing msg_id"),
            (r#"{"action":"ping","msg_id":{}}"#, "msg_id must be"),
            (
                r#"{"action":"fly","msg_id":1}"#,
                "action fly not implemented",
            ),
            (
                r#"{"action":"auth","msg_id":1,"data":[]}"#,
                "data must be an object",
            ),
            (
                r#"{"action":"auth","msg_id":1,"data":{"email":"a"}}"#,
                "auth needs",
            ),
            (
                r#"{"action":"subscribe","msg_id":1,"data":{}}"#,
                "data.model is required",
            ),
            (
                r#"{"action":"subscribe","msg_id":1,"data":{"model":5}}"#,
                "data.model must be a string",
            ),
            (
                r#"{"action":"subscribe","msg_id":1,"data":{"model":"t","filter":"x"}}"#,
                "data.filter must be an object",
            ),
            (
                r#"{"action":"subscribe","msg_id":1,"data":{"model":"t","since":-1}}"#,
                "data.since must be",
            ),
            (
                r#"{"action":"subscribe","msg_id":1,"data":{"model":"t","enter_leave":1}}"#,
                "data.enter_leave must be",
            ),
        ];
        for (frame, needle) in cases {
            let err = parse(frame).unwrap_err();
            assert!(err.message.contains(needle), "{frame}: {}", err.message);
        }
    }

    #[test]
    fn frames() {
        assert_eq!(
            event_frame("c1", r#"{"event":"post"}"#),
            r#"{"client_id":"c1","data":{"event":"post"}}"#
        );
        let v: Value = serde_json::from_str(&deauth_frame("c1", "token revoked")).unwrap();
        assert_eq!(v["data"]["event"], "deauth");
    }
}
