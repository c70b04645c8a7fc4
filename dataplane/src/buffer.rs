//! The packet buffer `process()` works on.
//!
//! The sans-IO core never sees an mbuf: it sees anything that lends it the
//! frame's bytes and can grow or shrink the frame at the front (a VLAN tag
//! added or removed on the way between two ENIs). DPDK's `Mbuf` implements
//! this in the appliance; [`HeapPacket`] implements it for tests, pcap
//! replay and fuzzing.

/// A frame with headroom, as the data plane needs it.
pub trait PacketBuf {
    /// The port the frame arrived on.
    fn ingress_port(&self) -> u16;
    /// The frame, from the Ethernet header on.
    fn data(&self) -> &[u8];
    /// The frame, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front (uninitialised content the
    /// caller overwrites). Returns `false`, changing nothing, without room.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. Returns `false`, changing nothing,
    /// if the frame is shorter than `n`.
    fn adj(&mut self, n: usize) -> bool;
    /// Makes the frame `len` bytes long, growing (content unspecified) or
    /// shrinking at the tail. Returns `false`, changing nothing, without
    /// tailroom.
    fn set_len(&mut self, len: usize) -> bool;
}

/// A heap-backed frame with fixed headroom: tests, replay, fuzzing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeapPacket {
    buf: Vec<u8>,
    start: usize,
    port: u16,
}

impl HeapPacket {
    /// Headroom reserved in front of each frame, as DPDK's default
    /// `RTE_PKTMBUF_HEADROOM`.
    pub const HEADROOM: usize = 128;

    /// The most a frame may grow to, as a 2 KiB mbuf data room allows.
    pub const MAX_LEN: usize = 2048 - Self::HEADROOM;

    /// Copies `frame`, received on `port`, behind [`Self::HEADROOM`] bytes
    /// of headroom.
    pub fn new(port: u16, frame: &[u8]) -> Self {
        let mut buf = vec![0; Self::HEADROOM + frame.len()];
        buf[Self::HEADROOM..].copy_from_slice(frame);
        HeapPacket {
            buf,
            start: Self::HEADROOM,
            port,
        }
    }

    /// The frame as an owned vector.
    pub fn into_frame(mut self) -> Vec<u8> {
        self.buf.drain(..self.start);
        self.buf
    }
}

impl PacketBuf for HeapPacket {
    #[inline]
    fn ingress_port(&self) -> u16 {
        self.port
    }

    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.buf.len() - self.start {
            return false;
        }
        self.start += n;
        true
    }

    #[inline]
    fn set_len(&mut self, len: usize) -> bool {
        if len > Self::MAX_LEN {
            return false;
        }
        self.buf.resize(self.start + len, 0);
        true
    }
}

/// DPDK's mbuf is the appliance's packet buffer (single-segment frames:
/// the ports are configured without scatter).
#[cfg(feature = "dpdk")]
impl PacketBuf for palisade_dpdk::Mbuf {
    #[inline]
    fn ingress_port(&self) -> u16 {
        self.port()
    }

    #[inline]
    fn data(&self) -> &[u8] {
        palisade_dpdk::Mbuf::data(self)
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        palisade_dpdk::Mbuf::data_mut(self)
    }

    fn prepend(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| palisade_dpdk::Mbuf::prepend(self, n).is_ok())
    }

    fn adj(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| palisade_dpdk::Mbuf::adj(self, n).is_ok())
    }

    fn set_len(&mut self, len: usize) -> bool {
        let current = self.len();
        if len >= current {
            u16::try_from(len - current).is_ok_and(|n| self.append(n).is_ok())
        } else {
            u16::try_from(current - len).is_ok_and(|n| self.trim(n).is_ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_is_bounded_and_adj_is_checked() {
        let mut p = HeapPacket::new(7, &[1, 2, 3]);
        assert_eq!(p.ingress_port(), 7);
        assert!(p.prepend(HeapPacket::HEADROOM));
        assert_eq!(p.data().len(), HeapPacket::HEADROOM + 3);
        assert!(!p.prepend(1));
        assert!(p.adj(HeapPacket::HEADROOM));
        assert_eq!(p.data(), &[1, 2, 3]);
        assert!(!p.adj(4));
        assert!(p.adj(1));
        assert_eq!(p.clone().into_frame(), vec![2, 3]);
        assert!(p.set_len(4));
        assert_eq!(p.data(), &[2, 3, 0, 0]);
        assert!(!p.set_len(HeapPacket::MAX_LEN + 1));
        assert!(p.set_len(1));
        assert_eq!(p.data(), &[2]);
    }
}
