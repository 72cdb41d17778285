//! `capture`: copies a port's frames into a pcap file until a count of
//! frames or a duration (default 10 s, at most an hour), then reports.
//! The request's client waits; workers feed the capture without blocking
//! (see `crate::capture`).
#![deny(unsafe_code)]

use crate::control::error::ControlError;
use crate::control::protocol::{CaptureReply, Response};
use crate::daemon::Shared;
use std::path::Path;
use std::time::{Duration, Instant};

pub(super) fn capture(
    shared: &Shared,
    port: &str,
    file: &Path,
    count: Option<u64>,
    duration_ms: Option<u64>,
) -> Result<Response, ControlError> {
    if !file.is_absolute() {
        return Err(ControlError::RelativePath(file.to_path_buf()));
    }
    if count == Some(0) {
        return Err(ControlError::ZeroCount);
    }
    let duration =
        Duration::from_millis(duration_ms.unwrap_or(10_000)).min(crate::capture::MAX_DURATION);
    if shared.switch().port_by_name(port).is_none() {
        return Err(ControlError::NoPortOnHost {
            port: port.to_string(),
            host: shared.host.clone(),
        });
    }
    // The wall clock at the daemon's time 0: frames carry the daemon's
    // (monotonic) time, the file wall-clock times.
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(Duration::from_nanos(shared.now_ns()));
    let (cap, writer) = crate::capture::Capture::start(file, count, clock)?;
    if let Err(e) = shared.add_capture(port, cap.clone()) {
        writer.finish(cap);
        let _ = std::fs::remove_file(file);
        return Err(e.into());
    }
    let start = Instant::now();
    while start.elapsed() < duration && !cap.full() && !shared.stopping() {
        std::thread::sleep(Duration::from_millis(10));
    }
    shared.remove_capture(&cap);
    // Workers drop the capture at their next burst boundary.
    std::thread::sleep(Duration::from_millis(20));
    let r = writer.finish(cap);
    Ok(Response::Capture(CaptureReply {
        port: port.to_string(),
        file: file.to_path_buf(),
        packets: r.written,
        dropped: r.dropped,
    }))
}
