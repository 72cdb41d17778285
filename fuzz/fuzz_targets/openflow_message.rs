//! Any bytes as an OpenFlow stream a controller or ovs-ofctl sends: cut
//! into messages, each decoded (an error names what was wrong, never a
//! panic); what decodes encodes back, and decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::{next_frame, Frame, Message};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Frame::Complete(n)) = next_frame(rest) {
        let (msg, tail) = rest.split_at(n);
        rest = tail;
        if let Ok((h, m)) = Message::decode(msg) {
            let again = m.encode(h.xid);
            let (_, back) = Message::decode(&again).expect("an encoding decodes");
            assert_eq!(back, m);
        }
    }
});
