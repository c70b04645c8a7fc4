//! Ethernet II frames with at most one 802.1Q tag.
//!
//! This is the first header every received packet goes through; the VLAN ID
//! it yields is part of the key that finds the source ENI. Stacked tags
//! (802.1ad QinQ, or two 802.1Q tags) are rejected with
//! [`WireError::StackedVlan`] instead of being half-understood: an ENI is
//! reached over an untagged or a single-tagged port, so a double-tagged frame
//! can only be misdirected, and treating just the outer tag would hand an
//! unparsable inner EtherType to the next stage anyway.

use core::fmt;

use crate::WireError;

/// Offsets of the fields of an Ethernet II header.
mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// The TCI of an 802.1Q tag, when the EtherType is 0x8100.
    pub const VLAN_TCI: Range<usize> = 14..16;
    pub const VLAN_ETHERTYPE: Range<usize> = 16..18;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of the 802.1Q tag inserted after the source address.
pub const VLAN_TAG_LEN: usize = 4;

/// The EtherTypes palisade recognises.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
}

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Builds the address from the first six bytes of `bytes`; `None` when
    /// there are fewer.
    #[inline]
    pub fn from_bytes(bytes: &[u8]) -> Option<MacAddr> {
        bytes.get(..6)?.try_into().ok().map(MacAddr)
    }

    /// The individual/group bit: set for broadcast and multicast.
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The 33:33:xx:xx:xx:xx address an IPv6 multicast group maps to (RFC 2464 §7).
    pub const fn ipv6_multicast(group: core::net::Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A checked view of an Ethernet II frame, tagged or not.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps without checking; accessors may panic on a short or QinQ buffer.
    /// Only for buffers this program is building itself.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps untrusted bytes: after this no accessor can panic.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, WireError> {
        let frame = Frame::new_unchecked(buffer);
        frame.check()?;
        Ok(frame)
    }

    fn check(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(WireError::TruncatedEthernet);
        }
        match self.outer_ethertype() {
            ethertype::QINQ => Err(WireError::StackedVlan),
            ethertype::VLAN => {
                if data.len() < HEADER_LEN + VLAN_TAG_LEN {
                    return Err(WireError::TruncatedEthernet);
                }
                match self.ethertype() {
                    ethertype::VLAN | ethertype::QINQ => Err(WireError::StackedVlan),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::DESTINATION];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Source MAC address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        let b = &self.buffer.as_ref()[field::SOURCE];
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    #[inline]
    fn outer_ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The 802.1Q tag control information (PCP, DEI, VID), if tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.outer_ethertype() == ethertype::VLAN {
            let b = &self.buffer.as_ref()[field::VLAN_TCI];
            Some(u16::from_be_bytes([b[0], b[1]]))
        } else {
            None
        }
    }

    /// The VLAN ID (low 12 bits of the TCI), if tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|tci| tci & 0x0fff)
    }

    /// The EtherType of the payload (the inner one when tagged).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        if self.outer_ethertype() == ethertype::VLAN {
            let b = &self.buffer.as_ref()[field::VLAN_ETHERTYPE];
            u16::from_be_bytes([b[0], b[1]])
        } else {
            self.outer_ethertype()
        }
    }

    /// Length of the Ethernet header including the tag: the L3 offset.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.outer_ethertype() == ethertype::VLAN {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The bytes after the Ethernet header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// The bytes after the Ethernet header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// The meaning of an Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination MAC address.
    pub dst: MacAddr,
    /// Source MAC address.
    pub src: MacAddr,
    /// VLAN ID of the 802.1Q tag; priority and DEI are emitted as zero.
    pub vlan: Option<u16>,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> EthernetRepr {
        EthernetRepr {
            dst: frame.dst_addr(),
            src: frame.src_addr(),
            vlan: frame.vlan_id(),
            ethertype: frame.ethertype(),
        }
    }

    /// Length of the header this emits.
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.header_len();
        let header = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        header[field::DESTINATION].copy_from_slice(&self.dst.0);
        header[field::SOURCE].copy_from_slice(&self.src.0);
        match self.vlan {
            Some(vid) => {
                if vid > 0x0fff {
                    return Err(WireError::Unrepresentable);
                }
                header[field::ETHERTYPE].copy_from_slice(&ethertype::VLAN.to_be_bytes());
                header[field::VLAN_TCI].copy_from_slice(&vid.to_be_bytes());
                header[field::VLAN_ETHERTYPE].copy_from_slice(&self.ethertype.to_be_bytes());
            }
            None => header[field::ETHERTYPE].copy_from_slice(&self.ethertype.to_be_bytes()),
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A tagged frame: dst 02:00:00:00:00:02, src 02:00:00:00:00:01, PCP 5,
    // VID 100, inner EtherType IPv4, two payload bytes.
    const TAGGED: [u8; 20] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x00, 0xaa, 0xbb,
    ];

    #[test]
    fn parses_tagged_frame() {
        let frame = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(frame.dst_addr(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(frame.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(frame.vlan_tci(), Some(0xa064));
        assert_eq!(frame.vlan_id(), Some(100));
        assert_eq!(frame.ethertype(), ethertype::IPV4);
        assert_eq!(frame.header_len(), 18);
        assert_eq!(frame.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn untagged_round_trip() {
        let repr = EthernetRepr {
            dst: MacAddr::BROADCAST,
            src: MacAddr([2, 1, 2, 3, 4, 5]),
            vlan: None,
            ethertype: ethertype::ARP,
        };
        let mut buf = [0u8; 14];
        assert_eq!(repr.emit(&mut buf), Ok(14));
        assert_eq!(&buf[12..], &[0x08, 0x06]);
        assert_eq!(
            EthernetRepr::parse(&Frame::new_checked(&buf[..]).unwrap()),
            repr
        );
    }

    #[test]
    fn tagged_round_trip_and_short_buffer() {
        let repr = EthernetRepr {
            dst: MacAddr([2, 0, 0, 0, 0, 2]),
            src: MacAddr([2, 0, 0, 0, 0, 1]),
            vlan: Some(4094),
            ethertype: ethertype::IPV6,
        };
        let mut buf = [0u8; 18];
        assert_eq!(repr.emit(&mut buf[..17]), Err(WireError::BufferTooSmall));
        assert_eq!(repr.emit(&mut buf), Ok(18));
        assert_eq!(
            EthernetRepr::parse(&Frame::new_checked(&buf[..]).unwrap()),
            repr
        );
        let bad = EthernetRepr {
            vlan: Some(4096),
            ..repr
        };
        assert_eq!(bad.emit(&mut buf), Err(WireError::Unrepresentable));
    }

    #[test]
    fn rejects_qinq() {
        let mut outer_ad = TAGGED;
        outer_ad[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(
            Frame::new_checked(&outer_ad[..]).unwrap_err(),
            WireError::StackedVlan
        );
        let mut double_q = TAGGED;
        double_q[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            Frame::new_checked(&double_q[..]).unwrap_err(),
            WireError::StackedVlan
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..18 {
            assert_eq!(
                Frame::new_checked(&TAGGED[..len]).unwrap_err(),
                WireError::TruncatedEthernet,
                "len {len}"
            );
        }
    }

    #[test]
    fn setters_and_display() {
        let mut buf = TAGGED;
        let mut frame = Frame::new_checked(&mut buf[..]).unwrap();
        frame.set_dst_addr(MacAddr([0xaa; 6]));
        frame.set_src_addr(MacAddr([0xbb; 6]));
        frame.payload_mut()[0] = 0x11;
        assert_eq!(
            &buf[..12],
            &[
                0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb
            ]
        );
        assert_eq!(buf[18], 0x11);
        assert_eq!(
            MacAddr([0x02, 0, 0, 0, 0xab, 0x0c]).to_string(),
            "02:00:00:00:ab:0c"
        );
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr([2, 0, 0, 0, 0, 1]).is_multicast());
    }
}
