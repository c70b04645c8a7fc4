//! ARP for IPv4 over Ethernet (RFC 826).
//!
//! The router answers ARP requests for each subnet's gateway address itself
//! (step 4 of the packet path), so it needs the sender's addresses to reply
//! to and the target address to decide whether the request is its own.

use core::net::Ipv4Addr;

use crate::WireError;
use crate::ethernet::MacAddr;

mod field {
    use core::ops::Range;
    pub const HARDWARE_TYPE: Range<usize> = 0..2;
    pub const PROTOCOL_TYPE: Range<usize> = 2..4;
    pub const HARDWARE_LEN: usize = 4;
    pub const PROTOCOL_LEN: usize = 5;
    pub const OPERATION: Range<usize> = 6..8;
    pub const SENDER_MAC: Range<usize> = 8..14;
    pub const SENDER_IP: Range<usize> = 14..18;
    pub const TARGET_MAC: Range<usize> = 18..24;
    pub const TARGET_IP: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// The ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// Who has the target IP?
    Request,
    /// The sender has the sender IP.
    Reply,
    /// Any other operation code (RARP and friends), kept for counting.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> Self {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A checked view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn ipv4_at(data: &[u8], at: core::ops::Range<usize>) -> Ipv4Addr {
    let b = &data[at];
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn mac_at(data: &[u8], at: core::ops::Range<usize>) -> MacAddr {
    let b = &data[at];
    MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps untrusted bytes, accepting only Ethernet/IPv4 ARP.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let data = buffer.as_ref();
        if data.len() < PACKET_LEN {
            return Err(WireError::TruncatedArp);
        }
        if data[field::HARDWARE_TYPE] != [0, 1]
            || data[field::PROTOCOL_TYPE] != [0x08, 0x00]
            || data[field::HARDWARE_LEN] != 6
            || data[field::PROTOCOL_LEN] != 4
        {
            return Err(WireError::UnsupportedArp);
        }
        Ok(Packet { buffer })
    }

    /// The operation.
    pub fn operation(&self) -> ArpOperation {
        let b = &self.buffer.as_ref()[field::OPERATION];
        u16::from_be_bytes([b[0], b[1]]).into()
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SENDER_MAC)
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ipv4_at(self.buffer.as_ref(), field::SENDER_IP)
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::TARGET_MAC)
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ipv4_at(self.buffer.as_ref(), field::TARGET_IP)
    }
}

/// The meaning of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request, reply or other.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in requests).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> ArpRepr {
        ArpRepr {
            operation: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        }
    }

    /// Writes the 28-byte packet at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let out = buf.get_mut(..PACKET_LEN).ok_or(WireError::BufferTooSmall)?;
        out[field::HARDWARE_TYPE].copy_from_slice(&[0, 1]);
        out[field::PROTOCOL_TYPE].copy_from_slice(&[0x08, 0x00]);
        out[field::HARDWARE_LEN] = 6;
        out[field::PROTOCOL_LEN] = 4;
        out[field::OPERATION].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        out[field::SENDER_MAC].copy_from_slice(&self.sender_mac.0);
        out[field::SENDER_IP].copy_from_slice(&self.sender_ip.octets());
        out[field::TARGET_MAC].copy_from_slice(&self.target_mac.0);
        out[field::TARGET_IP].copy_from_slice(&self.target_ip.octets());
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // "Who has 10.0.0.1? Tell 10.0.0.5" from 02:00:00:00:00:05.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0a,
        0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01,
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: MacAddr([2, 0, 0, 0, 0, 5]),
            sender_ip: Ipv4Addr::new(10, 0, 0, 5),
            target_mac: MacAddr([0; 6]),
            target_ip: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn parses_request() {
        let packet = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), request_repr());
    }

    #[test]
    fn emits_request_bytes() {
        let mut buf = [0xeeu8; 30];
        assert_eq!(request_repr().emit(&mut buf), Ok(28));
        assert_eq!(buf[..28], REQUEST);
        assert_eq!(
            request_repr().emit(&mut buf[..27]),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn rejects_other_link_or_protocol() {
        for (at, value) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut bytes = REQUEST;
            bytes[at] = value;
            assert_eq!(
                Packet::new_checked(&bytes[..]).unwrap_err(),
                WireError::UnsupportedArp
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..PACKET_LEN {
            assert_eq!(
                Packet::new_checked(&REQUEST[..len]).unwrap_err(),
                WireError::TruncatedArp
            );
        }
    }

    #[test]
    fn operation_codes_round_trip() {
        for code in [1u16, 2, 3, 4, 0xffff] {
            assert_eq!(u16::from(ArpOperation::from(code)), code);
        }
    }
}
