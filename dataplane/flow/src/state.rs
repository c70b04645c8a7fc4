//! Connection states and idle timeouts (SEMANTICS.md, "Connection
//! tracking").
//!
//! Every packet that hits a flow (step 6 of the packet path) goes through
//! [`transition`], which returns the flow's next state and its new expiry.
//! The machine is deliberately loose: palisade is a stateful firewall, not a
//! TCP validator. Sequence numbers and windows are not checked; the states
//! exist to pick the idle timeout and to notice when a connection is over.
//!
//! TCP, by the packet's flags (RST first, then FIN, then SYN/ACK):
//!
//! | state | packet | next | timeout |
//! | --- | --- | --- | --- |
//! | any but `TcpClosed` | RST | `TcpClosed` | `tcp_closing`, not refreshed |
//! | `TcpSynSent` | SYN+ACK or SYN from the responder | `TcpSynReceived` | `tcp_transitory` |
//! | `TcpSynReceived` | ACK without SYN from the initiator | `TcpEstablished` | `tcp_established` |
//! | not yet closing | FIN | `TcpClosing` | `tcp_closing` |
//! | `TcpClosing` | FIN from the side that had not sent one | `TcpClosed` | `tcp_closing`, not refreshed |
//! | `TcpClosed` | SYN without ACK | unchanged, [`FlowUpdate::Restart`] | — |
//! | any other | anything else | unchanged | the state's, refreshed |
//!
//! "TCP closing (FIN / RST seen) 120 s, then removed; a RST ends the
//! connection": after a RST or the second FIN the entry stays for exactly
//! `tcp_closing` (stragglers and the last ACK still pass) and is then
//! removed; packets in `TcpClosed` do not extend it, and a new SYN on the
//! same tuple is reported as [`FlowUpdate::Restart`] so that the caller
//! re-evaluates it against the policy as the new connection it is. After a
//! single FIN (half-close) every packet refreshes `tcp_closing`.
//!
//! A SYN inside an established connection is just a packet of that
//! connection. A flow first seen mid-stream (its first packet is not a bare
//! SYN — e.g. the flow predates a restart) starts `TcpEstablished`, as a
//! loose tracker does.
//!
//! UDP: `UdpOneWay` until a packet comes back from the responder, then
//! `UdpStream`. ICMP / ICMPv6 echo (keyed by identifier): `IcmpRequest` until
//! a reply, then `IcmpReplied`, 30 s either way. Other protocols: `Other`,
//! 600 s.

use thiserror::Error;

use crate::key::{Direction, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};

/// A point in time, in whole seconds since an epoch the caller chooses
/// (e.g. the appliance's start). Monotonic; `u32` lasts 136 years. One
/// second is the granularity of every idle timeout, so expiry is exact to
/// within a second.
pub type Seconds = u32;

/// Errors validating per-ENI timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TimeoutError {
    /// `TcpEstablishedTimeout` outside 60–432000 s.
    #[error("TcpEstablishedTimeout {0} s is outside 60-432000")]
    TcpEstablishedOutOfRange(u32),
    /// `UdpStreamTimeout` outside 60–180 s.
    #[error("UdpStreamTimeout {0} s is outside 60-180")]
    UdpStreamOutOfRange(u32),
    /// `UdpTimeout` (one direction seen) outside 30–60 s.
    #[error("UdpTimeout {0} s is outside 30-60")]
    UdpOneWayOutOfRange(u32),
}

/// AWS's ranges for the three settings, in seconds.
const TCP_ESTABLISHED_MIN: u32 = 60;
const TCP_ESTABLISHED_MAX: u32 = 432_000;
const UDP_STREAM_MIN: u32 = 60;
const UDP_STREAM_MAX: u32 = 180;
const UDP_ONEWAY_MIN: u32 = 30;
const UDP_ONEWAY_MAX: u32 = 60;

/// Idle timeouts of one ENI, in seconds.
///
/// The three AWS settings are validated by [`Timeouts::new`]; the others are
/// palisade's fixed choices (SEMANTICS.md). Fields are private so a
/// `Timeouts` always holds valid values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    tcp_established: u32,
    tcp_transitory: u32,
    tcp_closing: u32,
    udp_stream: u32,
    udp_oneway: u32,
    icmp: u32,
    other: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Timeouts {
    /// SEMANTICS.md's defaults: TCP established 432000 s (5 days), UDP
    /// stream 180 s, UDP one-way 30 s, and palisade's fixed values.
    pub const DEFAULT: Self = Self {
        tcp_established: 432_000,
        tcp_transitory: Self::TCP_TRANSITORY,
        tcp_closing: Self::TCP_CLOSING,
        udp_stream: 180,
        udp_oneway: 30,
        icmp: Self::ICMP,
        other: Self::OTHER,
    };

    /// TCP not yet established (SYN sent / SYN received).
    pub const TCP_TRANSITORY: u32 = 120;
    /// TCP after a FIN or RST.
    pub const TCP_CLOSING: u32 = 120;
    /// ICMP echo.
    pub const ICMP: u32 = 30;
    /// Protocols other than TCP, UDP and ICMP.
    pub const OTHER: u32 = 600;

    /// An ENI's timeouts from its three settings (AWS's
    /// `ConnectionTrackingSpecification`), checked against AWS's ranges.
    pub fn new(
        tcp_established: u32,
        udp_stream: u32,
        udp_oneway: u32,
    ) -> Result<Self, TimeoutError> {
        if !(TCP_ESTABLISHED_MIN..=TCP_ESTABLISHED_MAX).contains(&tcp_established) {
            return Err(TimeoutError::TcpEstablishedOutOfRange(tcp_established));
        }
        if !(UDP_STREAM_MIN..=UDP_STREAM_MAX).contains(&udp_stream) {
            return Err(TimeoutError::UdpStreamOutOfRange(udp_stream));
        }
        if !(UDP_ONEWAY_MIN..=UDP_ONEWAY_MAX).contains(&udp_oneway) {
            return Err(TimeoutError::UdpOneWayOutOfRange(udp_oneway));
        }
        Ok(Self {
            tcp_established,
            udp_stream,
            udp_oneway,
            ..Self::default()
        })
    }

    /// [`Self::new`] for settings checked already (a compiled policy's),
    /// without an error path: each value is pulled into its range, which
    /// leaves a valid one unchanged. Branch-free, so a caller that reads
    /// one field pays for that field's clamp alone.
    #[inline(always)]
    #[must_use]
    pub const fn clamped(tcp_established: u32, udp_stream: u32, udp_oneway: u32) -> Self {
        const fn clamp(value: u32, low: u32, high: u32) -> u32 {
            if value < low {
                low
            } else if value > high {
                high
            } else {
                value
            }
        }
        Self {
            tcp_established: clamp(tcp_established, TCP_ESTABLISHED_MIN, TCP_ESTABLISHED_MAX),
            udp_stream: clamp(udp_stream, UDP_STREAM_MIN, UDP_STREAM_MAX),
            udp_oneway: clamp(udp_oneway, UDP_ONEWAY_MIN, UDP_ONEWAY_MAX),
            ..Self::DEFAULT
        }
    }

    /// `TcpEstablishedTimeout`.
    pub const fn tcp_established(&self) -> u32 {
        self.tcp_established
    }
    /// TCP before establishment.
    pub const fn tcp_transitory(&self) -> u32 {
        self.tcp_transitory
    }
    /// TCP after FIN / RST.
    pub const fn tcp_closing(&self) -> u32 {
        self.tcp_closing
    }
    /// `UdpStreamTimeout`.
    pub const fn udp_stream(&self) -> u32 {
        self.udp_stream
    }
    /// `UdpTimeout`.
    pub const fn udp_oneway(&self) -> u32 {
        self.udp_oneway
    }
    /// ICMP echo.
    pub const fn icmp(&self) -> u32 {
        self.icmp
    }
    /// Other protocols.
    pub const fn other(&self) -> u32 {
        self.other
    }

    /// The idle timeout of a state.
    pub const fn for_state(&self, state: FlowState) -> u32 {
        match state {
            FlowState::TcpSynSent | FlowState::TcpSynReceived => self.tcp_transitory,
            FlowState::TcpEstablished => self.tcp_established,
            FlowState::TcpClosing | FlowState::TcpClosed => self.tcp_closing,
            FlowState::UdpOneWay => self.udp_oneway,
            FlowState::UdpStream => self.udp_stream,
            FlowState::IcmpRequest | FlowState::IcmpReplied => self.icmp,
            FlowState::Other => self.other,
        }
    }
}

/// TCP header flags, as the wire carries them (byte 13 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No flags; what non-TCP packets pass.
    pub const NONE: Self = Self(0);
    /// FIN.
    pub const FIN: Self = Self(0x01);
    /// SYN.
    pub const SYN: Self = Self(0x02);
    /// RST.
    pub const RST: Self = Self(0x04);
    /// PSH.
    pub const PSH: Self = Self(0x08);
    /// ACK.
    pub const ACK: Self = Self(0x10);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = Self;
    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// The state of a tracked flow. One byte; the protocol is implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FlowState {
    /// TCP: the initiator's SYN seen.
    TcpSynSent,
    /// TCP: the responder answered the SYN.
    TcpSynReceived,
    /// TCP: handshake complete (or flow picked up mid-stream).
    TcpEstablished,
    /// TCP: one side sent FIN.
    TcpClosing,
    /// TCP: both FINs or a RST seen; removed `tcp_closing` after that.
    TcpClosed,
    /// UDP seen in one direction only.
    UdpOneWay,
    /// UDP seen in both directions.
    UdpStream,
    /// ICMP echo request seen, no reply yet.
    IcmpRequest,
    /// ICMP echo reply seen.
    IcmpReplied,
    /// Any other protocol, tracked by addresses and protocol.
    Other,
}

impl FlowState {
    /// Every state, by its `u8` value.
    const BY_VALUE: [Self; 10] = [
        Self::TcpSynSent,
        Self::TcpSynReceived,
        Self::TcpEstablished,
        Self::TcpClosing,
        Self::TcpClosed,
        Self::UdpOneWay,
        Self::UdpStream,
        Self::IcmpRequest,
        Self::IcmpReplied,
        Self::Other,
    ];

    /// The state stored as `value` (`state as u8`); an out-of-range byte,
    /// which only a corrupted entry could hold, reads as `Other`.
    pub(crate) const fn from_u8(value: u8) -> Self {
        if (value as usize) < Self::BY_VALUE.len() {
            Self::BY_VALUE[value as usize]
        } else {
            Self::Other
        }
    }

    /// The state a flow starts in, from its first packet.
    pub const fn initial(protocol: u8, flags: TcpFlags) -> Self {
        match protocol {
            IPPROTO_TCP => {
                if flags.contains(TcpFlags::RST) {
                    Self::TcpClosed
                } else if flags.contains(TcpFlags::FIN) {
                    Self::TcpClosing
                } else if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
                    Self::TcpSynSent
                } else {
                    Self::TcpEstablished
                }
            }
            IPPROTO_UDP => Self::UdpOneWay,
            IPPROTO_ICMP | IPPROTO_ICMPV6 => Self::IcmpRequest,
            _ => Self::Other,
        }
    }

    /// Whether the state is TCP's final one, whose timer packets do not
    /// refresh.
    const fn is_final(self) -> bool {
        matches!(self, Self::TcpClosed)
    }
}

/// FINs seen so far, per direction. Kept in the entry beside the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FinsSeen {
    /// The initiator sent a FIN.
    pub forward: bool,
    /// The responder sent a FIN.
    pub reverse: bool,
}

/// What the caller does with a packet that hit a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowUpdate {
    /// The packet belongs to the flow: forward it (after the caller's own
    /// generation and NACL checks).
    Forward,
    /// The flow's connection is over (RST or both FINs seen) and this SYN
    /// opens a new one on the same addresses and ports: remove the entry and
    /// treat the packet as a miss, so the policy decides afresh.
    Restart,
}

/// The outcome of one packet on a flow's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state after the packet.
    pub state: FlowState,
    /// FINs seen after the packet.
    pub fins: FinsSeen,
    /// The expiry after the packet.
    pub expires_at: Seconds,
    /// What to do with the packet.
    pub update: FlowUpdate,
}

/// The expiry of a flow first seen at `now` in `state`.
pub const fn initial_expiry(state: FlowState, now: Seconds, timeouts: &Timeouts) -> Seconds {
    now.saturating_add(timeouts.for_state(state))
}

/// The FINs recorded by a flow's first packet.
pub const fn initial_fins(protocol: u8, flags: TcpFlags) -> FinsSeen {
    FinsSeen {
        forward: protocol == IPPROTO_TCP && flags.contains(TcpFlags::FIN),
        reverse: false,
    }
}

/// One packet's effect on a flow (see the module table). Pure, so the whole
/// machine is tested table-driven without a flow table.
pub fn transition(
    state: FlowState,
    fins: FinsSeen,
    expires_at: Seconds,
    direction: Direction,
    flags: TcpFlags,
    now: Seconds,
    timeouts: &Timeouts,
) -> Transition {
    let forward = direction == Direction::Forward;
    let mut next = Transition {
        state,
        fins,
        expires_at,
        update: FlowUpdate::Forward,
    };
    match state {
        FlowState::TcpClosed => {
            if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
                next.update = FlowUpdate::Restart;
            }
            return next;
        }
        FlowState::TcpSynSent
        | FlowState::TcpSynReceived
        | FlowState::TcpEstablished
        | FlowState::TcpClosing => {
            if flags.contains(TcpFlags::RST) {
                next.state = FlowState::TcpClosed;
            } else if flags.contains(TcpFlags::FIN) {
                if forward {
                    next.fins.forward = true;
                } else {
                    next.fins.reverse = true;
                }
                next.state = if next.fins.forward && next.fins.reverse {
                    FlowState::TcpClosed
                } else {
                    FlowState::TcpClosing
                };
            } else if state == FlowState::TcpSynSent && !forward && flags.contains(TcpFlags::SYN) {
                next.state = FlowState::TcpSynReceived;
            } else if state == FlowState::TcpSynReceived
                && forward
                && flags.contains(TcpFlags::ACK)
                && !flags.contains(TcpFlags::SYN)
            {
                next.state = FlowState::TcpEstablished;
            }
        }
        FlowState::UdpOneWay if !forward => next.state = FlowState::UdpStream,
        FlowState::IcmpRequest if !forward => next.state = FlowState::IcmpReplied,
        FlowState::UdpOneWay
        | FlowState::UdpStream
        | FlowState::IcmpRequest
        | FlowState::IcmpReplied
        | FlowState::Other => {}
    }
    // Entering the final state starts its one fixed countdown; every other
    // state is an idle timeout, refreshed by each packet.
    if !(state.is_final() && next.state.is_final()) {
        next.expires_at = now.saturating_add(timeouts.for_state(next.state));
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Forward, Reverse};

    #[test]
    fn states_round_trip_through_their_byte() {
        for (value, state) in FlowState::BY_VALUE.iter().enumerate() {
            assert_eq!(*state as u8 as usize, value);
            assert_eq!(FlowState::from_u8(*state as u8), *state);
        }
        assert_eq!(FlowState::from_u8(200), FlowState::Other);
    }
    use FlowState::*;

    const T: Timeouts = Timeouts {
        tcp_established: 1000,
        tcp_transitory: 120,
        tcp_closing: 100,
        udp_stream: 180,
        udp_oneway: 30,
        icmp: 31,
        other: 600,
    };
    const NOW: Seconds = 5000;
    const OLD_EXPIRY: Seconds = 5050;
    const SYN: TcpFlags = TcpFlags::SYN;
    const ACK: TcpFlags = TcpFlags::ACK;
    const FIN: TcpFlags = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);
    const RST: TcpFlags = TcpFlags::RST;
    const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
    const NONE: TcpFlags = TcpFlags::NONE;
    const NO_FIN: FinsSeen = FinsSeen {
        forward: false,
        reverse: false,
    };
    const FIN_FWD: FinsSeen = FinsSeen {
        forward: true,
        reverse: false,
    };
    const FIN_REV: FinsSeen = FinsSeen {
        forward: false,
        reverse: true,
    };
    const FIN_BOTH: FinsSeen = FinsSeen {
        forward: true,
        reverse: true,
    };

    /// (state, fins, direction, flags) → (state, fins, expiry, update).
    type Row = (
        FlowState,
        FinsSeen,
        Direction,
        TcpFlags,
        FlowState,
        FinsSeen,
        Seconds,
        FlowUpdate,
    );

    const GO: FlowUpdate = FlowUpdate::Forward;
    const RESTART: FlowUpdate = FlowUpdate::Restart;

    #[rustfmt::skip]
    const ROWS: &[Row] = &[
        // Handshake.
        (TcpSynSent, NO_FIN, Forward, SYN, TcpSynSent, NO_FIN, NOW + 120, GO), // SYN retransmit
        (TcpSynSent, NO_FIN, Reverse, SYN_ACK, TcpSynReceived, NO_FIN, NOW + 120, GO),
        (TcpSynSent, NO_FIN, Reverse, SYN, TcpSynReceived, NO_FIN, NOW + 120, GO), // simultaneous open
        (TcpSynSent, NO_FIN, Forward, ACK, TcpSynSent, NO_FIN, NOW + 120, GO), // no SYN-ACK seen yet
        (TcpSynSent, NO_FIN, Reverse, ACK, TcpSynSent, NO_FIN, NOW + 120, GO),
        (TcpSynReceived, NO_FIN, Reverse, SYN_ACK, TcpSynReceived, NO_FIN, NOW + 120, GO),
        (TcpSynReceived, NO_FIN, Forward, ACK, TcpEstablished, NO_FIN, NOW + 1000, GO),
        (TcpSynReceived, NO_FIN, Reverse, ACK, TcpSynReceived, NO_FIN, NOW + 120, GO), // only the initiator completes it
        (TcpSynReceived, NO_FIN, Forward, SYN_ACK, TcpSynReceived, NO_FIN, NOW + 120, GO),
        // Established traffic refreshes the long timeout, either way.
        (TcpEstablished, NO_FIN, Forward, ACK, TcpEstablished, NO_FIN, NOW + 1000, GO),
        (TcpEstablished, NO_FIN, Reverse, ACK, TcpEstablished, NO_FIN, NOW + 1000, GO),
        (TcpEstablished, NO_FIN, Forward, SYN, TcpEstablished, NO_FIN, NOW + 1000, GO), // SYN mid-flow: just a packet
        // Closing.
        (TcpEstablished, NO_FIN, Forward, FIN, TcpClosing, FIN_FWD, NOW + 100, GO),
        (TcpEstablished, NO_FIN, Reverse, FIN, TcpClosing, FIN_REV, NOW + 100, GO),
        (TcpSynSent, NO_FIN, Forward, FIN, TcpClosing, FIN_FWD, NOW + 100, GO),
        (TcpSynReceived, NO_FIN, Reverse, FIN, TcpClosing, FIN_REV, NOW + 100, GO),
        (TcpClosing, FIN_FWD, Forward, ACK, TcpClosing, FIN_FWD, NOW + 100, GO), // half-close keeps refreshing
        (TcpClosing, FIN_FWD, Reverse, ACK, TcpClosing, FIN_FWD, NOW + 100, GO),
        (TcpClosing, FIN_FWD, Forward, FIN, TcpClosing, FIN_FWD, NOW + 100, GO), // FIN retransmit
        (TcpClosing, FIN_FWD, Reverse, FIN, TcpClosed, FIN_BOTH, NOW + 100, GO),
        (TcpClosing, FIN_REV, Forward, FIN, TcpClosed, FIN_BOTH, NOW + 100, GO),
        // RST ends the connection from any live state.
        (TcpSynSent, NO_FIN, Reverse, RST, TcpClosed, NO_FIN, NOW + 100, GO),
        (TcpSynReceived, NO_FIN, Forward, RST, TcpClosed, NO_FIN, NOW + 100, GO),
        (TcpEstablished, NO_FIN, Forward, RST, TcpClosed, NO_FIN, NOW + 100, GO),
        (TcpEstablished, NO_FIN, Reverse, TcpFlags(TcpFlags::RST.0 | TcpFlags::FIN.0), TcpClosed, NO_FIN, NOW + 100, GO),
        (TcpClosing, FIN_REV, Forward, RST, TcpClosed, FIN_REV, NOW + 100, GO),
        // Closed: the countdown is not refreshed; a new SYN restarts.
        (TcpClosed, FIN_BOTH, Forward, ACK, TcpClosed, FIN_BOTH, OLD_EXPIRY, GO),
        (TcpClosed, NO_FIN, Reverse, RST, TcpClosed, NO_FIN, OLD_EXPIRY, GO),
        (TcpClosed, FIN_BOTH, Reverse, FIN, TcpClosed, FIN_BOTH, OLD_EXPIRY, GO),
        (TcpClosed, FIN_BOTH, Forward, SYN, TcpClosed, FIN_BOTH, OLD_EXPIRY, RESTART),
        (TcpClosed, NO_FIN, Reverse, SYN, TcpClosed, NO_FIN, OLD_EXPIRY, RESTART),
        (TcpClosed, NO_FIN, Reverse, SYN_ACK, TcpClosed, NO_FIN, OLD_EXPIRY, GO),
        // UDP.
        (UdpOneWay, NO_FIN, Forward, NONE, UdpOneWay, NO_FIN, NOW + 30, GO),
        (UdpOneWay, NO_FIN, Reverse, NONE, UdpStream, NO_FIN, NOW + 180, GO),
        (UdpStream, NO_FIN, Forward, NONE, UdpStream, NO_FIN, NOW + 180, GO),
        (UdpStream, NO_FIN, Reverse, NONE, UdpStream, NO_FIN, NOW + 180, GO),
        // ICMP echo.
        (IcmpRequest, NO_FIN, Forward, NONE, IcmpRequest, NO_FIN, NOW + 31, GO),
        (IcmpRequest, NO_FIN, Reverse, NONE, IcmpReplied, NO_FIN, NOW + 31, GO),
        (IcmpReplied, NO_FIN, Forward, NONE, IcmpReplied, NO_FIN, NOW + 31, GO),
        // Other protocols; flags are ignored outside TCP.
        (Other, NO_FIN, Forward, NONE, Other, NO_FIN, NOW + 600, GO),
        (Other, NO_FIN, Reverse, RST, Other, NO_FIN, NOW + 600, GO),
        (UdpStream, NO_FIN, Reverse, FIN, UdpStream, NO_FIN, NOW + 180, GO),
    ];

    #[test]
    fn every_transition_of_the_table() {
        for (i, &(state, fins, direction, flags, next_state, next_fins, expiry, update)) in
            ROWS.iter().enumerate()
        {
            let got = transition(state, fins, OLD_EXPIRY, direction, flags, NOW, &T);
            assert_eq!(
                got,
                Transition {
                    state: next_state,
                    fins: next_fins,
                    expires_at: expiry,
                    update
                },
                "row {i}: {state:?} {direction:?} {flags:?}"
            );
        }
    }

    #[test]
    fn initial_states() {
        let cases = [
            (IPPROTO_TCP, SYN, TcpSynSent),
            (IPPROTO_TCP, ACK, TcpEstablished),
            (IPPROTO_TCP, SYN_ACK, TcpEstablished),
            (IPPROTO_TCP, FIN, TcpClosing),
            (IPPROTO_TCP, RST, TcpClosed),
            (IPPROTO_UDP, NONE, UdpOneWay),
            (IPPROTO_ICMP, NONE, IcmpRequest),
            (IPPROTO_ICMPV6, NONE, IcmpRequest),
            (47, NONE, Other),
            (IPPROTO_UDP, SYN, UdpOneWay),
        ];
        for (protocol, flags, state) in cases {
            assert_eq!(
                FlowState::initial(protocol, flags),
                state,
                "{protocol} {flags:?}"
            );
        }
        assert_eq!(initial_fins(IPPROTO_TCP, FIN), FIN_FWD);
        assert_eq!(initial_fins(IPPROTO_UDP, FIN), NO_FIN);
        assert_eq!(initial_expiry(TcpSynSent, NOW, &T), NOW + 120);
        assert_eq!(initial_expiry(Other, u32::MAX - 1, &T), u32::MAX);
    }

    #[test]
    fn a_full_handshake_and_close() {
        let t = Timeouts::default();
        let mut state = FlowState::initial(IPPROTO_TCP, SYN);
        let mut fins = initial_fins(IPPROTO_TCP, SYN);
        let mut expiry = initial_expiry(state, 0, &t);
        let steps = [
            (Reverse, SYN_ACK, TcpSynReceived, 120),
            (Forward, ACK, TcpEstablished, 432_000),
            (Forward, FIN, TcpClosing, 120),
            (Reverse, FIN, TcpClosed, 120),
        ];
        for (now, (direction, flags, expected, timeout)) in (1..).zip(steps) {
            let next = transition(state, fins, expiry, direction, flags, now, &t);
            assert_eq!(next.state, expected);
            assert_eq!(next.expires_at, now + timeout);
            (state, fins, expiry) = (next.state, next.fins, next.expires_at);
        }
        // The last ACK, 50 s later, passes but does not extend the countdown.
        let last = transition(state, fins, expiry, Forward, ACK, 54, &t);
        assert_eq!(last.expires_at, 4 + 120);
        assert_eq!(last.update, FlowUpdate::Forward);
    }

    #[test]
    fn defaults_are_semantics_md() {
        let t = Timeouts::default();
        assert_eq!(
            [
                t.tcp_established(),
                t.tcp_transitory(),
                t.tcp_closing(),
                t.udp_stream(),
                t.udp_oneway(),
                t.icmp(),
                t.other()
            ],
            [432_000, 120, 120, 180, 30, 30, 600]
        );
        assert_eq!(Timeouts::new(432_000, 180, 30), Ok(t));
    }

    proptest::proptest! {
        /// `clamped` is `new` wherever `new` accepts, and otherwise lands on
        /// the nearest value `new` accepts.
        #[test]
        fn clamped_is_new_for_valid_settings_and_the_nearest_valid_otherwise(
            est in 0u32..500_000,
            stream in 0u32..300,
            oneway in 0u32..100,
        ) {
            let clamped = Timeouts::clamped(est, stream, oneway);
            if let Ok(t) = Timeouts::new(est, stream, oneway) {
                proptest::prop_assert_eq!(clamped, t);
            } else {
                let nearest = Timeouts::new(
                    est.clamp(60, 432_000),
                    stream.clamp(60, 180),
                    oneway.clamp(30, 60),
                );
                proptest::prop_assert_eq!(Ok(clamped), nearest);
            }
        }
    }

    #[test]
    fn per_eni_ranges_are_enforced() {
        let ok = Timeouts::new(60, 60, 60).unwrap();
        assert_eq!(
            (ok.tcp_established(), ok.udp_stream(), ok.udp_oneway()),
            (60, 60, 60)
        );
        assert_eq!(ok.other(), 600);
        assert_eq!(
            Timeouts::new(59, 180, 30),
            Err(TimeoutError::TcpEstablishedOutOfRange(59))
        );
        assert_eq!(
            Timeouts::new(432_001, 180, 30),
            Err(TimeoutError::TcpEstablishedOutOfRange(432_001))
        );
        assert_eq!(
            Timeouts::new(3600, 59, 30),
            Err(TimeoutError::UdpStreamOutOfRange(59))
        );
        assert_eq!(
            Timeouts::new(3600, 181, 30),
            Err(TimeoutError::UdpStreamOutOfRange(181))
        );
        assert_eq!(
            Timeouts::new(3600, 120, 29),
            Err(TimeoutError::UdpOneWayOutOfRange(29))
        );
        assert_eq!(
            Timeouts::new(3600, 120, 61),
            Err(TimeoutError::UdpOneWayOutOfRange(61))
        );
    }
}
