//! Flow commands: dump-flows, add-flow(s), mod-flows, del-flows, and
//! match-check. Flow text is ovs-ofctl's syntax, port names resolved
//! against the bridge being changed.
#![deny(unsafe_code)]

use crate::control::error::ControlError;
use crate::control::protocol::{
    Deleted, FlowAggregate, FlowDump, FlowRow, FlowsAdded, FlowsModified, Response, TableRow,
};
use crate::daemon::Shared;
use pipeline::flow::text::{format_actions, format_flow, format_match, parse_flow, parse_match};
use pipeline::flow::{Flow, Match, PortNames};
use pipeline::switch::FlowSelector;

/// `dump-flows BRIDGE [FLOW] [--sort|--rsort[=FIELD]]`: the flows the
/// selector takes (all without one), in table order or sorted, as text
/// and as rows.
pub(super) fn dump(
    shared: &Shared,
    bridge: &str,
    matching: Option<&str>,
    sort: Option<&str>,
    descending: bool,
) -> Result<Response, ControlError> {
    let sw = shared.switch();
    let now = shared.now_ns();
    let b = sw
        .bridge(bridge)
        .ok_or_else(|| ControlError::NoBridge(bridge.to_string()))?;
    let mut rules = selected(b, matching)?;
    if let Some(field) = sort {
        let key: Box<SortKey> = if field == "priority" {
            Box::new(|f| Some(f.priority as u64))
        } else {
            let fld = pipeline::flow::text::field_named(field)
                .ok_or_else(|| ControlError::UnknownSortField(field.to_string()))?;
            Box::new(move |f| (f.matches.mask.get(fld) != 0).then(|| f.matches.value.get(fld)))
        };
        // Flows without the field after the others, either way.
        rules.sort_by(|a, b| match (key(&a.flow), key(&b.flow)) {
            (Some(x), Some(y)) if descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    let mut text = String::new();
    let mut flows = Vec::with_capacity(rules.len());
    for r in rules {
        let stats = crate::render::flow_stats(&r, now);
        text.push_str(&format_flow(&r.flow, Some(&stats), b));
        text.push('\n');
        flows.push(FlowRow {
            table: r.flow.table,
            priority: r.flow.priority,
            cookie: format!("{:#x}", r.flow.cookie),
            matching: format_match(&r.flow.matches, b),
            actions: format_actions(&r.flow.actions, b),
            n_packets: stats.n_packets,
            n_bytes: stats.n_bytes,
            duration_ms: now.saturating_sub(r.added_ns) / 1_000_000,
            idle_timeout: r.flow.idle_timeout,
            hard_timeout: r.flow.hard_timeout,
            idle_age: stats.idle_age_secs,
        });
    }
    Ok(Response::DumpFlows(FlowDump { text, flows }))
}

/// What `--sort` orders flows by (None: the flow lacks the field).
type SortKey = dyn Fn(&pipeline::flow::Flow) -> Option<u64>;

/// The rules of `b` the (non-strict) selector `matching` takes, in table
/// order; all without one.
fn selected(
    b: &pipeline::switch::Bridge,
    matching: Option<&str>,
) -> Result<Vec<std::sync::Arc<pipeline::switch::Rule>>, ControlError> {
    let sel = match matching.filter(|m| !m.trim().is_empty()) {
        Some(m) => Some(selector(b, m, false)?.0),
        None => None,
    };
    Ok(b.tables()
        .flat_map(|t| t.rules.iter())
        .filter(|r| sel.as_ref().is_none_or(|s| s.selects(&r.flow)))
        .cloned()
        .collect())
}

/// `dump-aggregate BRIDGE [FLOW]`.
pub(super) fn aggregate(
    shared: &Shared,
    bridge: &str,
    matching: Option<&str>,
) -> Result<Response, ControlError> {
    let sw = shared.switch();
    let b = sw
        .bridge(bridge)
        .ok_or_else(|| ControlError::NoBridge(bridge.to_string()))?;
    let mut a = FlowAggregate {
        packet_count: 0,
        byte_count: 0,
        flow_count: 0,
    };
    for r in selected(b, matching)? {
        let (p, by, _) = r.stats.read();
        a.packet_count += p;
        a.byte_count += by;
        a.flow_count += 1;
    }
    Ok(Response::DumpAggregate(a))
}

/// `dump-tables BRIDGE`: each table with flows.
pub(super) fn tables(shared: &Shared, bridge: &str) -> Result<Response, ControlError> {
    let sw = shared.switch();
    let b = sw
        .bridge(bridge)
        .ok_or_else(|| ControlError::NoBridge(bridge.to_string()))?;
    Ok(Response::DumpTables(
        b.tables()
            .map(|t| TableRow {
                table: t.id,
                active_count: t.rules.len() as u64,
                matched_count: t.rules.iter().map(|r| r.stats.read().0).sum(),
            })
            .collect(),
    ))
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
