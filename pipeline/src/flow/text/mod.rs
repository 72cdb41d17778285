//! The ovs-ofctl text syntax of flows: `add-flow` input and `dump-flows`
//! output.
//!
//! Parsing accepts what operators type (`table=0, priority=10,arp,in_port=6
//! actions=goto_table:24`, port names or numbers, `resubmit(,60)`,
//! `ct(commit,zone=NXM_NX_REG6[0..15],nat(src=10.0.0.1))`, …) and reports
//! the first bad token with its column. Printing follows `ovs-ofctl
//! dump-flows`: fields in OVS's order, protocol shorthands (`arp`, `icmp`,
//! `tcp`…) folded in, default priority omitted. Anything printed parses
//! back to the same flow (a property the tests check).
//!
//! One file per concern: `token` splits the input into tokens with their
//! columns; `value` reads and writes the values fields and actions take
//! (numbers, addresses, flags, field names, ports); `match_parse` parses a
//! match and checks its prerequisites; `action_parse` parses actions;
//! `print` writes flows, matches and actions as dump-flows does.

mod action_parse;
mod error;
mod match_parse;
mod print;
mod token;
mod value;

pub use error::FlowSyntaxError;
pub use print::{format_actions, format_flow, format_match};

/// The field an ovs-ofctl field name (or alias) names, e.g. `dl_src`,
/// `eth_src`, `nw_dst`, `reg6` (what `dump-flows --sort=FIELD` takes).
pub fn field_named(name: &str) -> Option<crate::key::Field> {
    value::field_by_name(name)
}

use super::{Action, Flow, Match, PortNames};
use action_parse::parse_actions_at;
use match_parse::MatchBuilder;
use token::tokenize;
use value::{num_in, parse_num_masked};

/// Parses a match (`in_port=qvo-vm1,arp,arp_spa=10.1.0.11`), as used by
/// `trace` and flow selectors.
pub fn parse_match(s: &str, ports: &dyn PortNames) -> Result<Match, FlowSyntaxError> {
    let mut b = MatchBuilder::new();
    for t in tokenize(s, 0) {
        if !b.token(t, s, ports)? {
            return Err(t.err(s, "unknown match field"));
        }
    }
    b.finish(s)
}

/// Finds `actions=` at a token boundary.
fn find_actions(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("actions=") {
        let at = from + i;
        let boundary = at == 0 || s[..at].ends_with([',', ' ', '\t']);
        if boundary {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Parses a flow as `ovs-ofctl add-flow` does (`dump-flows` output too:
/// its statistics fields are accepted and ignored).
pub fn parse_flow(s: &str, ports: &dyn PortNames) -> Result<Flow, FlowSyntaxError> {
    let at = find_actions(s).ok_or_else(|| FlowSyntaxError {
        column: s.chars().count() + 1,
        token: String::new(),
        message: "missing `actions=`".into(),
    })?;
    let mut flow = Flow::default();
    let mut b = MatchBuilder::new();
    for t in tokenize(&s[..at], 0) {
        let (k, v) = t.key_value();
        let val = || {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| t.err(s, format!("`{k}` needs a value")))
        };
        match k {
            "table" => flow.table = num_in(&t, s, val()?, 254, "table")? as u8,
            "priority" => flow.priority = num_in(&t, s, val()?, 0xffff, "priority")? as u16,
            "cookie" => {
                // `/-1`: every bit (ovs-ofctl reads the mask as C's
                // strtoull does; Neutron's agents and runbooks write it).
                let text = val()?;
                let text = match text.strip_suffix("/-1") {
                    Some(v) => format!("{v}/{:#x}", u64::MAX),
                    None => text.to_string(),
                };
                let (c, m) =
                    parse_num_masked(&text, u64::MAX).ok_or_else(|| t.err(s, "bad cookie"))?;
                flow.cookie = c;
                flow.cookie_mask = if val()?.contains('/') { m } else { 0 };
            }
            "idle_timeout" => {
                flow.idle_timeout = num_in(&t, s, val()?, 0xffff, "idle_timeout")? as u16
            }
            "hard_timeout" => {
                flow.hard_timeout = num_in(&t, s, val()?, 0xffff, "hard_timeout")? as u16
            }
            // dump-flows statistics: informational, not part of the flow.
            "duration" | "n_packets" | "n_bytes" | "idle_age" | "hard_age" => {}
            _ => {
                if !b.token(t, s, ports)? {
                    return Err(t.err(s, "unknown match field"));
                }
            }
        }
    }
    flow.matches = b.finish(s)?;
    let acts = &s[at + "actions=".len()..];
    flow.actions = parse_actions_at(acts, at + "actions=".len(), s, ports)?;
    Ok(flow)
}

/// Parses an action list (`strip_vlan,output:6`, `drop`).
pub fn parse_actions(s: &str, ports: &dyn PortNames) -> Result<Vec<Action>, FlowSyntaxError> {
    parse_actions_at(s, 0, s, ports)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod golden_tests;
