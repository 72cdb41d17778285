//! The few operating-system calls vswitch makes outside its I/O backends,
//! in one place: who we are (`euid`, `is_root`), group lookup, the file
//! mode mask, signalling a process and stopping it gracefully, and the
//! SIGINT/SIGTERM handler of a program that stops when asked.
//!
//! Every `unsafe` block of this module is a single libc call with its
//! preconditions written beside it. It calls nothing else of the crate;
//! `vswitchd`, the control server, devtools and tests call it.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Our effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether we run as root (network namespaces, raw sockets, chown).
pub fn is_root() -> bool {
    euid() == 0
}

/// Why a group name could not be resolved to an id.
#[derive(Debug, thiserror::Error)]
pub enum GroupLookupError {
    #[error("contains a NUL byte")]
    NulByte,
    #[error("no such group")]
    NotFound,
    #[error("{0}")]
    Os(#[from] io::Error),
}

/// The id of the group named `name`.
pub fn group_id(name: &str) -> Result<u32, GroupLookupError> {
    let cname = std::ffi::CString::new(name).map_err(|_| GroupLookupError::NulByte)?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getgrnam_r writes only into `grp` and `buf` (of the length
    // given) and sets `result` to null or to `grp`.
    let (rc, found, gid) = unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        (rc, !result.is_null(), grp.gr_gid)
    };
    match (rc, found) {
        (0, true) => Ok(gid),
        (0, false) => Err(GroupLookupError::NotFound),
        (e, _) => Err(io::Error::from_raw_os_error(e).into()),
    }
}

/// Runs `f` with the process's file mode creation mask set to `mask`, then
/// puts the previous mask back. The mask is process-wide: files other
/// threads create meanwhile get it too (only ever stricter, as callers
/// use it).
pub fn with_umask<T>(mask: libc::mode_t, f: impl FnOnce() -> T) -> T {
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(mask) };
    let out = f();
    // SAFETY: as above, restoring the mask.
    unsafe { libc::umask(old) };
    out
}

/// Sends `signal` (e.g. `libc::SIGTERM`) to process `pid`.
pub fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("pid {pid}")))?;
    // SAFETY: kill has no memory preconditions; a bad pid or signal is an
    // error return.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether process `pid` still runs: it exists and is not a zombie (a
/// child that exited and was not yet waited for) whose threads are all
/// gone. A multi-threaded process's main thread shows as a zombie as soon
/// as it exits, while its other threads (and its memory, its locks) may
/// still be going away.
pub fn is_running(pid: u32) -> bool {
    send_signal(pid, 0).is_ok() && !(is_zombie(pid) && threads(pid) <= 1)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Threads of `pid` still listed (0 once it is gone).
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Stops process `pid` gracefully: SIGTERM, then SIGKILL if it still runs
/// after `grace`. Returns whether it stopped within `grace`.
pub fn terminate(pid: u32, grace: Duration) -> bool {
    if send_signal(pid, libc::SIGTERM).is_err() {
        return true;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_running(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = send_signal(pid, libc::SIGKILL);
    false
}

/// Tells the service manager (systemd's `NOTIFY_SOCKET`, a path or an
/// abstract name after `@`) `state`, e.g. `READY=1`; nothing without
/// one. Errors are the socket's.
pub fn sd_notify(state: &str) -> io::Result<bool> {
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.to_string_lossy().into_owned();
    let addr = match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(&target)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// A pid file: written (`PID\n`) by [`PidFile::create`], removed when
/// dropped.
pub struct PidFile(std::path::PathBuf);

/// Why a pid file was not written.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("{}: already running as pid {pid}", path.display())]
    Running { path: std::path::PathBuf, pid: u32 },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}

impl PidFile {
    /// Writes this process's pid to `path` (atomically: a temporary file
    /// renamed), refusing when the file names another running process;
    /// a stale one is replaced.
    pub fn create(path: &std::path::Path) -> Result<PidFile, PidFileError> {
        let io_err = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                if pid != std::process::id() && is_running(pid) {
                    return Err(PidFileError::Running {
                        path: path.to_path_buf(),
                        pid,
                    });
                }
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id())).map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Set by the SIGINT/SIGTERM handler; read by [`stop_requested`].
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_stop_request(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// SIGHUPs received since [`catch_hangup`] (read by [`take_hangups`]).
static HANGUPS: AtomicU32 = AtomicU32::new(0);

extern "C" fn note_hangup(_: libc::c_int) {
    HANGUPS.fetch_add(1, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM only note that a stop was asked for (see
/// [`stop_requested`]) instead of ending the process: the program stops
/// in order (workers joined, sockets removed, namespaces deleted).
pub fn catch_stop_signals() {
    STOP_REQUESTED.store(false, Ordering::SeqCst);
    let handler = note_stop_request as *const () as libc::sighandler_t;
    // SAFETY: the handler is async-signal-safe: it only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Makes SIGHUP only counted (see [`take_hangups`]) instead of ending
/// the process.
pub fn catch_hangup() {
    HANGUPS.store(0, Ordering::SeqCst);
    let handler = note_hangup as *const () as libc::sighandler_t;
    // SAFETY: the handler is async-signal-safe: it only adds to an atomic.
    unsafe {
        libc::signal(libc::SIGHUP, handler);
    }
}

/// SIGHUPs received since the last call.
pub fn take_hangups() -> u32 {
    HANGUPS.swap(0, Ordering::SeqCst)
}

/// Whether SIGINT or SIGTERM arrived since [`catch_stop_signals`].
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_group_is_not_found() {
        assert!(matches!(
            group_id("no-such-group-x9"),
            Err(GroupLookupError::NotFound)
        ));
        assert!(matches!(group_id("a\0b"), Err(GroupLookupError::NulByte)));
    }

    #[test]
    fn terminate_stops_a_child_that_ignores_nothing() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        assert!(is_running(child.id()));
        assert!(terminate(child.id(), Duration::from_secs(5)));
        assert!(!child.wait().expect("wait").success());
    }
}
