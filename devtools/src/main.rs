//! vswitch: the project's own tools. `vswitch lab` runs the seed article's
//! experiment on real Linux hosts in network namespaces.

use clap::{Parser, Subcommand};
use devtools::lab::{self, scenario::Outcome};
use std::path::PathBuf;
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
        #[arg(long)]
        sim: bool,
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

fn gen_traffic(
    scenario: &str,
    flows: usize,
    size: &str,
    count: Option<usize>,
    warmup: bool,
    out: &std::path::Path,
) -> Result<serde_json::Value, String> {
    use devtools::traffic;
    let s = traffic::TrafficScenario::parse(scenario)?;
    let t = devtools::spec::topology().map_err(|e| format!("lab topology: {e}"))?;
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GenTraffic {
            scenario,
            flows,
            size,
            count,
            warmup,
            out,
        } => match gen_traffic(&scenario, flows, &size, count, warmup, &out) {
            Ok(v) => {
                if cli.json {
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
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vswitch gen-traffic: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Lab {
            action: Some(LabAction::Down),
            ..
        } => match lab::down() {
            Ok(removed) => {
                if cli.json {
                    println!("{}", serde_json::json!({ "removed": removed }));
                } else if removed.is_empty() {
                    println!("no lab is up");
                } else {
                    for r in removed {
                        println!("removed {r}");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vswitch lab down: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Lab {
            action: None,
            keep,
            sim,
            verbose,
            vswitchd,
        } => {
            let json = cli.json;
            let mut progress = |o: &Outcome| {
                if !json {
                    print_outcome(o, verbose);
                }
            };
            let report = if sim || !lab::is_root() {
                if !sim {
                    eprintln!(
                        "vswitch lab: not running as root, so no network namespaces: running the \
                         same scenarios on the in-process multi-host simulation instead"
                    );
                }
                if !json {
                    println!(
                        "vswitch lab on the in-process simulation of the spec's example topology\n"
                    );
                }
                lab::run_sim(&mut progress)
            } else {
                if !json {
                    println!(
                        "vswitch lab: the spec's example topology in network namespaces ({}*), \
                         one vswitchd per host\n",
                        lab::NS_PREFIX
                    );
                }
                let opts = lab::LabOptions { keep, vswitchd };
                lab::run_kernel(&opts, &mut progress)
            };
            match report {
                Ok(r) => {
                    let passed = r.passed();
                    let total = r.scenarios.len();
                    if json {
                        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                    } else {
                        println!("lab ({}): {passed} of {total} scenarios passed", r.mode);
                        if keep && r.mode == "kernel" {
                            println!("\nThe lab is up. Each host's vswitchd:");
                            for (host, sock) in &r.sockets {
                                println!("  vswitchctl --socket {sock} show    # {host}");
                            }
                            println!(
                                "VMs: ip netns exec {}vm1 ping 10.1.0.13; remove it all with `vswitch lab down`",
                                lab::NS_PREFIX
                            );
                        }
                    }
                    if passed == total {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("vswitch lab: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
