//! vswitchctl: inspect and control vswitch, with ovs-ofctl/ovs-vsctl habits.
//!
//! A command becomes a typed control request (one function per family of
//! commands below), the daemon's typed reply is printed as text (`text`)
//! or, with `--json`, as the reply's JSON. `trace`, `dump-flows`, `show`
//! and `router show` with `--scenario`/`--topology` run without a daemon,
//! on a switch built from files (`vswitch::offline`).
#![deny(unsafe_code)]

mod cli;
mod text;

use clap::Parser;
use cli::{
    BackendOpts, Cli, Command, ConntrackOp, DpctlOp, FipOp, PortOpts, RouterOp, Source, TopologyOp,
    VlogOp, VmPortOp,
};
use serde::Serialize;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vswitch::config::Backend;
use vswitch::control::protocol::PortKindArg;
use vswitch::control::{ControlError, Request, Response};
use vswitch::offline::{self, OfflineError};
use vswitch::render::{self, SwitchView, ViewError};

/// Why vswitchctl could not do what it was asked.
#[derive(Debug, thiserror::Error)]
enum CtlError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Offline(#[from] OfflineError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("give the packet to trace")]
    NoPacket,
    #[error("--duration {0}: give 0 < seconds <= 3600")]
    Duration(f64),
    #[error("give --scenario DIR or --topology FILE --host HOST")]
    NoSource,
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Refused(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vswitchctl: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What to print for `cli`'s command.
fn run(cli: &Cli) -> Result<String, CtlError> {
    if let Some(on) = offline_source(&cli.command) {
        return run_offline(cli, on);
    }
    if let Command::Capture {
        port,
        file,
        count,
        duration,
    } = &cli.command
    {
        if file == Path::new("-") {
            return capture_to_stdout(cli, port, *count, *duration);
        }
    }
    let request = request(&cli.command)?;
    let response = match vswitch::control::call(&cli.socket, &request) {
        // A refused topology file: its name before what is wrong where.
        Err(ControlError::Refused(why)) => match &cli.command {
            Command::Topology {
                op: TopologyOp::Load { file, .. },
            } => return Err(CtlError::Refused(format!("{}: {why}", file.display()))),
            _ => return Err(ControlError::Refused(why).into()),
        },
        r => r?,
    };
    if cli.json {
        return Ok(json(&response)?);
    }
    Ok(text::of(&response))
}

/// The files to build a switch from, for a command that can run without
/// a daemon and was given them.
fn offline_source(command: &Command) -> Option<&Source> {
    match command {
        Command::Trace { on, .. }
        | Command::DumpFlows { on, .. }
        | Command::Show { on }
        | Command::Router {
            op: RouterOp::Show { on, .. },
        } => (on.scenario.is_some() || on.topology.is_some()).then_some(on),
        _ => None,
    }
}

/// A reply as `--json` prints it: its JSON (`router show`: the routers).
fn json(response: &Response) -> Result<String, serde_json::Error> {
    match response {
        Response::RouterShow(r) => pretty(&r.routers),
        other => pretty(other),
    }
}

/// Indented JSON and a newline (keys in order, as `serde_json::Value`
/// keeps them).
fn pretty(value: &impl Serialize) -> Result<String, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

/// The control request for a command that talks to the daemon.
fn request(command: &Command) -> Result<Request, CtlError> {
    Ok(match command {
        Command::Trace {
            bridge,
            packet,
            frame,
            in_port,
            ..
        } => {
            if packet.is_none() && frame.is_none() {
                return Err(CtlError::NoPacket);
            }
            Request::Trace {
                bridge: bridge.clone(),
                packet: packet.clone(),
                frame: frame.clone(),
                in_port: in_port.clone(),
            }
        }
        Command::DumpFlows {
            bridge,
            flow,
            sort,
            rsort,
            ..
        } => Request::DumpFlows {
            bridge: bridge.clone(),
            matching: flow.clone(),
            sort: sort.clone().or_else(|| rsort.clone()),
            descending: rsort.is_some(),
        },
        Command::DumpAggregate { bridge, flow } => Request::DumpAggregate {
            bridge: bridge.clone(),
            matching: flow.clone(),
        },
        Command::DumpTables { bridge } => Request::DumpTables {
            bridge: bridge.clone(),
        },
        Command::Show { .. } => Request::Show {},
        Command::Router {
            op: RouterOp::Show { name, .. },
        } => Request::RouterShow {
            router: name.clone(),
        },
        Command::Router {
            op: RouterOp::Set { file },
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|source| CtlError::File {
                    path: file.clone(),
                    source,
                })?
            } else {
                read(file)?
            };
            let router = serde_json::from_str(&text).map_err(|e| CtlError::File {
                path: file.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            Request::RouterSet { router }
        }
        Command::Router {
            op: RouterOp::Del { name, if_exists },
        } => Request::RouterDel {
            name: name.clone(),
            if_exists: *if_exists,
        },
        Command::Router { op: RouterOp::List } => Request::RouterList {},
        Command::Vlog { op: VlogOp::List } => Request::Vlog { filter: None },
        Command::Dpctl {
            op: DpctlOp::DumpFlows,
        } => Request::DpctlDumpFlows {},
        Command::Vlog {
            op: VlogOp::Set { filter },
        } => Request::Vlog {
            filter: Some(filter.clone()),
        },
        Command::AddFlow { .. }
        | Command::AddFlows { .. }
        | Command::ModFlows { .. }
        | Command::DelFlows { .. } => flow_request(command)?,
        Command::AddBr { .. }
        | Command::DelBr { .. }
        | Command::AddPort { .. }
        | Command::DelPort { .. }
        | Command::SetPort { .. }
        | Command::DumpPorts { .. }
        | Command::FdbShow { .. } => port_request(command)?,
        Command::VmPort { op } => vm_port_request(op)?,
        Command::Fip { op } => fip_request(op)?,
        Command::Capture {
            port,
            file,
            count,
            duration,
        } => capture_request(port, file, *count, *duration)?,
        Command::Conntrack { op } => conntrack_request(op)?,
        Command::PmdStats => Request::PmdStats {},
        Command::Topology { op } => topology_request(op)?,
    })
}

/// add-flow, add-flows (a file, one flow a line, `#` comments), mod-flows,
/// del-flows.
fn flow_request(command: &Command) -> Result<Request, CtlError> {
    Ok(match command {
        Command::AddFlow { bridge, flow } => Request::AddFlow {
            bridge: bridge.clone(),
            flow: flow.clone(),
        },
        Command::AddFlows { bridge, file } => Request::AddFlows {
            bridge: bridge.clone(),
            flows: read(file)?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect(),
        },
        Command::ModFlows {
            bridge,
            flow,
            strict,
        } => Request::ModFlows {
            bridge: bridge.clone(),
            flow: flow.clone(),
            strict: *strict,
        },
        Command::DelFlows {
            bridge,
            r#match,
            strict,
        } => Request::DelFlows {
            bridge: bridge.clone(),
            matching: r#match.clone(),
            strict: *strict,
        },
        _ => unreachable!("not a flow command"),
    })
}

/// Bridges and ports: add-br, del-br, add-port, del-port, set-port,
/// dump-ports, fdb-show.
fn port_request(command: &Command) -> Result<Request, CtlError> {
    Ok(match command {
        Command::AddBr { bridge } => Request::AddBr {
            bridge: bridge.clone(),
        },
        Command::DelBr { bridge } => Request::DelBr {
            bridge: bridge.clone(),
        },
        Command::AddPort {
            bridge,
            port,
            ofport,
            opts,
            io,
        } => {
            let (backend, queues) = backend(io)?;
            Request::AddPort {
                bridge: bridge.clone(),
                port: port.clone(),
                ofport: *ofport,
                kind: port_kind(opts)?,
                peer: opts.peer.clone(),
                tag: opts.tag,
                trunks: opts.trunks.clone(),
                no_flood: opts.no_flood,
                backend,
                queues,
            }
        }
        Command::DelPort { port } => Request::DelPort { port: port.clone() },
        Command::SetPort {
            port,
            opts,
            io,
            unbind,
        } => {
            let (backend, queues) = backend(io)?;
            Request::SetPort {
                port: port.clone(),
                unbind: *unbind,
                kind: port_kind(opts)?,
                peer: opts.peer.clone(),
                tag: opts.tag,
                trunks: opts.trunks.clone(),
                no_flood: opts.no_flood,
                backend,
                queues,
            }
        }
        Command::DumpPorts { bridge, port } => Request::DumpPorts {
            bridge: bridge.clone(),
            port: port.clone(),
        },
        Command::FdbShow { bridge } => Request::FdbShow {
            bridge: bridge.clone(),
        },
        _ => unreachable!("not a port command"),
    })
}

fn port_kind(opts: &PortOpts) -> Result<Option<PortKindArg>, ControlError> {
    opts.kind.as_deref().map(str::parse).transpose()
}

/// The backend `--backend` and its options name, and `--queues`: read as
/// the daemon's configuration reads a port's (same keys, same errors);
/// capture paths made absolute (the daemon's working directory is not
/// ours).
fn backend(io: &BackendOpts) -> Result<(Option<Backend>, Option<usize>), CtlError> {
    let Some(kind) = &io.backend else {
        return Ok((None, io.queues));
    };
    let absolute = |p: &PathBuf| -> Result<String, CtlError> {
        std::path::absolute(p)
            .map(|p| p.display().to_string())
            .map_err(|source| CtlError::File {
                path: p.clone(),
                source,
            })
    };
    let mut b = serde_json::json!({ "backend": kind });
    if let Some(i) = &io.interface {
        b["interface"] = serde_json::json!(i);
    }
    if let Some(d) = io.depth {
        b["depth"] = serde_json::json!(d);
    }
    if let Some(r) = &io.pcap_rx {
        b["rx"] = serde_json::json!(absolute(r)?);
    }
    if let Some(t) = &io.pcap_tx {
        b["tx"] = serde_json::json!(absolute(t)?);
    }
    if io.looped {
        b["looped"] = serde_json::json!(true);
    }
    let backend = serde_json::from_value(b).map_err(ControlError::Backend)?;
    Ok((Some(backend), io.queues))
}

/// vm-port add, vm-port del.
fn vm_port_request(op: &VmPortOp) -> Result<Request, CtlError> {
    Ok(match op {
        VmPortOp::Add {
            name,
            device,
            network,
            mac,
            ip,
            host,
            ofport,
            no_port_security,
            io,
        } => {
            let mac = mac
                .parse()
                .map_err(|_| ControlError::NotAMac(mac.clone()))?;
            let ip = address("ip", ip)?;
            let (backend, queues) = backend(io)?;
            Request::VmPortAdd {
                name: name.clone(),
                device: device.clone(),
                host: host.clone(),
                network: network.clone(),
                mac,
                ip,
                no_port_security: *no_port_security,
                ofport: *ofport,
                backend,
                queues,
            }
        }
        VmPortOp::Del { name } => Request::VmPortDel { name: name.clone() },
    })
}

/// fip associate, fip disassociate.
fn fip_request(op: &FipOp) -> Result<Request, CtlError> {
    Ok(match op {
        FipOp::Associate {
            address: a,
            port,
            router,
        } => Request::FipAssociate {
            address: address("address", a)?,
            port: port.clone(),
            router: router.clone(),
        },
        FipOp::Disassociate { address: a } => Request::FipDisassociate {
            address: address("address", a)?,
        },
    })
}

/// conntrack dump, flush, stats.
fn conntrack_request(op: &ConntrackOp) -> Result<Request, CtlError> {
    let addr = |a: &Option<String>| a.as_deref().map(|a| address("addr", a)).transpose();
    Ok(match op {
        ConntrackOp::Dump { zone, addr: a } => Request::ConntrackDump {
            addr: addr(a)?,
            zone: *zone,
        },
        ConntrackOp::Flush { zone, addr: a } => Request::ConntrackFlush {
            addr: addr(a)?,
            zone: *zone,
        },
        ConntrackOp::Stats => Request::ConntrackStats {},
    })
}

/// capture: the file made absolute, the duration (seconds, at most an
/// hour) in milliseconds.
fn capture_request(
    port: &str,
    file: &Path,
    count: Option<u64>,
    duration: f64,
) -> Result<Request, CtlError> {
    if !(duration.is_finite() && duration > 0.0 && duration <= 3600.0) {
        return Err(CtlError::Duration(duration));
    }
    let file = std::path::absolute(file).map_err(|source| CtlError::File {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(Request::Capture {
        port: port.to_string(),
        file,
        count,
        duration_ms: Some((duration * 1000.0) as u64),
    })
}

/// `capture PORT -`: the daemon writes the capture into a directory of
/// ours (private, removed after), and we copy it to standard output as it
/// grows, so a reader downstream (`tcpdump -r -`) sees packets as they
/// come; the report goes to standard error.
fn capture_to_stdout(
    cli: &Cli,
    port: &str,
    count: Option<u64>,
    duration: f64,
) -> Result<String, CtlError> {
    use std::io::{Read, Write};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("vswitchctl-capture-{}-{nanos}", std::process::id()));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| CtlError::File {
                path: dir.clone(),
                source,
            })?;
    }
    let file = dir.join("capture.pcap");
    let request = capture_request(port, &file, count, duration)?;
    let socket = cli.socket.clone();
    let call = std::thread::spawn(move || vswitch::control::call(&socket, &request));
    let mut out = std::io::stdout().lock();
    let mut opened: Option<std::fs::File> = None;
    let mut buf = vec![0u8; 1 << 16];
    let copy = |f: &mut std::fs::File,
                out: &mut std::io::StdoutLock,
                buf: &mut [u8]|
     -> std::io::Result<()> {
        loop {
            let n = f.read(buf)?;
            if n == 0 {
                return out.flush();
            }
            out.write_all(&buf[..n])?;
        }
    };
    let mut broken_pipe = false;
    loop {
        let finished = call.is_finished();
        if opened.is_none() {
            opened = std::fs::File::open(&file).ok();
        }
        if let Some(f) = opened.as_mut() {
            if !broken_pipe && copy(f, &mut out, &mut buf).is_err() {
                // The reader went away: the capture runs to its end all
                // the same, unread.
                broken_pipe = true;
            }
        }
        if finished {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let result = call
        .join()
        .unwrap_or_else(|_| Err(ControlError::Refused("capture thread failed".into())));
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_dir(&dir);
    match result? {
        Response::Capture(c) => {
            eprintln!(
                "{} packet(s) captured on {} ({} dropped)",
                c.packets, c.port, c.dropped
            );
            Ok(String::new())
        }
        other => Ok(text::of(&other)),
    }
}

/// topology load (the file's text), topology show.
fn topology_request(op: &TopologyOp) -> Result<Request, CtlError> {
    Ok(match op {
        TopologyOp::Load { file, dry_run } => Request::TopologyLoad {
            toml: read_or_stdin(file)?,
            dry_run: *dry_run,
        },
        TopologyOp::Show => Request::TopologyShow {},
    })
}

fn address(argument: &'static str, text: &str) -> Result<Ipv4Addr, ControlError> {
    text.parse().map_err(|_| ControlError::NotAnAddress {
        argument,
        text: text.to_string(),
    })
}

/// `file`'s text, standard input's for `-`.
fn read_or_stdin(file: &Path) -> Result<String, CtlError> {
    if file == Path::new("-") {
        return std::io::read_to_string(std::io::stdin()).map_err(|source| CtlError::File {
            path: file.to_path_buf(),
            source,
        });
    }
    read(file)
}

fn read(file: &Path) -> Result<String, CtlError> {
    std::fs::read_to_string(file).map_err(|source| CtlError::File {
        path: file.to_path_buf(),
        source,
    })
}

/// trace, dump-flows, show and router show on a switch built from files.
fn run_offline(cli: &Cli, on: &Source) -> Result<String, CtlError> {
    let off = match (&on.scenario, &on.topology, &on.host) {
        (Some(dir), _, _) => offline::open(dir)?,
        (None, Some(file), Some(host)) => offline::open_topology(file, host)?,
        _ => return Err(CtlError::NoSource),
    };
    match &cli.command {
        Command::Trace {
            bridge,
            packet,
            frame,
            in_port,
            ..
        } => {
            let traces = match (frame, in_port) {
                (Some(hex), Some(port)) => vec![("frame".to_string(), off.trace_hex(port, hex)?)],
                _ => off.trace(bridge.as_deref(), packet.as_deref())?,
            };
            if cli.json {
                let v: Vec<_> = traces
                    .iter()
                    .map(|(label, t)| serde_json::json!({ "label": label, "trace": t }))
                    .collect();
                return Ok(pretty(&v)?);
            }
            Ok(traces
                .iter()
                .map(|(label, t)| format!("==== {label}\n{}\n", t.render()))
                .collect())
        }
        Command::DumpFlows {
            bridge,
            flow,
            sort,
            rsort,
            ..
        } => {
            if flow.is_some() || sort.is_some() || rsort.is_some() {
                return Err(CtlError::Refused(
                    "dump-flows: a selection or --sort/--rsort needs the daemon".into(),
                ));
            }
            let text = off.dump_flows(bridge)?;
            if cli.json {
                return Ok(pretty(&text.lines().collect::<Vec<_>>())?);
            }
            Ok(text)
        }
        Command::Show { .. } => {
            let view = SwitchView::of(&off.switch);
            if cli.json {
                return Ok(pretty(&view)?);
            }
            Ok(view.text())
        }
        Command::Router {
            op: RouterOp::Show { name, .. },
        } => {
            let routers = render::routers(&off.switch, name.as_deref())?;
            if cli.json {
                return Ok(pretty(&routers)?);
            }
            Ok(render::routers_text(&routers))
        }
        _ => unreachable!("only commands with a Source run offline"),
    }
}
