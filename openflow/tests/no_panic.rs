//! Decoding never panics: random bytes, random truncations and random
//! byte flips of valid messages (Neutron's FLOW_MODs) either decode or
//! return a `DecodeError` whose ERROR (type, code) is a real one.

mod fixtures;

use fixtures::neutron_flows;
use openflow::{flow_mod_text, next_frame, DecodeError, Frame, Message};
use proptest::prelude::*;

fn valid_messages() -> Vec<Vec<u8>> {
    neutron_flows().into_iter().map(|f| f.bytes).collect()
}

/// Decodes and, on success, renders FLOW_MODs as text, re-encodes and
/// decodes again: what we decode we must be able to print and write back.
fn check(bytes: &[u8]) {
    match Message::decode(bytes) {
        Ok((header, msg)) => {
            if let Message::FlowMod(fm) = &msg {
                assert!(flow_mod_text(fm).starts_with("table="));
            }
            let again = msg.encode(header.xid);
            assert_eq!(Message::decode(&again).map(|(_, m)| m), Ok(msg));
        }
        Err(e) => {
            let (t, _code) = e.error_type_code();
            assert!(t <= 13, "{e}: type {t}");
        }
    }
    let _ = next_frame(bytes);
}

/// Sets the header length to the buffer's, as a framer would deliver it.
fn with_length(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 4 {
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes();
        bytes[2..4].copy_from_slice(&len);
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_do_not_panic(
        version in prop_oneof![Just(4u8), any::<u8>()],
        msg_type in 0u8..32,
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![version, msg_type, 0, 0, 0, 0, 0, 1];
        bytes.extend(body);
        check(&with_length(bytes.clone()));
        check(&bytes);
    }

    #[test]
    fn truncated_valid_messages_do_not_panic(pick in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let all = valid_messages();
        let msg = &all[pick.index(all.len())];
        let keep = cut.index(msg.len());
        check(&msg[..keep]);
        check(&with_length(msg[..keep].to_vec()));
    }

    #[test]
    fn mutated_valid_messages_do_not_panic(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let all = valid_messages();
        let mut msg = all[pick.index(all.len())].clone();
        for (at, v) in flips {
            let i = at.index(msg.len());
            msg[i] = v;
        }
        check(&msg);
        check(&with_length(msg));
    }
}

/// A prefix of a FLOW_MOD is refused, unless it ends exactly between two
/// instructions: then it is a shorter FLOW_MOD, which must re-encode to
/// exactly the prefix. Prefixes that cut the fixed part or the match are
/// always refused.
#[test]
fn truncations_of_fixtures_are_refused_or_consistent() {
    let mut refused = 0;
    for msg in valid_messages() {
        let match_len = usize::from(u16::from_be_bytes([msg[50], msg[51]]));
        let instructions_at = 48 + match_len.div_ceil(8) * 8;
        for keep in 0..msg.len() {
            let cut = with_length(msg[..keep].to_vec());
            match Message::decode(&cut) {
                Ok((header, m)) => {
                    assert!(keep >= instructions_at, "decoded a {keep}-byte prefix");
                    assert_eq!(m.encode(header.xid), cut);
                }
                Err(_) => refused += 1,
            }
        }
    }
    assert!(refused > 1000);
}

#[test]
fn a_stream_of_messages_frames_back_into_them() {
    let all = valid_messages();
    let stream: Vec<u8> = all.concat();
    let mut at = 0;
    let mut seen = 0;
    while at < stream.len() {
        match next_frame(&stream[at..]).unwrap() {
            Frame::Complete(n) => {
                assert_eq!(&stream[at..at + n], &all[seen][..]);
                at += n;
                seen += 1;
            }
            Frame::NeedMore(_) => panic!("stream ends mid-message at {at}"),
        }
    }
    assert_eq!(seen, all.len());
    let last = &all[all.len() - 1];
    assert_eq!(
        next_frame(&last[..10]),
        Ok(Frame::NeedMore(last.len() - 10))
    );
    assert_eq!(next_frame(&last[..3]), Ok(Frame::NeedMore(5)));
    let mut bad = last.clone();
    bad[2..4].copy_from_slice(&[0, 4]);
    assert!(matches!(
        next_frame(&bad),
        Err(DecodeError::BadLength { .. })
    ));
}
