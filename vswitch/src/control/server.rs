//! The control socket: guarding its file, accepting clients, answering
//! one request line with one response line.
//!
//! The socket is the daemon's whole authority, so its file is guarded:
//! mode 0600 (0660 and the configured group with `socket_group`), created
//! under a umask that never lets it exist with looser bits; its directory
//! is created 0755 and must be owned by us (or root) and writable by no
//! one else; a path someone else owns is never replaced; a stale socket of
//! our own is.
//!
//! Limits, so that a slow or hostile client cannot hold the daemon: lines
//! are capped at `MAX_REQUEST` bytes (a longer one is answered and the
//! connection closed), clients at `MAX_CLIENTS` (one more is told so and
//! closed), and each connection has read and write timeouts. Each client
//! has its own thread; the accept loop polls a stop flag.
//!
//! May call: `protocol` (decoding, encoding), `commands::handle`, `os`.
#![deny(unsafe_code)]

use super::commands::handle;
use super::error::ControlError;
use super::protocol::{Request, ResponseLine, MAX_CLIENTS, MAX_REQUEST};
use crate::daemon::Shared;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why the control socket could not be set up; names the path or group.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}: owned by uid {owner}, not by us (uid {us}) or root; refusing to put the control socket there", dir.display())]
    DirectoryNotOurs { dir: PathBuf, owner: u32, us: u32 },
    #[error("{}: writable by others (mode {mode:o}); the control socket's directory must be 0755 or stricter", dir.display())]
    DirectoryWritable { dir: PathBuf, mode: u32 },
    #[error("{}: exists and is owned by uid {owner}, not by us (uid {us}); refusing to replace it", path.display())]
    PathNotOurs { path: PathBuf, owner: u32, us: u32 },
    #[error("{}: exists and is not a socket; refusing to replace it", .0.display())]
    NotASocket(PathBuf),
    #[error("{}: another daemon is listening", .0.display())]
    InUse(PathBuf),
    #[error("{}: chown to gid {gid}: {source}", path.display())]
    Chown {
        path: PathBuf,
        gid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("socket_group `{group}`: {source}")]
    Group {
        group: String,
        #[source]
        source: crate::os::GroupLookupError,
    },
    /// The listener could not be set up or its thread started.
    #[error("{0}")]
    Listener(#[source] std::io::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SocketError + '_ {
    move |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates (0755) or checks the socket's directory: a directory, owned by
/// us or root, writable by neither group nor others.
fn check_socket_dir(dir: &Path) -> Result<(), SocketError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io_error(dir))?;
    }
    let md = std::fs::metadata(dir).map_err(io_error(dir))?;
    if !md.is_dir() {
        return Err(SocketError::NotADirectory(dir.to_path_buf()));
    }
    let us = crate::os::euid();
    if md.uid() != us && md.uid() != 0 {
        return Err(SocketError::DirectoryNotOurs {
            dir: dir.to_path_buf(),
            owner: md.uid(),
            us,
        });
    }
    if md.mode() & 0o022 != 0 {
        return Err(SocketError::DirectoryWritable {
            dir: dir.to_path_buf(),
            mode: md.mode() & 0o7777,
        });
    }
    Ok(())
}

/// Clears the way for a socket at `path`: nothing there, or a stale
/// socket of ours (a daemon that did not clean up), which is removed.
fn clear_socket_path(path: &Path) -> Result<(), SocketError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match std::fs::symlink_metadata(path) {
        Ok(md) => {
            let us = crate::os::euid();
            if md.uid() != us {
                return Err(SocketError::PathNotOurs {
                    path: path.to_path_buf(),
                    owner: md.uid(),
                    us,
                });
            }
            if !md.file_type().is_socket() {
                return Err(SocketError::NotASocket(path.to_path_buf()));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io_error(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Binds the control socket at `path` (see the module notes).
fn bind_socket(path: &Path, gid: Option<u32>) -> Result<UnixListener, SocketError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_socket_dir(dir)?;
    }
    clear_socket_path(path)?;
    // The socket file takes its mode from the umask at bind: never let it
    // exist with more than 0600, even for the moment before chmod.
    let listener =
        crate::os::with_umask(0o177, || UnixListener::bind(path)).map_err(io_error(path))?;
    let finish = || -> Result<(), SocketError> {
        if let Some(gid) = gid {
            std::os::unix::fs::chown(path, None, Some(gid)).map_err(|source| {
                SocketError::Chown {
                    path: path.to_path_buf(),
                    gid,
                    source,
                }
            })?;
        }
        let mode = if gid.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io_error(path))
    };
    if let Err(e) = finish() {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// The listening socket and its thread; dropping it stops both and
/// removes the socket file.
pub struct ControlServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl ControlServer {
    /// Listens on `path`, mode 0600 (see the module notes).
    pub fn start(path: &Path, shared: Arc<Shared>) -> Result<ControlServer, SocketError> {
        ControlServer::start_with_group(path, None, shared)
    }

    /// Listens on `path`; with a `group`, the socket is mode 0660 and
    /// belongs to that group (an unknown group is an error naming it).
    /// Errors name the path or group and leave nothing behind.
    pub fn start_with_group(
        path: &Path,
        group: Option<&str>,
        shared: Arc<Shared>,
    ) -> Result<ControlServer, SocketError> {
        let gid = group
            .map(|g| {
                crate::os::group_id(g).map_err(|source| SocketError::Group {
                    group: g.to_string(),
                    source,
                })
            })
            .transpose()?;
        let listener = bind_socket(path, gid)?;
        listener
            .set_nonblocking(true)
            .map_err(SocketError::Listener)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || accept_clients(&listener, &stopping, &shared))
            .map_err(SocketError::Listener)?;
        Ok(ControlServer {
            stop,
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accepts clients until `stop`, each served on its own thread, at most
/// `MAX_CLIENTS` at once.
fn accept_clients(listener: &UnixListener, stop: &AtomicBool, shared: &Arc<Shared>) {
    let clients = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if clients.load(Ordering::Acquire) >= MAX_CLIENTS {
                    let _ = write_line(
                        &mut stream,
                        &ResponseLine::error(&ControlError::TooManyClients),
                    );
                    continue;
                }
                clients.fetch_add(1, Ordering::AcqRel);
                let shared = shared.clone();
                let clients = clients.clone();
                let _ = std::thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || {
                        serve(stream, &shared);
                        clients.fetch_sub(1, Ordering::AcqRel);
                    });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn write_line(out: &mut impl Write, line: &ResponseLine) -> std::io::Result<()> {
    let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

/// Answers the requests of one client until it hangs up.
fn serve(stream: UnixStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let n = match (&mut reader)
            .take(MAX_REQUEST as u64 + 1)
            .read_line(&mut line)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let too_long = n > MAX_REQUEST;
        let answer = if too_long {
            ResponseLine::error(&ControlError::TooLong { limit: MAX_REQUEST })
        } else {
            answer(shared, &line)
        };
        if write_line(&mut writer, &answer).is_err() || too_long {
            return;
        }
    }
}

/// The answer to one request line: decoded, carried out, the result or
/// the error.
fn answer(shared: &Shared, line: &str) -> ResponseLine {
    ResponseLine::of(Request::decode(line.trim_end()).and_then(|req| handle(shared, &req)))
}

/// The response to one request line as the protocol's JSON object (what
/// the socket sends, for callers without one: the fuzz target).
pub fn respond(shared: &Shared, line: &str) -> Value {
    serde_json::to_value(answer(shared, line))
        .unwrap_or_else(|e| serde_json::json!({ "ok": false, "error": e.to_string() }))
}
