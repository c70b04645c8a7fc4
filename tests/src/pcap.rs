//! A tiny classic-pcap (libpcap 2.4) writer and reader: the golden tests
//! write the frames palisade reads through `net_pcap`'s `rx_pcap`, and read
//! back what it transmitted to `tx_pcap`.
//!
//! Only what those files need: Ethernet link type, whole frames. The reader
//! accepts both byte orders and both timestamp resolutions (libpcap writes
//! host order, microseconds), since the test does not control which
//! libpcap build DPDK dumps with.

use std::path::Path;

/// Classic pcap magic, microsecond timestamps, as written in host order.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Classic pcap magic, nanosecond timestamps.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// `LINKTYPE_ETHERNET`.
const LINKTYPE_ETHERNET: u32 = 1;
/// Frames are never longer than a jumbo frame; the header says so.
const SNAPLEN: u32 = 65535;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// Why a pcap file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The first four bytes are no pcap magic number (pcapng included).
    #[error("not a classic pcap file (magic {0:#010x})")]
    BadMagic(u32),
    /// Not Ethernet frames: the golden tests compare Ethernet bytes only.
    #[error("link type {0}, expected 1 (Ethernet)")]
    LinkType(u32),
    /// The file ends inside a header or a record.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A record captured less than the frame's length (snap length cut).
    #[error("record {index} is cut: {captured} of {original} bytes captured")]
    CutRecord {
        /// 0-based record number.
        index: usize,
        /// Bytes in the file.
        captured: u32,
        /// Bytes on the wire.
        original: u32,
    },
}

/// The bytes of a pcap file holding `frames` in order, microsecond
/// timestamps one apart (net_pcap does not pace by them).
pub fn encode(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        FILE_HEADER_LEN
            + frames
                .iter()
                .map(|f| RECORD_HEADER_LEN + f.len())
                .sum::<usize>(),
    );
    out.extend_from_slice(&MAGIC_MICROS.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (i, frame) in frames.iter().enumerate() {
        let len = frame.len() as u32;
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&(i as u32 % 1_000_000).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(frame);
    }
    out
}

/// The frames of a classic pcap file, in file order.
pub fn decode(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PcapError> {
    let header = bytes
        .get(..FILE_HEADER_LEN)
        .ok_or(PcapError::Truncated(bytes.len()))?;
    let magic_le = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let little = match magic_le {
        MAGIC_MICROS | MAGIC_NANOS => true,
        m if m.swap_bytes() == MAGIC_MICROS || m.swap_bytes() == MAGIC_NANOS => false,
        m => return Err(PcapError::BadMagic(m)),
    };
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let link = word(&header[20..24]);
    if link != LINKTYPE_ETHERNET {
        return Err(PcapError::LinkType(link));
    }
    let mut frames = Vec::new();
    let mut at = FILE_HEADER_LEN;
    while at < bytes.len() {
        let record = bytes
            .get(at..at + RECORD_HEADER_LEN)
            .ok_or(PcapError::Truncated(bytes.len()))?;
        let captured = word(&record[8..12]);
        let original = word(&record[12..16]);
        at += RECORD_HEADER_LEN;
        let data = bytes
            .get(at..at + captured as usize)
            .ok_or(PcapError::Truncated(bytes.len()))?;
        if captured != original {
            return Err(PcapError::CutRecord {
                index: frames.len(),
                captured,
                original,
            });
        }
        frames.push(data.to_vec());
        at += captured as usize;
    }
    Ok(frames)
}

/// Writes `frames` to `path` as a pcap file.
pub fn write(path: &Path, frames: &[Vec<u8>]) -> Result<(), PcapError> {
    std::fs::write(path, encode(frames)).map_err(|source| PcapError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads the frames of the pcap file at `path`.
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>, PcapError> {
    let bytes = std::fs::read(path).map_err(|source| PcapError::Io {
        path: path.display().to_string(),
        source,
    })?;
    decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_order() {
        let frames = vec![vec![1u8; 60], vec![], vec![0xab; 1514], vec![7, 8, 9]];
        assert_eq!(decode(&encode(&frames)).unwrap(), frames);
    }

    #[test]
    fn header_is_the_libpcap_layout() {
        let bytes = encode(&[vec![0xee; 3]]);
        assert_eq!(
            bytes[..24],
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0,
                0, 0
            ]
        );
        // caplen and len, then the frame.
        assert_eq!(bytes[32..40], [3, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(bytes[40..], [0xee; 3]);
    }

    #[test]
    fn big_endian_nanosecond_files_are_read() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC_NANOS.to_be_bytes());
        bytes.extend_from_slice(&[0, 2, 0, 4]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&SNAPLEN.to_be_bytes());
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&[0x42, 0x43]);
        assert_eq!(decode(&bytes).unwrap(), vec![vec![0x42, 0x43]]);
    }

    #[test]
    fn damage_is_reported_not_skipped() {
        let good = encode(&[vec![1; 10], vec![2; 10]]);
        assert!(matches!(
            decode(&good[..good.len() - 1]),
            Err(PcapError::Truncated(_))
        ));
        assert!(matches!(decode(&good[..10]), Err(PcapError::Truncated(10))));
        let mut pcapng = good.clone();
        pcapng[..4].copy_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        assert!(matches!(decode(&pcapng), Err(PcapError::BadMagic(_))));
        let mut raw_ip = good.clone();
        raw_ip[20] = 101;
        assert!(matches!(decode(&raw_ip), Err(PcapError::LinkType(101))));
        let mut cut = good;
        cut[24 + 12] = 11; // original length 11, 10 captured
        assert!(matches!(
            decode(&cut),
            Err(PcapError::CutRecord { index: 0, .. })
        ));
    }
}
