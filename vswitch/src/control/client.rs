//! The client's end of the control socket: one request, one response.
//! vswitchctl and devtools' lab call it.
//!
//! May call: `protocol`.
#![deny(unsafe_code)]

use super::error::ControlError;
use super::protocol::{Request, Response, ResponseLine};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Sends `request` to the daemon at `path` and returns its reply (the
/// daemon's refusal as [`ControlError::Refused`] with its text).
pub fn call(path: &Path, request: &Request) -> Result<Response, ControlError> {
    let mut s = UnixStream::connect(path).map_err(|source| ControlError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    let line = request.encode().map_err(ControlError::Encode)?;
    writeln!(s, "{line}")?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    let answer: ResponseLine = serde_json::from_str(&answer).map_err(ControlError::BadResponse)?;
    if !answer.ok {
        return Err(ControlError::Refused(
            answer.error.unwrap_or_else(|| "unknown error".to_string()),
        ));
    }
    Response::decode(request, answer.result.unwrap_or_default()).map_err(ControlError::BadResponse)
}
