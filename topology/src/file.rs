//! The topology's file format: TOML (what operators write, and what
//! `vswitchctl topology show` prints so that `topology load` takes it
//! back), JSON accepted too (`--json` output); errors with the line and
//! column they are at; and the difference between two topologies, item by
//! item (`topology load --dry-run`).
#![deny(unsafe_code)]

use crate::model::Topology;
use crate::validate::{validate, TopologyError};
use serde::{Deserialize, Serialize};

/// Line and column (from 1) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Parses a topology from TOML (or JSON, when the text starts with `{`)
/// and validates it. Syntax errors say `line L, column C`.
pub fn load(text: &str) -> Result<Topology, TopologyError> {
    let t = if text.trim_start().starts_with('{') {
        serde_json::from_str::<Topology>(text).map_err(|e| TopologyError {
            item: "topology file".into(),
            field: format!("line {}, column {}", e.line(), e.column()),
            message: e.to_string(),
        })?
    } else {
        toml::from_str::<Topology>(text).map_err(|e| TopologyError {
            item: "topology file".into(),
            field: e
                .span()
                .map(|s| {
                    let (l, c) = line_column(text, s.start);
                    format!("line {l}, column {c}")
                })
                .unwrap_or_default(),
            message: e.message().trim_end().to_string(),
        })?
    };
    validate(&t)?;
    Ok(t)
}

/// `t` as a topology file (TOML) that [`load`] reads back to `t`.
pub fn to_toml(t: &Topology) -> Result<String, toml::ser::Error> {
    toml::to_string(t)
}

/// What a change does to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One item of a topology added, removed or changed (`kind` is the
/// file's table name: `port`, `floating_ip`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemChange {
    pub change: ChangeKind,
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for ItemChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.change {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Changed => '~',
        };
        write!(f, "{sign} {} {}", self.kind, self.name)
    }
}

/// The items of `new` that `old` does not have, those it has that `new`
/// does not, and those both have but differ, in the file's order (each
/// item by its key: name, or host/network for a fip_gateway, address for
/// a floating_ip).
pub fn diff(old: &Topology, new: &Topology) -> Vec<ItemChange> {
    let mut out = Vec::new();
    items(&mut out, "physnet", &old.physnets, &new.physnets, |x| {
        x.name.clone()
    });
    items(&mut out, "host", &old.hosts, &new.hosts, |x| x.name.clone());
    items(&mut out, "network", &old.networks, &new.networks, |x| {
        x.name.clone()
    });
    items(&mut out, "subnet", &old.subnets, &new.subnets, |x| {
        x.name.clone()
    });
    items(&mut out, "router", &old.routers, &new.routers, |x| {
        x.name.clone()
    });
    items(
        &mut out,
        "fip_gateway",
        &old.fip_gateways,
        &new.fip_gateways,
        |x| format!("{}/{}", x.host, x.network),
    );
    items(&mut out, "port", &old.ports, &new.ports, |x| x.name.clone());
    items(
        &mut out,
        "floating_ip",
        &old.floating_ips,
        &new.floating_ips,
        |x| x.address.to_string(),
    );
    out
}

fn items<T: PartialEq>(
    out: &mut Vec<ItemChange>,
    kind: &str,
    old: &[T],
    new: &[T],
    key: impl Fn(&T) -> String,
) {
    let change = |change, name| ItemChange {
        change,
        kind: kind.to_string(),
        name,
    };
    for o in old {
        let k = key(o);
        match new.iter().find(|n| key(n) == k) {
            None => out.push(change(ChangeKind::Removed, k)),
            Some(n) if n != o => out.push(change(ChangeKind::Changed, k)),
            Some(_) => {}
        }
    }
    for n in new {
        let k = key(n);
        if !old.iter().any(|o| key(o) == k) {
            out.push(change(ChangeKind::Added, k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Topology {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/topologies/spec-example.toml"
        );
        load(&std::fs::read_to_string(p).expect("spec topology")).expect("valid")
    }

    #[test]
    fn a_shown_topology_loads_back_as_itself_from_toml_and_json() {
        let t = spec();
        let text = to_toml(&t).expect("toml");
        assert_eq!(load(&text).expect("loads back"), t);
        let json = serde_json::to_string_pretty(&t).expect("json");
        assert_eq!(load(&json).expect("json loads"), t);
    }

    #[test]
    fn a_syntax_error_says_its_line_and_column() {
        let e = load("[[host]]\nname = \"c1\"\nbridge_mappings = [\n  bad\n]\n").unwrap_err();
        assert_eq!(e.item, "topology file");
        assert_eq!(e.field, "line 4, column 3", "{e}");
        let e = load("[[port]]\nname = 5\n").unwrap_err();
        assert!(e.field.starts_with("line 2, column "), "{e}");
    }

    #[test]
    fn the_difference_names_each_item_added_removed_or_changed() {
        let old = spec();
        let mut new = old.clone();
        new.ports.retain(|p| p.name != "vm5");
        new.ports[0].ip = "10.1.0.99".parse().expect("ip");
        let fip = new.floating_ips[0].address;
        new.floating_ips[0].port = None;
        let mut extra = new.ports[1].clone();
        extra.name = "vm9".into();
        extra.device = "qvo-vm9".into();
        new.ports.push(extra);
        let d: Vec<String> = diff(&old, &new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            d,
            [
                format!("~ port {}", old.ports[0].name),
                "- port vm5".to_string(),
                "+ port vm9".to_string(),
                format!("~ floating_ip {fip}"),
            ]
        );
        assert!(diff(&old, &old).is_empty());
    }
}
