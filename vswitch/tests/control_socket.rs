//! The control socket's file and directory: mode 0600 (0660 and a group
//! with `socket_group`), a directory we own and no one else may write, a
//! path someone else owns never replaced, a stale socket of ours replaced.
//! Request size and client limits are tested in control_commands.rs
//! (`malformed_and_oversized_requests_are_refused`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use vswitch::config::DaemonConfig;
use vswitch::control::ControlServer;
use vswitch::daemon::Daemon;

fn topology_path() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml")
        .display()
        .to_string()
}

fn daemon() -> Daemon {
    let text = format!(
        "host = \"compute1\"\ntopology = \"{}\"\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"ring\"\n",
        topology_path()
    );
    let cfg: DaemonConfig = toml::from_str(&text).expect("config");
    Daemon::start(&cfg).expect("daemon")
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("vswitch-sock-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

use vswitch::os::{euid, is_root};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

fn answers(sock: &Path) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = writeln!(s, r#"{{"v":1,"cmd":"version"}}"#);
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.contains("\"ok\":true")
}

#[test]
fn socket_is_mode_0600_and_ours_by_default() {
    let tmp = TempDir::new("default");
    let d = daemon();
    let sock = tmp.0.join("ctl.sock");
    let server = ControlServer::start(&sock, d.shared.clone()).expect("socket");
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(
        std::fs::symlink_metadata(&sock).expect("stat").uid(),
        euid()
    );
    assert!(answers(&sock));
    drop(server);
    assert!(!sock.exists(), "the socket is removed on stop");
    d.stop();
}

#[test]
fn missing_directories_are_created_0755_or_stricter() {
    let tmp = TempDir::new("mkdir");
    let d = daemon();
    let dir = tmp.0.join("a/b");
    let sock = dir.join("ctl.sock");
    let _server = ControlServer::start(&sock, d.shared.clone()).expect("socket");
    for p in [tmp.0.join("a"), dir.clone()] {
        let m = mode(&p);
        assert_eq!(m & 0o022, 0, "{}: mode {m:o}", p.display());
        assert_eq!(m & 0o700, 0o700, "{}: mode {m:o}", p.display());
        assert_eq!(std::fs::metadata(&p).expect("stat").uid(), euid());
    }
    assert!(answers(&sock));
    d.stop();
}

#[test]
fn a_directory_writable_by_others_is_refused() {
    let d = daemon();
    for m in [0o777, 0o1777, 0o775] {
        let tmp = TempDir::new(&format!("loose{m:o}"));
        std::fs::set_permissions(&tmp.0, std::fs::Permissions::from_mode(m)).expect("chmod");
        let sock = tmp.0.join("ctl.sock");
        let err = ControlServer::start(&sock, d.shared.clone())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains(&tmp.0.display().to_string()) && err.contains("writable by others"),
            "{err}"
        );
        assert!(!sock.exists(), "nothing created for mode {m:o}");
    }
    d.stop();
}

#[test]
fn a_stale_socket_of_ours_is_replaced() {
    let tmp = TempDir::new("stale");
    let d = daemon();
    let sock = tmp.0.join("ctl.sock");
    // A daemon that died without cleaning up: the file stays, no listener.
    drop(UnixListener::bind(&sock).expect("bind"));
    assert!(sock.exists());
    assert!(UnixStream::connect(&sock).is_err());
    let _server = ControlServer::start(&sock, d.shared.clone()).expect("replaces it");
    assert!(answers(&sock));
    assert_eq!(mode(&sock), 0o600);
    d.stop();
}

#[test]
fn a_live_socket_or_a_file_that_is_not_a_socket_is_not_replaced() {
    let tmp = TempDir::new("live");
    let d = daemon();
    let sock = tmp.0.join("ctl.sock");
    let _first = ControlServer::start(&sock, d.shared.clone()).expect("first");
    let err = ControlServer::start(&sock, d.shared.clone())
        .err()
        .expect("second refused")
        .to_string();
    assert!(err.contains("another daemon is listening"), "{err}");
    assert!(answers(&sock), "the first daemon still answers");

    let file = tmp.0.join("notes.txt");
    std::fs::write(&file, "keep me").expect("write");
    let err = ControlServer::start(&file, d.shared.clone())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains(&file.display().to_string()) && err.contains("not a socket"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("still there"),
        "keep me"
    );
    d.stop();
}

#[test]
fn a_path_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipping: needs root (to chown a file to uid 65534)");
        return;
    }
    let tmp = TempDir::new("foreign");
    let d = daemon();
    // Someone else's socket (stale) and someone else's plain file.
    let sock = tmp.0.join("ctl.sock");
    drop(UnixListener::bind(&sock).expect("bind"));
    let file = tmp.0.join("other");
    std::fs::write(&file, "theirs").expect("write");
    for p in [&sock, &file] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).expect("chown");
        let err = ControlServer::start(p, d.shared.clone())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains(&p.display().to_string()) && err.contains("owned by uid 65534"),
            "{err}"
        );
        let md = std::fs::symlink_metadata(p).expect("still there");
        assert_eq!(md.uid(), 65534, "left as it was");
    }
    // A directory owned by someone else is refused too.
    let theirs = tmp.0.join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
    let err = ControlServer::start(&theirs.join("ctl.sock"), d.shared.clone())
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains(&theirs.display().to_string()) && err.contains("owned by uid 65534"),
        "{err}"
    );
    d.stop();
}

/// A group that exists on any Debian-like system and that root can give
/// files to.
fn some_group() -> Option<(&'static str, u32)> {
    ["nogroup", "daemon", "nobody", "root"]
        .into_iter()
        .find_map(|g| vswitch::os::group_id(g).ok().map(|id| (g, id)))
}

#[test]
fn socket_group_makes_it_0660_in_that_group() {
    if !is_root() {
        eprintln!("skipping: needs root (to give the socket to another group)");
        return;
    }
    let (name, gid) = some_group().expect("a system group");
    let tmp = TempDir::new("group");
    let d = daemon();
    let sock = tmp.0.join("ctl.sock");
    let _server =
        ControlServer::start_with_group(&sock, Some(name), d.shared.clone()).expect("socket");
    let md = std::fs::symlink_metadata(&sock).expect("stat");
    assert_eq!(md.mode() & 0o7777, 0o660);
    assert_eq!(md.gid(), gid, "group {name}");
    assert_eq!(md.uid(), euid());
    assert!(answers(&sock));
    d.stop();
}

#[test]
fn an_unknown_socket_group_is_an_error_naming_it() {
    let tmp = TempDir::new("nogroup");
    let d = daemon();
    let sock = tmp.0.join("ctl.sock");
    let err = ControlServer::start_with_group(&sock, Some("no-such-group-x9"), d.shared.clone())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("no-such-group-x9"), "{err}");
    assert!(!sock.exists(), "nothing created");
    d.stop();

    // In the config file: refused when it is read.
    let conf = tmp.0.join("host.toml");
    std::fs::write(
        &conf,
        format!(
            "host = \"compute1\"\ntopology = \"{}\"\nsocket_group = \"no-such-group-x9\"\n",
            topology_path()
        ),
    )
    .expect("write");
    let err = DaemonConfig::load(&conf).expect_err("refused").to_string();
    assert!(
        err.contains("socket_group `no-such-group-x9`: no such group")
            && err.contains(&conf.display().to_string()),
        "{err}"
    );
}
