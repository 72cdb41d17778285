//! The TCP state machine, after Linux's `nf_conntrack_proto_tcp` (without
//! window tracking): enough to classify handshakes, data, FIN and RST
//! closes, retransmissions and tuple reuse the way Linux does.

use super::tuple::Dir;

pub const FIN: u16 = 0x001;
pub const SYN: u16 = 0x002;
pub const RST: u16 = 0x004;
pub const ACK: u16 = 0x010;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    SynSent,
    SynRecv,
    Established,
    /// A FIN was seen (from either side).
    FinWait,
    /// The replier closed first.
    CloseWait,
    /// Both sides sent FIN; waiting for the last ACK.
    LastAck,
    TimeWait,
    Close,
}

/// May a connection start with these flags? (Linux with `tcp_loose=1`
/// picks up mid-stream connections from an ACK; RST/FIN alone or SYN with
/// RST/FIN never start one.)
pub fn valid_new(flags: u16) -> bool {
    let syn = flags & SYN != 0;
    if flags & RST != 0 {
        return false;
    }
    if syn {
        return flags & (ACK | FIN) == 0;
    }
    flags & ACK != 0
}

/// The state of a new connection.
pub fn initial(flags: u16) -> TcpState {
    if flags & SYN != 0 {
        TcpState::SynSent
    } else {
        // Picked up mid-stream.
        TcpState::Established
    }
}

/// The state after a packet with `flags` going `dir`, or None if Linux
/// would call the packet invalid.
pub fn next(st: TcpState, dir: Dir, flags: u16) -> Option<TcpState> {
    use TcpState::*;
    let syn = flags & SYN != 0;
    let ack = flags & ACK != 0;
    let fin = flags & FIN != 0;
    let rst = flags & RST != 0;
    if rst {
        return Some(Close);
    }
    if syn && (fin) {
        return None;
    }
    Some(match (st, dir) {
        // Handshake.
        (SynSent, Dir::Orig) if syn && !ack => SynSent, // retransmitted SYN
        (SynSent, Dir::Reply) if syn && ack => SynRecv,
        (SynSent, Dir::Reply) if syn => SynRecv, // simultaneous open
        (SynSent, _) if !syn => return None,
        (SynRecv, Dir::Orig) if ack && !syn => Established,
        (SynRecv, Dir::Reply) if syn && ack => SynRecv, // retransmitted SYN/ACK
        (SynRecv, _) if syn => return None,
        (SynRecv, _) => {
            if fin {
                FinWait
            } else {
                SynRecv
            }
        }
        // A new SYN on a closed connection's tuple starts over.
        (TimeWait | Close, Dir::Orig) if syn && !ack => SynSent,
        (_, _) if syn && !ack => return None,
        (Established, Dir::Orig) if fin => FinWait,
        (Established, Dir::Reply) if fin => CloseWait,
        (Established, _) => Established,
        (FinWait, Dir::Reply) if fin => LastAck,
        (FinWait, _) => FinWait,
        (CloseWait, Dir::Orig) if fin => LastAck,
        (CloseWait, _) => CloseWait,
        (LastAck, _) if ack && !fin => TimeWait,
        (LastAck, _) => LastAck,
        (TimeWait, _) => TimeWait,
        (Close, _) => Close,
        (SynSent, _) => SynSent,
    })
}

#[cfg(test)]
mod tests {
    use super::TcpState::*;
    use super::*;

    fn walk(steps: &[(Dir, u16)]) -> Vec<Option<TcpState>> {
        let mut st = initial(steps[0].1);
        let mut out = vec![Some(st)];
        for &(d, f) in &steps[1..] {
            let n = next(st, d, f);
            out.push(n);
            if let Some(n) = n {
                st = n;
            }
        }
        out
    }

    #[test]
    fn handshake_data_and_fin_close() {
        use Dir::*;
        let got = walk(&[
            (Orig, SYN),
            (Reply, SYN | ACK),
            (Orig, ACK),
            (Orig, ACK),
            (Reply, ACK),
            (Orig, FIN | ACK),
            (Reply, FIN | ACK),
            (Orig, ACK),
        ]);
        assert_eq!(
            got,
            [
                SynSent,
                SynRecv,
                Established,
                Established,
                Established,
                FinWait,
                LastAck,
                TimeWait
            ]
            .map(Some)
        );
    }

    #[test]
    fn retransmits_resets_and_invalid_starts() {
        use Dir::*;
        assert_eq!(
            walk(&[
                (Orig, SYN),
                (Orig, SYN),
                (Reply, SYN | ACK),
                (Reply, SYN | ACK)
            ]),
            [SynSent, SynSent, SynRecv, SynRecv].map(Some)
        );
        assert_eq!(next(Established, Reply, RST | ACK), Some(Close));
        assert_eq!(
            next(SynSent, Reply, ACK),
            None,
            "ACK without SYN/ACK in SYN_SENT"
        );
        assert_eq!(next(Close, Orig, SYN), Some(SynSent), "tuple reuse");
        assert_eq!(next(Established, Orig, SYN | FIN), None);
        assert!(
            valid_new(SYN)
                && valid_new(ACK)
                && !valid_new(RST)
                && !valid_new(SYN | ACK)
                && !valid_new(FIN)
        );
    }
}
