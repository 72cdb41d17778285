//! A flow-stats reply too long for one message is split into messages of
//! at most 64 KiB, chained with OFPMPF_REPLY_MORE, that together hold
//! every entry in order.

use openflow::*;

fn flow_stats(i: u16) -> FlowStats {
    let reg = Field {
        class: CLASS_NXM_1,
        number: 6,
    };
    FlowStats {
        table_id: 60,
        duration_sec: 1,
        duration_nsec: 0,
        priority: i,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: u64::from(i),
        packet_count: 0,
        byte_count: 0,
        match_: Match::new(vec![OxmEntry::exact(reg, u128::from(i))]),
        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
            port: u32::from(i),
            max_len: 0,
        }])],
    }
}

#[test]
fn long_flow_replies_split_under_64k() {
    let entries: Vec<FlowStats> = (0..3000).map(flow_stats).collect();
    let reply = MultipartReply {
        flags: 0,
        body: MultipartReplyBody::Flow(entries.clone()),
    };
    let whole = Message::MultipartReply(reply.clone()).encode(1);
    assert!(
        whole.len() > 2 * MAX_MESSAGE_LEN,
        "test needs a reply over two messages long"
    );

    let parts = reply.split();
    assert!(parts.len() >= 3);
    let mut back = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let bytes = Message::MultipartReply(part.clone()).encode(1);
        assert!(
            bytes.len() <= MAX_MESSAGE_LEN,
            "part {i} is {} bytes",
            bytes.len()
        );
        let (header, msg) = Message::decode(&bytes).expect("part decodes");
        assert_eq!(usize::from(header.length), bytes.len());
        let Message::MultipartReply(MultipartReply {
            flags,
            body: MultipartReplyBody::Flow(v),
        }) = msg
        else {
            panic!("part {i} is not a flow reply");
        };
        let last = i + 1 == parts.len();
        assert_eq!(
            flags & MULTIPART_MORE == 0,
            last,
            "part {i} flags {flags:#x}"
        );
        back.extend(v);
    }
    assert_eq!(back, entries);
}

#[test]
fn short_replies_stay_whole() {
    let reply = MultipartReply {
        flags: MULTIPART_MORE,
        body: MultipartReplyBody::Flow((0..3).map(flow_stats).collect()),
    };
    let parts = reply.split();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].flags, 0);
    let empty = MultipartReply {
        flags: 0,
        body: MultipartReplyBody::PortDesc(vec![]),
    };
    assert_eq!(empty.split(), vec![empty.clone()]);
}
