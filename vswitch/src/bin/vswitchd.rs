//! vswitchd: the dataplane of one host. `vswitchd --config host.toml`.
//!
//! Reads the configuration, starts the daemon and its control socket,
//! runs until SIGINT or SIGTERM, then stops both in order. Errors are
//! printed after `vswitchd: ` with what failed. `--check` only reads the
//! configuration and builds the switch it describes; `--pidfile` writes
//! the pid; under systemd (`Type=notify`) it says READY=1 once the
//! control socket and the database binding are up, STOPPING=1 when
//! asked to stop. SIGHUP is logged and otherwise ignored (changes go
//! through vswitchctl or the database).
#![deny(unsafe_code)]

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use vswitch::config::DaemonConfig;
use vswitch::control::ControlServer;
use vswitch::daemon::Daemon;
use vswitch::database::DatabaseBinding;
use vswitch::ofswitch::OpenFlowService;

#[derive(Parser)]
#[command(
    name = "vswitchd",
    version,
    about = "The vswitch dataplane daemon of one host"
)]
struct Args {
    /// Daemon configuration (TOML): host, topology, ports, workers, limits.
    #[arg(long)]
    config: PathBuf,
    /// Control socket (overrides the configuration).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The Open_vSwitch database to take bridges and ports from, as
    /// ovs-vswitchd does (`unix:/run/openvswitch/db.sock`; overrides the
    /// configuration's `ovsdb`).
    #[arg(long)]
    ovsdb: Option<String>,
    /// Only check the configuration: read it and its topology, build
    /// this host's switch, check the configured ports are on it; open
    /// nothing. Exit status 0 when it would start.
    #[arg(long)]
    check: bool,
    /// Write the daemon's pid to this file (removed on exit); refused
    /// when it names a running process.
    #[arg(long)]
    pidfile: Option<PathBuf>,
    /// Start from the configuration alone: the state file of the last
    /// run (topology changes, ports, flows, bindings made live) is set
    /// aside as `<file>.old` instead of put back.
    #[arg(long)]
    reset_state: bool,
    /// DPDK EAL arguments after `--` (replace the configuration's
    /// `[dpdk] eal_args`), e.g. `-- --no-huge -m 512 -l 1`.
    #[arg(last = true)]
    eal: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut cfg = match DaemonConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vswitchd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        return check(&args, cfg);
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.is_empty() => (f, "RUST_LOG".to_string()),
        _ => (
            cfg.log_level.clone(),
            format!("{}: log_level", args.config.display()),
        ),
    };
    if let Err(e) = vswitch::logging::init(&filter.0) {
        eprintln!("vswitchd: {}: {e}", filter.1);
        return ExitCode::FAILURE;
    }
    let _pidfile = match args.pidfile.as_deref().map(vswitch::os::PidFile::create) {
        Some(Err(e)) => {
            eprintln!("vswitchd: pidfile: {e}");
            return ExitCode::FAILURE;
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    if let Some(s) = args.socket {
        cfg.socket = s;
    }
    if let Some(db) = args.ovsdb {
        cfg.ovsdb = Some(db);
    }
    if !args.eal.is_empty() {
        cfg.dpdk.eal_args = args.eal.clone();
    }
    // The state of the last run, which takes the configuration's
    // topology's place.
    let state_path = cfg.state_path();
    if args.reset_state {
        let old = state_path.with_extension("json.old");
        match std::fs::rename(&state_path, &old) {
            Ok(()) => {
                tracing::info!(file = %old.display(), "state: the last run's set aside (--reset-state)")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!("vswitchd: {}: {e}", state_path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let saved = match vswitch::daemon::state::read(&state_path) {
        Ok(Some(s)) if s.host != cfg.host => {
            eprintln!(
                "vswitchd: {}: the state of host {}, not {} (start with --reset-state to set it aside)",
                state_path.display(),
                s.host,
                cfg.host
            );
            return ExitCode::FAILURE;
        }
        Ok(s) => s,
        Err(e) => {
            eprintln!("vswitchd: {e} (start with --reset-state to set it aside)");
            return ExitCode::FAILURE;
        }
    };
    let started = match &saved {
        Some(s) => Daemon::start_with(&cfg, s.topology.clone()),
        None => Daemon::start(&cfg),
    };
    let daemon = match started {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vswitchd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(s) = &saved {
        if let Err(e) = vswitch::daemon::state::restore(&daemon.shared, &state_path, s) {
            eprintln!("vswitchd: {e} (start with --reset-state to set it aside)");
            daemon.stop();
            return ExitCode::FAILURE;
        }
        tracing::info!(
            file = %state_path.display(),
            ports = s.topology.ports.len(),
            floating_ips = s.topology.floating_ips.len(),
            bridges = s.bridges.len(),
            bindings = s.bindings.len(),
            "state: the last run's put back (in place of the configuration's topology)"
        );
    }
    vswitch::daemon::state::keep(&daemon.shared, state_path);
    // The L3 agent's routers of the last run: put back now, or (under a
    // database) once it has put their ports back.
    match vswitch::l3agent::load_saved(&daemon.shared) {
        Ok(0) => {}
        Ok(n) => tracing::info!(routers = n, "l3: routers of the last run read"),
        Err(e) => tracing::warn!(error = %e, "l3: routers of the last run not read"),
    }
    if cfg.ovsdb.is_none() {
        match vswitch::l3agent::restore_pending(&daemon.shared) {
            Some(0) => {}
            Some(n) => tracing::info!(routers = n, "l3: the L3 agent's routers put back"),
            None => tracing::warn!(
                "l3: the L3 agent's routers of the last run do not fit the switch; not put back"
            ),
        }
    }
    let server = match ControlServer::start_with_group(
        &cfg.socket,
        cfg.socket_group.as_deref(),
        daemon.shared.clone(),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vswitchd: control socket: {e}");
            daemon.stop();
            return ExitCode::FAILURE;
        }
    };
    // Each bridge's management socket in the run directory.
    let rundir = cfg.run_dir();
    if let Err(e) = std::fs::create_dir_all(&rundir) {
        eprintln!("vswitchd: run directory {}: {e}", rundir.display());
        drop(server);
        daemon.stop();
        return ExitCode::FAILURE;
    }
    let of_service = match OpenFlowService::start(daemon.shared.clone(), &rundir) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!(
                "vswitchd: OpenFlow management sockets in {}: {e}",
                rundir.display()
            );
            drop(server);
            daemon.stop();
            return ExitCode::FAILURE;
        }
    };
    let database = match cfg
        .ovsdb
        .as_deref()
        .map(|db| DatabaseBinding::start(db, daemon.shared.clone(), Some(of_service.clone())))
    {
        Some(Err(e)) => {
            eprintln!("vswitchd: {e}");
            drop(server);
            daemon.stop();
            return ExitCode::FAILURE;
        }
        Some(Ok(b)) => Some(b),
        None => None,
    };
    vswitch::os::catch_stop_signals();
    vswitch::os::catch_hangup();
    tracing::info!(socket = %cfg.socket.display(), "control socket ready");
    notify(&format!(
        "READY=1\nSTATUS=host {}, control socket {}\nMAINPID={}",
        cfg.host,
        cfg.socket.display(),
        std::process::id()
    ));
    while !vswitch::os::stop_requested() {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if vswitch::os::take_hangups() > 0 {
            tracing::info!(
                "SIGHUP: vswitchd keeps running; change it with vswitchctl \
                 (or the database); the log filter with `vswitchctl vlog set`"
            );
        }
    }
    tracing::info!("stopping");
    notify("STOPPING=1");
    drop(database);
    drop(of_service);
    drop(server);
    daemon.stop();
    #[cfg(feature = "dpdk")]
    vswitch::io::dpdk::eal_cleanup();
    ExitCode::SUCCESS
}

/// `--check`: what the configuration builds, or why it does not.
fn check(args: &Args, mut cfg: DaemonConfig) -> ExitCode {
    if let Some(db) = &args.ovsdb {
        cfg.ovsdb = Some(db.clone());
    }
    match vswitch::daemon::check(&cfg) {
        Ok(r) => {
            println!(
                "{}: ok: host {}, {} bridge(s), {} port(s), {} router instance(s), {} port(s) bound to I/O",
                args.config.display(),
                r.host,
                r.bridges,
                r.ports,
                r.routers,
                r.bound
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vswitchd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Tells systemd (if it started us with `Type=notify`) `state`.
fn notify(state: &str) {
    if let Err(e) = vswitch::os::sd_notify(state) {
        tracing::warn!(error = %e, "systemd notification not sent");
    }
}
