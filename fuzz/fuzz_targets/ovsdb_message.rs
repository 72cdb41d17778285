//! Any bytes as what an OVSDB server sends: framed into JSON-RPC
//! messages, and every `update` (or any JSON value) applied to a replica
//! of the monitored tables: an error or a change, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovsdb::rpc::Framer;
use ovsdb::{Message, Replica};

fuzz_target!(|data: &[u8]| {
    let mut f = Framer::default();
    let mut r = Replica::default();
    f.push(data);
    while let Some(m) = f.next_message() {
        match m {
            Ok(Message::Notification { params, .. }) | Ok(Message::Request { params, .. }) => {
                for p in &params {
                    let _ = r.apply(p);
                }
            }
            Ok(Message::Response { result, .. }) => {
                let _ = r.apply(&result);
            }
            Err(_) => {}
        }
    }
});
