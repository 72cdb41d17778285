//! Any text as a request line on the control socket, decoded and handled
//! by a running daemon (compute1 of the spec's topology on in-memory
//! ports): a response, ok or an error, never a panic. Requests that would
//! make the daemon touch the machine (files, interfaces) are not sent:
//! `capture`, and anything naming a backend.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use vswitch::daemon::Daemon;

fn daemon() -> &'static Daemon {
    static D: OnceLock<Daemon> = OnceLock::new();
    D.get_or_init(|| {
        let topo = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/topologies/spec-example.toml");
        let text = format!(
            "host = \"compute1\"\ntopology = \"{topo}\"\nsocket = \"/nonexistent/unused.sock\"\nlog_level = \"off\"\n\
             [[ports]]\nname = \"qvo-vm1\"\nbackend = \"ring\"\n[[ports]]\nname = \"eth1\"\nbackend = \"ring\"\n"
        );
        let cfg: vswitch::config::DaemonConfig = toml::from_str(&text).expect("config");
        Daemon::start(&cfg).expect("daemon")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        let cmd = v.get("cmd").and_then(|c| c.as_str()).unwrap_or("");
        let touches_machine = cmd == "capture"
            || v.get("args")
                .and_then(|a| a.as_object())
                .is_some_and(|a| a.contains_key("backend"));
        if touches_machine {
            return;
        }
    }
    let r = vswitch::control::respond(&daemon().shared, line);
    assert!(r.get("ok").is_some(), "{r}");
});
