//! A client of the OVSDB management protocol (RFC 7047), as a switch
//! daemon uses it against `ovsdb-server`: the database is the server's,
//! this crate only reads (monitors) and writes (transacts) it.
//!
//! - `datum`: the protocol's values (atoms, sets, maps) and their JSON.
//! - `rpc`: JSON-RPC 1.0 messages and their framing on a stream.
//! - `replica`: the rows of the monitored tables, kept current by the
//!   server's `update` notifications.
//! - `transaction`: the operations of a `transact` request.
//! - `stream`: OVS's connection targets (`unix:PATH`, `tcp:HOST:PORT`) and
//!   the stream a connection is (OpenFlow controllers use them too).
//! - `connection`: a blocking connection (unix or TCP) that answers the
//!   server's echo probes.
//! - `local`: a private `ovsdb-server` in a directory (tests, the lab).
//!
//! Nothing here knows the Open_vSwitch schema; the daemon does.
#![deny(unsafe_code)]

pub mod connection;
pub mod datum;
pub mod local;
pub mod replica;
pub mod rpc;
pub mod stream;
pub mod transaction;

pub use connection::{Connection, ConnectionError};
pub use datum::{Atom, Datum, DatumError, Uuid};
pub use local::{LocalServer, LocalServerError};
pub use replica::{Replica, Row, UpdateError};
pub use rpc::{Message, RpcError};
pub use stream::{BadTarget, Stream, Target};
pub use transaction::{Condition, Operation};
