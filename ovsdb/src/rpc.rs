//! JSON-RPC 1.0 as OVSDB speaks it (RFC 7047 §4): requests carry a
//! method, params and an id; a notification is a request whose id is
//! null; a response carries a result or an error and the id it answers.
//! On the stream, messages are JSON texts one after the other with no
//! delimiter: `Framer` cuts them out of the bytes read so far.

use serde_json::{json, Value};

/// The largest message kept whole while it arrives (a monitor's first
/// reply holds every row of the tables it asks for).
pub const MAX_MESSAGE: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a JSON-RPC message: {0}")]
    Shape(String),
    #[error("a message longer than {MAX_MESSAGE} bytes")]
    TooLong,
}

/// One JSON-RPC message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    Request {
        method: String,
        params: Vec<Value>,
        id: Value,
    },
    Notification {
        method: String,
        params: Vec<Value>,
    },
    Response {
        result: Value,
        error: Value,
        id: Value,
    },
}

impl Message {
    pub fn from_json(v: Value) -> Result<Message, RpcError> {
        let shape = || RpcError::Shape(v.to_string());
        let Value::Object(o) = &v else {
            return Err(shape());
        };
        let id = o.get("id").cloned().unwrap_or(Value::Null);
        if let Some(method) = o.get("method") {
            let method = method.as_str().ok_or_else(shape)?.to_string();
            let params = match o.get("params") {
                Some(Value::Array(p)) => p.clone(),
                _ => return Err(shape()),
            };
            return Ok(if id.is_null() {
                Message::Notification { method, params }
            } else {
                Message::Request { method, params, id }
            });
        }
        let (result, error) = (o.get("result"), o.get("error"));
        if (result.is_some() || error.is_some()) && o.contains_key("id") {
            return Ok(Message::Response {
                result: result.cloned().unwrap_or(Value::Null),
                error: error.cloned().unwrap_or(Value::Null),
                id,
            });
        }
        Err(shape())
    }

    pub fn to_json(&self) -> Value {
        match self {
            Message::Request { method, params, id } => {
                json!({"method": method, "params": params, "id": id})
            }
            Message::Notification { method, params } => {
                json!({"method": method, "params": params, "id": null})
            }
            Message::Response { result, error, id } => {
                json!({"result": result, "error": error, "id": id})
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }
}

/// Cuts whole JSON texts out of a stream's bytes.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message(&mut self) -> Option<Result<Message, RpcError>> {
        let start = self.buf.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else {
            self.buf.clear();
            return None;
        };
        let mut it = serde_json::Deserializer::from_slice(&self.buf[start..]).into_iter::<Value>();
        match it.next() {
            Some(Ok(v)) => {
                let used = start + it.byte_offset();
                self.buf.drain(..used);
                Some(Message::from_json(v))
            }
            Some(Err(e)) if e.is_eof() => {
                if self.buf.len() > MAX_MESSAGE {
                    self.buf.clear();
                    return Some(Err(RpcError::TooLong));
                }
                None
            }
            Some(Err(e)) => {
                // Nothing after a syntax error can be framed again.
                self.buf.clear();
                Some(Err(RpcError::Json(e)))
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_from_a_stream_in_any_pieces() {
        let msgs = [
            Message::Request {
                method: "echo".into(),
                params: vec![],
                id: json!("echo"),
            },
            Message::Notification {
                method: "update".into(),
                params: vec![json!(null), json!({"Bridge": {}})],
            },
            Message::Response {
                result: json!([{"count": 1}]),
                error: Value::Null,
                id: json!(7),
            },
        ];
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| m.to_bytes()).collect();
        for piece in [1, 3, 17, bytes.len()] {
            let mut f = Framer::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                f.push(chunk);
                while let Some(m) = f.next_message() {
                    got.push(m.expect("whole message"));
                }
            }
            assert_eq!(got, msgs, "in pieces of {piece}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        let mut f = Framer::default();
        f.push(b"{\"id\": 1, ]");
        assert!(matches!(f.next_message(), Some(Err(RpcError::Json(_)))));
        f.push(b"[1, 2]");
        assert!(matches!(f.next_message(), Some(Err(RpcError::Shape(_)))));
        assert!(f.next_message().is_none());
    }
}
