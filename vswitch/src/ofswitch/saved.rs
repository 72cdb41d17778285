//! A bridge's flows kept across a restart of the switch: once a
//! controller or ovs-ofctl has changed a bridge's flows, they are written
//! to `<rundir>/<bridge>.flows` (ovs-ofctl's add-flow syntax, port
//! numbers, cookies kept; written to a temporary file and renamed, so a
//! crash leaves the old or the new file, never half of one), and when the
//! bridge comes back after a restart they are put back before any
//! controller connects. The controller then resyncs as it would with
//! Open vSwitch's flow-restore-wait: its cookie cleanup removes what it
//! no longer wants. A bridge deleted from the switch takes its file along.

use crate::daemon::Shared;
use pipeline::flow::text::{format_flow, parse_flow};
use pipeline::flow::NoPortNames;
use std::path::{Path, PathBuf};

pub(super) fn path(rundir: &Path, bridge: &str) -> PathBuf {
    rundir.join(format!("{bridge}.flows"))
}

/// Writes the bridge's flows now (nothing if the bridge is gone).
pub(super) fn save(shared: &Shared, rundir: &Path, bridge: &str) -> std::io::Result<()> {
    let sw = shared.switch();
    let Some(b) = sw.bridge(bridge) else {
        return Ok(());
    };
    let mut text = String::new();
    for t in b.tables() {
        for r in &t.rules {
            text.push_str(&format_flow(&r.flow, None, &NoPortNames));
            text.push('\n');
        }
    }
    let file = path(rundir, bridge);
    let tmp = file.with_extension("flows.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &file)
}

/// Puts back the flows saved for `bridge`, all or none; how many.
pub(super) fn restore(shared: &Shared, rundir: &Path, bridge: &str) -> Result<usize, String> {
    let file = path(rundir, bridge);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let flows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            parse_flow(l, &NoPortNames).map_err(|e| format!("{}:{}: {e}", file.display(), i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = flows.len();
    let now = shared.now_ns();
    shared
        .update(|st| st.config.add_flows(bridge, flows, now))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(n)
}

/// Forgets the saved flows of a bridge that is gone.
pub(super) fn forget(rundir: &Path, bridge: &str) {
    let _ = std::fs::remove_file(path(rundir, bridge));
}
