//! vswitch: the project's own tools. `vswitch lab` runs the seed article's
//! experiment on real Linux hosts in network namespaces; `vswitch
//! gen-traffic` writes a §8 walk's frames as a pcap.
//!
//! The command line's edge: each command's error is printed here after
//! the command's name (`vswitch lab: …`), the exit code set from it.
//! May call: `lab`, `traffic` and `spec` of devtools.
#![deny(unsafe_code)]

use clap::{Parser, Subcommand};
use devtools::lab::{self, scenario::Outcome, LabError};
use devtools::traffic::{self, TrafficError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "vswitch", version, about = "vswitch tools: the DVR lab")]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The spec's example topology (two compute nodes, a network node, an
    /// external host) built from network namespaces, one vswitchd per
    /// host on AF_PACKET ports; every scenario of the seed article pinged
    /// and fetched with the kernels' own stacks, and its first packet
    /// traced across the hosts. Needs root; without it the scenarios run
    /// on the in-process simulation.
    Lab {
        #[command(subcommand)]
        action: Option<LabAction>,
        /// Leave the lab up afterwards (explore it with vswitchctl
        /// --socket /run/vswitch-lab/HOST.sock; `vswitch lab down` removes it).
        #[arg(long)]
        keep: bool,
        /// Run on the in-process multi-host simulation even as root.
        #[arg(long, conflicts_with = "neutron")]
        sim: bool,
        /// Configure each host's vswitchd only through Neutron's own agents
        /// (a private ovsdb-server per host, the OVS agent over OVSDB and
        /// OpenFlow 1.3, the L3 agent with neutron-vswitch's extension);
        /// needs Debian's openvswitch-common, python3-neutron,
        /// python3-os-ken and python3-ovsdbapp.
        #[arg(long)]
        neutron: bool,
        /// Print each host's whole trace, not the summary.
        #[arg(long)]
        verbose: bool,
        /// The vswitchd binary (default: the one beside this executable).
        #[arg(long)]
        vswitchd: Option<PathBuf>,
    },
    /// Write a pcap of one §8 scenario's frames as they arrive at its host
    /// (the replay benchmark's traffic), on the spec's example topology.
    GenTraffic {
        /// Scenario: l2-egress, l2-ingress, dvr-egress, dvr-ingress,
        /// routed-same-host, snat-egress, snat-reply, fip-egress, fip-ingress.
        #[arg(long)]
        scenario: String,
        /// Distinct flows (1..1000000).
        #[arg(long, default_value_t = 1)]
        flows: usize,
        /// Frame size on the wire: 64..1518 bytes, or `imix`.
        #[arg(long, default_value = "64")]
        size: String,
        /// Frames to write (default: one per flow, at least 32768).
        #[arg(long)]
        count: Option<usize>,
        /// Also write the warm-up frames (port by port) as OUT.warmup-N-PORT.pcap.
        #[arg(long)]
        warmup: bool,
        /// The pcap file to write.
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum LabAction {
    /// Remove a lab left up by `--keep` (or by a crash): daemons,
    /// namespaces and /run/vswitch-lab.
    Down,
}

fn print_outcome(o: &Outcome, verbose: bool) {
    println!(
        "{}  {:<18} {}",
        if o.passed { "PASS" } else { "FAIL" },
        o.id,
        o.title
    );
    println!("      {}", o.detail);
    println!("      {}", o.walk);
    for h in &o.traces {
        if verbose {
            println!("      == {} ==", h.host);
            for l in h.text.lines() {
                println!("      {l}");
            }
        } else {
            for l in lab::scenario::brief(h) {
                println!("      {l}");
            }
        }
    }
    println!();
}

/// Why `vswitch gen-traffic` wrote nothing (or not all).
#[derive(Debug, thiserror::Error)]
enum GenTrafficError {
    #[error("lab topology: {0}")]
    Topology(#[source] topology::TopologyError),
    #[error(transparent)]
    Traffic(#[from] TrafficError),
}

/// A command's failure, with the command it came from.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("vswitch gen-traffic: {0}")]
    GenTraffic(#[source] GenTrafficError),
    #[error("vswitch lab down: {0}")]
    LabDown(#[source] LabError),
    #[error("vswitch lab: {0}")]
    Lab(#[source] LabError),
}

/// Writes the pcap (and the warm-up's, with `warmup`); returns what it
/// wrote, as the JSON `--json` prints.
fn gen_traffic(
    scenario: &str,
    flows: usize,
    size: &str,
    count: Option<usize>,
    warmup: bool,
    out: &Path,
) -> Result<serde_json::Value, GenTrafficError> {
    let s = traffic::TrafficScenario::parse(scenario)?;
    let t = devtools::spec::topology().map_err(GenTrafficError::Topology)?;
    let size = traffic::FrameSize::parse(size)?;
    let tr = traffic::generate(&t, s, flows, size, count.unwrap_or(flows.max(32_768)))?;
    traffic::write_pcap(out, &tr.frames)?;
    let mut warm = Vec::new();
    if warmup {
        for (i, (port, frames)) in tr.warmup.iter().enumerate() {
            let p = out.with_extension(format!("warmup-{i}-{port}.pcap"));
            traffic::write_pcap(&p, frames)?;
            warm.push(p.display().to_string());
        }
    }
    Ok(serde_json::json!({
        "scenario": s.name(), "walk": s.walk(), "host": s.host(), "in_port": s.in_port(),
        "out_port": s.out_port(), "frames": tr.frames.len(), "file": out.display().to_string(),
        "warmup": warm,
    }))
}

/// `vswitch gen-traffic`: writes the pcap and says what it wrote.
fn gen_traffic_command(
    json: bool,
    scenario: &str,
    flows: usize,
    size: &str,
    count: Option<usize>,
    warmup: bool,
    out: &Path,
) -> Result<ExitCode, CliError> {
    let v = gen_traffic(scenario, flows, size, count, warmup, out).map_err(CliError::GenTraffic)?;
    if json {
        println!("{v}");
    } else {
        println!(
            "wrote {} frames of {} ({} flows, {}) entering {} on {} to {}",
            v["frames"],
            scenario,
            flows,
            size,
            v["in_port"].as_str().unwrap_or(""),
            v["host"].as_str().unwrap_or(""),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `vswitch lab down`: removes a lab left up and says what it removed.
fn lab_down_command(json: bool) -> Result<ExitCode, CliError> {
    let removed = lab::down().map_err(CliError::LabDown)?;
    if json {
        println!("{}", serde_json::json!({ "removed": removed }));
    } else if removed.is_empty() {
        println!("no lab is up");
    } else {
        for r in removed {
            println!("removed {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `vswitch lab`: the scenarios in namespaces (as root, unless `sim`) or
/// on the simulation, each printed as it ends, then the summary; fails
/// unless every scenario passed.
/// `vswitch lab`'s switches.
struct LabFlags {
    keep: bool,
    sim: bool,
    neutron: bool,
    verbose: bool,
}

fn lab_command(
    json: bool,
    flags: LabFlags,
    vswitchd: Option<PathBuf>,
) -> Result<ExitCode, CliError> {
    let LabFlags {
        keep,
        sim,
        neutron,
        verbose,
    } = flags;
    let mut progress = |o: &Outcome| {
        if !json {
            print_outcome(o, verbose);
        }
    };
    let report = if sim || (!lab::is_root() && !neutron) {
        if !sim {
            eprintln!(
                "vswitch lab: not running as root, so no network namespaces: running the \
                 same scenarios on the in-process multi-host simulation instead"
            );
        }
        if !json {
            println!("vswitch lab on the in-process simulation of the spec's example topology\n");
        }
        lab::run_sim(&mut progress)
    } else {
        if !json && neutron {
            println!(
                "vswitch lab --neutron: the spec's example topology in network namespaces \
                 ({}*), one vswitchd per host configured only by Neutron's agents \
                 (ovsdb-server, the OVS agent over OpenFlow 1.3, the L3 agent with \
                 neutron-vswitch)\n",
                lab::NS_PREFIX
            );
        } else if !json {
            println!(
                "vswitch lab: the spec's example topology in network namespaces ({}*), \
                 one vswitchd per host\n",
                lab::NS_PREFIX
            );
        }
        let opts = lab::LabOptions {
            keep,
            neutron,
            vswitchd,
        };
        lab::run_kernel(&opts, &mut progress)
    };
    let r = report.map_err(CliError::Lab)?;
    let passed = r.passed();
    let total = r.scenarios.len();
    if json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        for (host, l3, l2) in &r.agents {
            println!(
                "{host}: L3 agent: {l3}\n{:w$}  OVS agent: {l2}",
                "",
                w = host.len()
            );
        }
        println!("lab ({}): {passed} of {total} scenarios passed", r.mode);
        if !r.after_restart.is_empty() {
            let again = r.after_restart.iter().filter(|s| s.passed).count();
            println!(
                "after restarting every vswitchd: {again} of {} scenarios passed",
                r.after_restart.len()
            );
        }
        if keep && r.mode != "simulation" {
            print_kept(&r);
        }
    }
    Ok(if passed == total && r.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How to explore a lab left up with `--keep`.
fn print_kept(r: &lab::Report) {
    println!("\nThe lab is up. Each host's vswitchd:");
    for (host, sock) in &r.sockets {
        println!("  vswitchctl --socket {sock} show    # {host}");
    }
    println!(
        "VMs: ip netns exec {}vm1 ping 10.1.0.13; remove it all with `vswitch lab down`",
        lab::NS_PREFIX
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let result = match cli.command {
        Command::GenTraffic {
            scenario,
            flows,
            size,
            count,
            warmup,
            out,
        } => gen_traffic_command(json, &scenario, flows, &size, count, warmup, &out),
        Command::Lab {
            action: Some(LabAction::Down),
            ..
        } => lab_down_command(json),
        Command::Lab {
            action: None,
            keep,
            sim,
            neutron,
            verbose,
            vswitchd,
        } => lab_command(
            json,
            LabFlags {
                keep,
                sim,
                neutron,
                verbose,
            },
            vswitchd,
        ),
    };
    result.unwrap_or_else(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })
}
