//! Flow commands: dump-flows, add-flow(s), mod-flows, del-flows, and
//! match-check. Flow text is ovs-ofctl's syntax, port names resolved
//! against the bridge being changed.
#![deny(unsafe_code)]

use crate::control::error::ControlError;
use crate::control::protocol::{Deleted, FlowsAdded, FlowsModified, Response};
use crate::daemon::Shared;
use pipeline::flow::text::{format_match, parse_flow, parse_match};
use pipeline::flow::{Flow, Match, PortNames};
use pipeline::switch::FlowSelector;

pub(super) fn dump(shared: &Shared, bridge: &str) -> Result<Response, ControlError> {
    let text = crate::render::dump_flows(&shared.switch(), bridge, shared.now_ns())?;
    Ok(Response::DumpFlows(text))
}

/// Adds `lines` to `bridge` as one change; an error names the line.
pub(super) fn add(
    shared: &Shared,
    bridge: &str,
    lines: &[String],
) -> Result<FlowsAdded, ControlError> {
    let now = shared.now_ns();
    shared.update(|st| {
        let names = st.config.port_names(bridge)?;
        let flows = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                parse_flow(l, &names).map_err(|source| ControlError::FlowLine {
                    line: i + 1,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let added = flows.len();
        st.config.add_flows(bridge, flows, now)?;
        Ok(FlowsAdded { added })
    })
}

/// Gives the flows `text`'s match selects the actions `text` gives.
pub(super) fn modify(
    shared: &Shared,
    bridge: &str,
    text: &str,
    strict: bool,
) -> Result<Response, ControlError> {
    if !text.contains("actions=") {
        return Err(ControlError::ModFlowsWithoutActions);
    }
    shared.update(|st| {
        let names = st.config.port_names(bridge)?;
        let (sel, flow) = selector(&names, text, strict)?;
        let modified = st.config.mod_flows(bridge, &sel, flow.actions)?;
        Ok(Response::ModFlows(FlowsModified { modified }))
    })
}

/// Deletes the flows `matching` selects (every flow when it is empty).
pub(super) fn delete(
    shared: &Shared,
    bridge: &str,
    matching: &str,
    strict: bool,
) -> Result<Response, ControlError> {
    shared.update(|st| {
        let names = st.config.port_names(bridge)?;
        let (sel, _) = selector(&names, matching, strict)?;
        let deleted = st.config.del_flows(bridge, &sel)?;
        Ok(Response::DelFlows(Deleted { deleted }))
    })
}

/// `matching` parsed for `bridge` and printed back.
pub(super) fn check_match(
    shared: &Shared,
    bridge: &str,
    matching: &str,
) -> Result<Response, ControlError> {
    let sw = shared.switch();
    let b = sw
        .bridge(bridge)
        .ok_or_else(|| ControlError::NoBridge(bridge.to_string()))?;
    let m = parse_match(matching, b)?;
    Ok(Response::MatchCheck(format_match(&m, b)))
}

/// A flow selector from a match text (`table=`, `priority=`, `cookie=`
/// honoured) for `del-flows`/`mod-flows`, and the flow the text parses to.
fn selector(
    names: &dyn PortNames,
    text: &str,
    strict: bool,
) -> Result<(FlowSelector, Flow), ControlError> {
    let sel = if text.trim().is_empty() {
        Flow {
            matches: Match::ANY,
            ..Default::default()
        }
    } else if text.contains("actions=") {
        parse_flow(text, names)?
    } else {
        parse_flow(&format!("{text} actions=drop"), names)?
    };
    Ok((
        FlowSelector {
            table: text.contains("table=").then_some(sel.table),
            matches: sel.matches,
            strict,
            priority: sel.priority,
            cookie: sel.cookie,
            cookie_mask: sel.cookie_mask,
        },
        sel,
    ))
}
