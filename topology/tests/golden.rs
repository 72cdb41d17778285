//! Golden dumps of what the agents compile, one text file per topology:
//! every host's local VLANs, bridges, ports and flows (in the order they are
//! produced) and router instances (addresses, rules, routes, neighbours,
//! NAT, links). Any change to compilation shows up as a diff a person can
//! read.
//!
//! `golden/varied.toml` is a test-only topology for the allocation and
//! port-security paths the shipped topologies pin or do not use.
//!
//! To accept an intended change: `TOPOLOGY_GOLDEN_UPDATE=1 cargo test -p
//! topology --test golden`, then read the diff before committing it.

use pipeline::flow::text::format_flow;
use pipeline::flow::NoPortNames;
use pipeline::router::RouterInstance;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use topology::{build_host, compile_host, l3::compile_instances, load_toml, HostPlan};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dump_plan(out: &mut String, plan: &HostPlan) {
    let vlans: Vec<String> = plan
        .local_vlans
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let _ = writeln!(out, "local_vlans: {}", vlans.join(" "));
    for b in &plan.bridges {
        let _ = writeln!(out, "--- bridge {}", b.name);
        for p in &b.ports {
            let _ = writeln!(out, "port {p:?}");
        }
        for f in &b.flows {
            let _ = writeln!(out, "{}", format_flow(f, None, &NoPortNames));
        }
    }
}

fn dump_instance(out: &mut String, r: &RouterInstance) {
    let _ = write!(out, "{r}");
    let _ = writeln!(
        out,
        "# conntrack={} mark_external={:?}",
        r.conntrack, r.mark_external
    );
    for i in &r.interfaces {
        let _ = writeln!(out, "# link {} {:?}", i.name, i.link);
    }
    for n in &r.nat {
        let _ = writeln!(
            out,
            "# nat {:?} src={:?} dst={:?} iif={:?}{} oif={:?}{} not_dnat={} only_dnat={} not_marked_external={} {:?}",
            n.hook,
            n.src,
            n.dst,
            n.iif,
            if n.iif_not { " (not)" } else { "" },
            n.oif,
            if n.oif_not { " (not)" } else { "" },
            n.not_dnat,
            n.only_dnat,
            n.not_marked_external,
            n.target
        );
    }
}

/// Every host of the topology in `path`, compiled and printed.
fn dump_topology(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = load_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    for h in &t.hosts {
        let _ = writeln!(out, "=== host {}", h.name);
        let plan = compile_host(&t, &h.name).unwrap_or_else(|e| panic!("{}: {e}", h.name));
        dump_plan(&mut out, &plan);
        let _ = writeln!(out, "--- router instances");
        for r in compile_instances(&t, &h.name).unwrap_or_else(|e| panic!("{}: {e}", h.name)) {
            dump_instance(&mut out, &r);
        }
        build_host(&t, &h.name, 1).unwrap_or_else(|e| panic!("{}: build: {e}", h.name));
    }
    out
}

/// Compares `got` with the golden file `name`, or rewrites it when asked.
fn check_golden(name: &str, got: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("TOPOLOGY_GOLDEN_UPDATE").is_some() {
        std::fs::write(&path, got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (TOPOLOGY_GOLDEN_UPDATE=1 writes it)",
            path.display()
        )
    });
    if want != got {
        let first = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
        panic!(
            "{name} differs from the golden at line {}:\n  want: {:?}\n  got:  {:?}",
            first + 1,
            want.lines().nth(first),
            got.lines().nth(first)
        );
    }
}

#[test]
fn spec_example_compiles_as_recorded() {
    let got = dump_topology(&root().join("../config/topologies/spec-example.toml"));
    check_golden("spec-example.txt", &got);
}

#[test]
fn article_lab_compiles_as_recorded() {
    let got = dump_topology(&root().join("../config/topologies/article-lab.toml"));
    check_golden("article-lab.txt", &got);
}

#[test]
fn varied_topology_compiles_as_recorded() {
    let got = dump_topology(&root().join("tests/golden/varied.toml"));
    check_golden("varied.txt", &got);
}
