//! End to end through the binding: a pcap the test writes is replayed by one
//! net_pcap port, forwarded by `rx_burst`/`tx_burst` to a second net_pcap
//! port, and the file that port writes must hold the same frames, byte for
//! byte, in order — with every mbuf back in its pool afterwards.
//!
//! Needs root (DPDK maps memory and pins threads); skipped, loudly, without.

use std::path::Path;
use std::time::{Duration, Instant};

use palisade_dpdk::{Eal, MbufBatch, Mempool, Port};

/// A pcap file: the classic global header (microsecond timestamps,
/// Ethernet link type) and one record per frame.
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, µs
    bytes.extend_from_slice(&2u16.to_le_bytes()); // version major
    bytes.extend_from_slice(&4u16.to_le_bytes()); // version minor
    bytes.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    bytes.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    bytes.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    bytes.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (index, frame) in frames.iter().enumerate() {
        bytes.extend_from_slice(&(1_700_000_000u32 + index as u32).to_le_bytes());
        bytes.extend_from_slice(&(index as u32 * 10).to_le_bytes());
        bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        bytes.extend_from_slice(frame);
    }
    std::fs::write(path, bytes).unwrap();
}

/// The frames of a little-endian pcap file, µs or ns flavour (net_pcap
/// writes nanosecond files).
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() >= 24,
        "{} is not a pcap file ({} bytes)",
        path.display(),
        bytes.len()
    );
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    assert!(
        magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d,
        "unexpected pcap magic {magic:#x} in {}",
        path.display()
    );
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        assert!(at + 16 <= bytes.len(), "truncated record header");
        let captured = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let original = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap()) as usize;
        assert_eq!(captured, original, "frame was truncated by the snap length");
        at += 16;
        assert!(at + captured <= bytes.len(), "truncated record body");
        frames.push(bytes[at..at + captured].to_vec());
        at += captured;
    }
    frames
}

/// A few dozen frames of different kinds and sizes: IPv4/TCP, IPv6/UDP,
/// ARP, 802.1Q-tagged, minimum and full-size, with varying payload bytes.
fn varied_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut seed = 0x9e37_79b9u32;
    let mut next_byte = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as u8
    };
    let ethertypes: [&[u8]; 4] = [
        &[0x08, 0x00],             // IPv4
        &[0x86, 0xdd],             // IPv6
        &[0x08, 0x06],             // ARP
        &[0x81, 0x00, 0x00, 0x2a], // 802.1Q VLAN 42 …
    ];
    let lengths = [60, 64, 65, 128, 333, 512, 1000, 1499, 1514];
    for index in 0..48 {
        let len = lengths[index % lengths.len()];
        let mut frame = Vec::with_capacity(len);
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, (index as u8) | 1]); // dst
        frame.extend_from_slice(&[0x02, 0, 0, 0, 1, index as u8]); // src
        let ethertype = ethertypes[index % ethertypes.len()];
        frame.extend_from_slice(ethertype);
        if ethertype.len() == 4 {
            frame.extend_from_slice(&[0x08, 0x00]); // … carrying IPv4
        }
        frame.push(index as u8); // which frame this is, visible in a diff
        while frame.len() < len {
            frame.push(next_byte());
        }
        frames.push(frame);
    }
    frames
}

#[test]
fn forwards_every_pcap_frame_unchanged_and_returns_every_mbuf() {
    if !palisade_dpdk::process_is_privileged() {
        eprintln!(
            "SKIPPED forwards_every_pcap_frame_unchanged_and_returns_every_mbuf: needs root (DPDK)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("palisade-pcap-forward-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.pcap");
    let empty = dir.join("empty.pcap");
    let out0 = dir.join("out0.pcap");
    let out1 = dir.join("out1.pcap");
    let frames = varied_frames();
    write_pcap(&input, &frames);
    write_pcap(&empty, &[]);

    let args: Vec<String> = [
        "pcap-forward-test".to_owned(),
        "--no-huge".into(),
        "-m".into(),
        "256".into(),
        "--no-shconf".into(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        "--log-level".into(),
        "*:warning".into(),
        "--file-prefix".into(),
        format!("pcapfwd{}", std::process::id()),
        "-l".into(),
        "0".into(),
        "--vdev".into(),
        format!(
            "net_pcap0,rx_pcap={},tx_pcap={},infinite_rx=0",
            input.display(),
            out0.display()
        ),
        "--vdev".into(),
        format!(
            "net_pcap1,rx_pcap={},tx_pcap={}",
            empty.display(),
            out1.display()
        ),
    ]
    .into();
    let eal = Eal::init(&args).expect("EAL starts");
    let pool = Mempool::new(&eal, "pcapfwd", 1023, 0, 2176, None).expect("mempool");
    let capacity = pool.capacity();
    assert_eq!(capacity, 1023);

    let mut port0 = Port::by_devargs(&eal, "net_pcap0,rx_pcap=ignored").expect("port 0");
    let mut port1 = Port::by_name(&eal, "net_pcap1").expect("port 1");
    assert_eq!(port0.driver_name().unwrap(), "net_pcap");
    port0.configure(1, 1, 128, 128, &pool).unwrap();
    port1.configure(1, 1, 128, 128, &pool).unwrap();
    port0.start().unwrap();
    port1.start().unwrap();

    let mut forwarded = 0usize;
    {
        let mut rx = port0.rx_queue(0).unwrap();
        let mut tx = port1.tx_queue(0).unwrap();
        let mut batch: MbufBatch<32> = MbufBatch::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while forwarded < frames.len() && Instant::now() < deadline {
            if rx.rx_burst(&mut batch) == 0 {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            while !batch.is_empty() && Instant::now() < deadline {
                forwarded += tx.tx_burst(&mut batch);
            }
        }
        // Anything more would be a duplicate; give it a moment to show up.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            rx.rx_burst(&mut batch),
            0,
            "port 0 received more than the input held"
        );
    }
    assert_eq!(
        forwarded,
        frames.len(),
        "not every frame was forwarded before the deadline"
    );

    let stats0 = port0.stats().unwrap();
    let stats1 = port1.stats().unwrap();
    assert_eq!(stats0.ipackets, frames.len() as u64);
    assert_eq!(stats1.opackets, frames.len() as u64);
    let input_bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(stats1.obytes, input_bytes);

    // Stopping closes the pcap dumpers, flushing the output files.
    port0.stop().unwrap();
    port1.stop().unwrap();
    assert_eq!(
        pool.in_use(),
        0,
        "mbufs leaked: {} of {capacity} still out",
        pool.in_use()
    );

    let written = read_pcap(&out1);
    assert_eq!(written.len(), frames.len(), "frame count on port 1");
    for (index, (got, sent)) in written.iter().zip(&frames).enumerate() {
        assert_eq!(got, sent, "frame {index} differs");
    }
    assert!(read_pcap(&out0).is_empty(), "nothing should leave port 0");

    drop((port0, port1, pool));
    eal.cleanup()
        .expect("clean EAL shutdown with every mbuf returned");
    std::fs::remove_dir_all(&dir).unwrap();
}
