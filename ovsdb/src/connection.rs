//! A blocking connection to an OVSDB server: requests with their
//! responses, the server's notifications queued in order, and its echo
//! probes answered (RFC 7047 §4.1.11) whatever the caller is waiting for.
//!
//! Owner: one thread; nothing here is shared.

use crate::rpc::{Framer, Message, RpcError};
use crate::stream::{BadTarget, Stream, Target};
use crate::transaction::Operation;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("OVSDB {0}")]
    Target(#[from] BadTarget),
    #[error("{target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("OVSDB connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("OVSDB connection: {0}")]
    Rpc(#[from] RpcError),
    #[error("OVSDB connection closed by the server")]
    Closed,
    #[error("OVSDB {method}: no answer within {0:?}", .timeout)]
    Timeout { method: String, timeout: Duration },
    #[error("OVSDB {method}: {error}")]
    Server { method: String, error: Value },
    #[error("OVSDB transaction, operation {index}: {error}")]
    Transaction { index: usize, error: Value },
}

pub struct Connection {
    stream: Stream,
    framer: Framer,
    next_id: u64,
    notifications: VecDeque<Message>,
    /// How long a request waits for its response.
    pub timeout: Duration,
}

impl Connection {
    pub fn open(target: &Target) -> Result<Connection, ConnectionError> {
        let connect = |source| ConnectionError::Connect {
            target: target.to_string(),
            source,
        };
        let stream = target.connect().map_err(connect)?;
        Ok(Connection {
            stream,
            framer: Framer::default(),
            next_id: 1,
            notifications: VecDeque::new(),
            timeout: Duration::from_secs(30),
        })
    }

    fn send(&mut self, m: &Message) -> Result<(), ConnectionError> {
        self.stream.write_all(&m.to_bytes())?;
        Ok(())
    }

    /// The next message from the server within `wait` (None: none came);
    /// echo requests are answered here and not returned.
    fn receive(&mut self, wait: Duration) -> Result<Option<Message>, ConnectionError> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(m) = self.framer.next_message() {
                match m? {
                    Message::Request { method, params, id } if method == "echo" => {
                        self.send(&Message::Response {
                            result: Value::Array(params),
                            error: Value::Null,
                            id,
                        })?;
                    }
                    m => return Ok(Some(m)),
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut buf = [0u8; 64 * 1024];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(ConnectionError::Closed),
                Ok(n) => self.framer.push(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends a request and waits for its response's result; notifications
    /// that arrive meanwhile are kept for `next_notification`.
    pub fn call(&mut self, method: &str, params: Vec<Value>) -> Result<Value, ConnectionError> {
        let id = json!(self.next_id);
        self.next_id += 1;
        self.send(&Message::Request {
            method: method.to_string(),
            params,
            id: id.clone(),
        })?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receive(left)? {
                Some(Message::Response {
                    result,
                    error,
                    id: got,
                }) if got == id => {
                    if !error.is_null() {
                        return Err(ConnectionError::Server {
                            method: method.to_string(),
                            error,
                        });
                    }
                    return Ok(result);
                }
                Some(m @ Message::Notification { .. }) => self.notifications.push_back(m),
                // Answers to requests no longer waited for, requests we
                // do not serve: nothing to do.
                Some(_) => {}
                None => {
                    return Err(ConnectionError::Timeout {
                        method: method.to_string(),
                        timeout: self.timeout,
                    })
                }
            }
        }
    }

    /// The next notification (queued, or arriving within `wait`).
    pub fn next_notification(
        &mut self,
        wait: Duration,
    ) -> Result<Option<Message>, ConnectionError> {
        if let Some(m) = self.notifications.pop_front() {
            return Ok(Some(m));
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receive(left)? {
                Some(m @ Message::Notification { .. }) => return Ok(Some(m)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// `monitor` (RFC 7047 §4.1.5): the tables' rows now; their changes
    /// come as `update` notifications with `id` as first parameter.
    pub fn monitor(
        &mut self,
        db: &str,
        id: Value,
        requests: Value,
    ) -> Result<Value, ConnectionError> {
        self.call("monitor", vec![json!(db), id, requests])
    }

    /// `transact` (RFC 7047 §4.1.3): every operation's result, or the
    /// first operation's error (the server then applied none).
    pub fn transact(&mut self, db: &str, ops: &[Operation]) -> Result<Vec<Value>, ConnectionError> {
        let mut params = vec![json!(db)];
        params.extend(ops.iter().map(Operation::to_json));
        let result = self.call("transact", params)?;
        let results = match result {
            Value::Array(r) => r,
            other => {
                return Err(ConnectionError::Server {
                    method: "transact".into(),
                    error: other,
                })
            }
        };
        for (index, r) in results.iter().enumerate() {
            if let Some(error) = r.get("error").filter(|e| !e.is_null()) {
                let mut error = error.clone();
                if let (Some(d), Value::String(e)) = (r.get("details"), &mut error) {
                    e.push_str(&format!(": {}", d.as_str().unwrap_or(&d.to_string())));
                }
                return Err(ConnectionError::Transaction { index, error });
            }
        }
        Ok(results)
    }
}
