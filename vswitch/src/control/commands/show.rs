//! What the daemon runs, read only: version, show, trace, router-show and
//! pmd-stats.
#![deny(unsafe_code)]

use crate::control::error::ControlError;
use crate::control::protocol::{
    Response, RoutersReply, ShowReply, TraceReply, VersionReply, PROTOCOL_VERSION,
};
use crate::daemon::Shared;
use crate::render::SwitchView;

pub(super) fn version(shared: &Shared) -> Response {
    Response::Version(VersionReply {
        protocol: PROTOCOL_VERSION,
        host: shared.host.clone(),
    })
}

/// Bridges, ports and router instances, with the I/O bindings.
pub(super) fn show(shared: &Shared) -> Response {
    Response::Show(ShowReply {
        switch: SwitchView::of(&shared.switch()),
        io: shared.bindings(),
        host: shared.host.clone(),
    })
}

/// A packet's walk through the running switch, now.
pub(super) fn trace(
    shared: &Shared,
    bridge: Option<&str>,
    packet: Option<&str>,
    frame: Option<(&str, &str)>,
) -> Result<Response, ControlError> {
    let sw = shared.switch();
    let t = match (packet, frame) {
        (Some(p), None) => pipeline::xlate::trace::trace_text(&sw, bridge, p, shared.now_ns())?,
        (None, Some((hex, in_port))) => {
            let bytes = crate::offline::parse_hex(hex).map_err(ControlError::TraceFrame)?;
            pipeline::xlate::trace::trace_frame(&sw, in_port, &bytes, shared.now_ns())?
        }
        _ => return Err(ControlError::TraceWhat),
    };
    Ok(Response::Trace(TraceReply {
        text: t.render(),
        trace: serde_json::to_value(&t).map_err(ControlError::Encode)?,
    }))
}

pub(super) fn routers(shared: &Shared, name: Option<&str>) -> Result<Response, ControlError> {
    let routers = crate::render::routers(&shared.switch(), name)?;
    Ok(Response::RouterShow(RoutersReply { routers }))
}

/// Each worker's last published report.
pub(super) fn pmd_stats(shared: &Shared) -> Response {
    Response::PmdStats(
        shared
            .reports
            .iter()
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect(),
    )
}
