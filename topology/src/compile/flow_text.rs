//! Flow text written per bridge, parsed when a bridge's flows are taken.

use crate::validate::{err, TopologyError};
use pipeline::flow::text::parse_flow;
use pipeline::flow::{Flow, NoPortNames};

/// Flow text per bridge, in the order written; parsed on `take`.
#[derive(Default)]
pub(super) struct FlowText {
    lines: Vec<(String, String)>,
}

impl FlowText {
    pub(super) fn add(&mut self, bridge: &str, line: &str) {
        self.lines.push((bridge.to_string(), line.to_string()));
    }

    /// The flows written for `bridge`, parsed.
    pub(super) fn take(&self, bridge: &str) -> Result<Vec<Flow>, TopologyError> {
        let mut flows = Vec::new();
        for (_, line) in self.lines.iter().filter(|(b, _)| b == bridge) {
            let f = parse_flow(line, &NoPortNames).map_err(|e| {
                err(
                    format!("bridge {bridge}"),
                    "flows",
                    format!("generated flow `{line}` does not parse: {e}"),
                )
            })?;
            // The same match and priority twice: the later install wins (spec §10.3).
            flows.retain(|x: &Flow| {
                !(x.table == f.table && x.priority == f.priority && x.matches == f.matches)
            });
            flows.push(f);
        }
        Ok(flows)
    }
}
