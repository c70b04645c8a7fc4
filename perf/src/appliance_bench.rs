//! The world of `perf/bench-appliance.sh`, sans-IO but for writing files:
//! one capture of 64-byte UDP frames per case, the DPDK profile that
//! replays it, and the appliance configuration that declares its ENIs.
//!
//! Two ports, as `dpdk-testpmd --forward-mode=io` sees them too:
//! - `sender`: `net_pcap0` replaying the capture endlessly (`infinite_rx=1`,
//!   which preloads every frame into an mbuf at start, hence a pool of at
//!   least the capture's frame count), transmitting into `/dev/null`. It
//!   holds the sender ENI, whose source/destination check is off: it stands
//!   for a router or NAT instance, so its frames come from many source
//!   addresses (172.16.0.0/12) and one flow differs from the next by its
//!   source address and port;
//! - `receiver`: `net_null0,no-rx=1`, receiving nothing and dropping what
//!   it transmits. It holds the receiver ENI, whose group `web` allows
//!   UDP 80 from anywhere and nothing else, and the `[uplink]`.
//!
//! The capture holds flow 0's frame, flow 1's, … flow N−1's, once each, so
//! the first pass through it creates every flow (UDP: the first frame
//! creates the flow) and every later pass meets established flows only;
//! the appliance's `palisade_new_flows_total` should reach N and then stay.
//!
//! Everything is cached in a directory per (case, flows): the parameters
//! are written last, to `params`, and a rerun with the same ones reuses the
//! files as they are.

use core::net::Ipv4Addr;
use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The router MAC the configuration sets and frames go to.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x50, 0x41, 0x4c, 0x00, 0x01];
/// The sender ENI's MAC (on the pcap port).
pub const SENDER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x0a];
/// The receiver ENI's MAC (on the null port).
pub const RECEIVER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x02, 0x0a];
/// The uplink's next hop (on the null port).
pub const UPLINK_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0xfe, 0x01];
/// The sender ENI's own address.
pub const SENDER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 10);
/// The receiver ENI's address.
pub const RECEIVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 10);
/// The port the receiver's group allows (UDP).
pub const ALLOWED_PORT: u16 = 80;
/// A port it does not allow.
pub const DENIED_PORT: u16 = 81;
/// The profile's port names.
pub const SENDER_PORT: &str = "sender";
/// The profile's port names.
pub const RECEIVER_PORT: &str = "receiver";

/// Every frame is this long (no FCS in a capture): Ethernet 14, IPv4 20,
/// UDP 8, 22 bytes of payload.
pub const FRAME_LEN: usize = 64;

/// Source addresses a flow number cycles through before its port moves.
const SOURCE_ADDRESSES: u64 = 4096;
/// Source ports 1024..65536.
const SOURCE_PORTS: u64 = 65536 - 1024;

/// Bumped whenever the files written change, so an old cache is redone.
const FORMAT: u32 = 3;

/// Descriptors per queue in the profile (and testpmd's --rxd/--txd).
pub const DESCRIPTORS: u16 = 1024;
/// Per-lcore mempool cache (and testpmd's --mbcache).
pub const MEMPOOL_CACHE: u32 = 256;
/// Mbufs beyond the capture's frames: every ring (2 ports × rx + tx ×
/// 1024), the caches of two lcores and bursts in flight need ~5 k, which
/// is enough for testpmd; the appliance stalled after some 40 k frames
/// with 16 k spare (mbufs held somewhere on its side; not diagnosed here)
/// and runs with 50 k. Both get the same pool.
const MBUF_HEADROOM: u64 = 65_536;

/// What the capture holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Case {
    /// Every flow to the receiver's allowed port.
    Established,
    /// Even flows to the allowed port, odd ones to a denied port.
    HalfDenied,
    /// Every flow to the denied port.
    AllDenied,
    /// Every flow to addresses outside the VPC, out through the uplink.
    NorthSouth,
}

impl Case {
    /// The case's name in file names and reports.
    pub fn name(self) -> &'static str {
        match self {
            Case::Established => "established",
            Case::HalfDenied => "half-denied",
            Case::AllDenied => "all-denied",
            Case::NorthSouth => "north-south",
        }
    }
}

/// Why a case could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// More flows than distinct (source address, source port) pairs.
    #[error("{0} flows: need 1 to {max}", max = SOURCE_ADDRESSES * SOURCE_PORTS)]
    FlowCount(u64),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Flow `n`'s (source address, source port, destination address,
/// destination port) in `case`.
pub fn flow(case: Case, n: u64) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let host = (n % SOURCE_ADDRESSES) as u32;
    // 172.16.0.0 + host, skipping .0 and .255 of each /24 for realism is
    // not needed: the appliance does not care, nor does the capture.
    let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + host);
    let src_port = 1024 + ((n / SOURCE_ADDRESSES) % SOURCE_PORTS) as u16;
    let (dst, dst_port) = match case {
        Case::Established => (RECEIVER_IP, ALLOWED_PORT),
        Case::HalfDenied if n % 2 == 0 => (RECEIVER_IP, ALLOWED_PORT),
        Case::HalfDenied | Case::AllDenied => (RECEIVER_IP, DENIED_PORT),
        // A documentation block (RFC 5737): outside every VPC.
        Case::NorthSouth => (
            Ipv4Addr::new(198, 51, 100, 1 + (n % 200) as u8),
            ALLOWED_PORT,
        ),
    };
    (src, src_port, dst, dst_port)
}

/// Flow `n`'s frame: from the sender ENI to the router, IPv4 header
/// checksum set, UDP checksum 0 (none, as IPv4 allows).
pub fn frame(case: Case, n: u64) -> [u8; FRAME_LEN] {
    let (src, src_port, dst, dst_port) = flow(case, n);
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&ROUTER_MAC);
    f[6..12].copy_from_slice(&SENDER_MAC);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((FRAME_LEN - 14) as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let checksum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&((FRAME_LEN - 34) as u16).to_be_bytes());
    f[42..50].copy_from_slice(b"palisade");
    f
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a classic pcap (microsecond timestamps, Ethernet) of flows
/// 0..`flows`' frames, one each.
pub fn write_pcap(out: impl Write, case: Case, flows: u64) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, out);
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&0i32.to_le_bytes())?; // thiszone
    out.write_all(&0u32.to_le_bytes())?; // sigfigs
    out.write_all(&65_535u32.to_le_bytes())?; // snaplen
    out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
    for n in 0..flows {
        let usec = n % 1_000_000;
        out.write_all(&((n / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(usec as u32).to_le_bytes())?;
        out.write_all(&(FRAME_LEN as u32).to_le_bytes())?;
        out.write_all(&(FRAME_LEN as u32).to_le_bytes())?;
        out.write_all(&frame(case, n))?;
    }
    out.flush()
}

/// Sizes that follow from the flow count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Frames in the capture (one per flow).
    pub frames: u64,
    /// Mbufs in the pool: the preloaded capture plus every ring and cache.
    pub mbufs: u64,
    /// MiB of hugepages the profile asks for: the pool and room for the
    /// rest (the preload ring, port structures).
    pub socket_mem_mb: u64,
}

impl Sizing {
    /// The sizes for `flows` flows.
    pub fn for_flows(flows: u64) -> Sizing {
        let mbufs = flows + MBUF_HEADROOM;
        // As palisade_dpdk_config's estimate: the 128-byte mbuf, a cache
        // line of mempool header, the 2176-byte data room.
        let pool = mbufs * (128 + 64 + 2176);
        // The preload ring (a pointer per frame, rounded to a power of
        // two), EAL's own needs and the ports: 128 MiB, rounded up.
        let ring = (flows + 1).next_power_of_two() * 8;
        let socket_mem_mb = (pool + ring).div_ceil(1 << 20) + 128;
        Sizing {
            frames: flows,
            mbufs,
            socket_mem_mb,
        }
    }
}

/// The DPDK profile replaying `pcap` (an absolute path).
pub fn profile_toml(pcap: &Path, sizing: Sizing, file_prefix: &str) -> String {
    format!(
        "# Written by `palisade-perf appliance-case` for perf/bench-appliance.sh.\n\
         workers = [1]\n\
         \n\
         [eal]\n\
         lcores = [0, 1]\n\
         main_lcore = 0\n\
         file_prefix = \"{file_prefix}\"\n\
         log_level = \"notice\"\n\
         # Unlinked at once: pages go back to the kernel when the process\n\
         # ends, not held by files until the next run of this prefix.\n\
         extra_args = [\"--huge-unlink\"]\n\
         \n\
         [eal.memory]\n\
         # Hugepages only: the script refuses a run that fell back to --no-huge.\n\
         mode = \"hugepages\"\n\
         socket_mem_mb = [{mem}]\n\
         memory_mb = {mem}\n\
         \n\
         [mempool]\n\
         # infinite_rx preloads all {frames} frames of the capture into mbufs.\n\
         mbufs = {mbufs}\n\
         cache = {MEMPOOL_CACHE}\n\
         \n\
         [[ports]]\n\
         name = \"{SENDER_PORT}\"\n\
         vdev = \"net_pcap0,rx_pcap={pcap},tx_pcap=/dev/null,infinite_rx=1\"\n\
         rx_descriptors = {DESCRIPTORS}\n\
         tx_descriptors = {DESCRIPTORS}\n\
         \n\
         [[ports]]\n\
         name = \"{RECEIVER_PORT}\"\n\
         vdev = \"net_null0,no-rx=1\"\n\
         rx_descriptors = {DESCRIPTORS}\n\
         tx_descriptors = {DESCRIPTORS}\n",
        mem = sizing.socket_mem_mb,
        frames = sizing.frames,
        mbufs = sizing.mbufs,
        pcap = pcap.display(),
    )
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The appliance configuration on `profile`: one VPC, the sender ENI
/// (source/destination check off) on the pcap port, the receiver ENI
/// (group `web`: UDP 80 from anywhere) and the uplink on the null port.
pub fn appliance_toml(profile: &Path, max_flows_per_worker: u64) -> String {
    let mut text = format!(
        "# Written by `palisade-perf appliance-case` for perf/bench-appliance.sh.\n\
         [appliance]\n\
         profile = {profile:?}\n\
         max_flows_per_worker = {max_flows_per_worker}\n\
         router_mac = \"{router}\"\n\
         \n\
         [[vpc]]\n\
         name = \"bench\"\n\
         cidr = \"10.0.0.0/16\"\n\
         \n\
         [[subnet]]\n\
         name = \"senders\"\n\
         vpc = \"bench\"\n\
         cidr = \"10.0.1.0/24\"\n\
         \n\
         [[subnet]]\n\
         name = \"receivers\"\n\
         vpc = \"bench\"\n\
         cidr = \"10.0.2.0/24\"\n\
         \n\
         [[security_group]]\n\
         name = \"web\"\n\
         vpc = \"bench\"\n\
         [[security_group.ingress]]\n\
         protocol = \"udp\"\n\
         from_port = {ALLOWED_PORT}\n\
         to_port = {ALLOWED_PORT}\n\
         cidr = \"0.0.0.0/0\"\n",
        profile = profile.display().to_string(),
        router = mac(ROUTER_MAC),
    );
    // Writing to a String cannot fail.
    let _ = write!(
        text,
        "\n[[eni]]\n\
         name = \"sender\"\n\
         subnet = \"senders\"\n\
         port = \"{SENDER_PORT}\"\n\
         mac = \"{}\"\n\
         ips = [\"{SENDER_IP}\"]\n\
         # A router / NAT instance: its frames come from other addresses.\n\
         source_dest_check = false\n\
         \n\
         [[eni]]\n\
         name = \"receiver\"\n\
         subnet = \"receivers\"\n\
         port = \"{RECEIVER_PORT}\"\n\
         mac = \"{}\"\n\
         ips = [\"{RECEIVER_IP}\"]\n\
         groups = [\"web\"]\n\
         \n\
         [uplink]\n\
         port = \"{RECEIVER_PORT}\"\n\
         mac = \"{}\"\n",
        mac(SENDER_MAC),
        mac(RECEIVER_MAC),
        mac(UPLINK_MAC),
    );
    text
}

/// The files of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFiles {
    /// The case's directory.
    pub dir: PathBuf,
    /// Whether they were already there (nothing written).
    pub cached: bool,
    /// The sizes.
    pub sizing: Sizing,
}

/// Writes (or finds, when `dir/CASE-FLOWS/params` matches) the capture
/// `frames.pcap`, the profile `profile.toml`, the configuration
/// `palisade.toml` and `testpmd.args` (EAL arguments, one a line, as the
/// profile gives them to the appliance but with its own file prefix, then
/// testpmd's with the same burst, rings, pool and cache).
pub fn write_case(
    dir: &Path,
    case: Case,
    flows: u64,
    max_flows_per_worker: u64,
) -> Result<CaseFiles, CaseError> {
    if flows == 0 || flows > SOURCE_ADDRESSES * SOURCE_PORTS {
        return Err(CaseError::FlowCount(flows));
    }
    let dir = std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .join(format!("{}-{flows}", case.name()));
    let sizing = Sizing::for_flows(flows);
    let params = format!(
        "format={FORMAT} case={} flows={flows} max_flows_per_worker={max_flows_per_worker}\n",
        case.name()
    );
    let params_path = dir.join("params");
    if std::fs::read_to_string(&params_path).is_ok_and(|old| old == params) {
        return Ok(CaseFiles {
            dir,
            cached: true,
            sizing,
        });
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CaseError::Write { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    // A half-written cache must not pass for a whole one.
    let _ = std::fs::remove_file(&params_path);
    let pcap = dir.join("frames.pcap");
    let file = std::fs::File::create(&pcap).map_err(write_err(&pcap))?;
    write_pcap(file, case, flows).map_err(write_err(&pcap))?;
    let profile = dir.join("profile.toml");
    std::fs::write(&profile, profile_toml(&pcap, sizing, "palisade-bench"))
        .map_err(write_err(&profile))?;
    let config = dir.join("palisade.toml");
    std::fs::write(&config, appliance_toml(&profile, max_flows_per_worker))
        .map_err(write_err(&config))?;
    let testpmd = dir.join("testpmd.args");
    std::fs::write(&testpmd, testpmd_args(&pcap, sizing)).map_err(write_err(&testpmd))?;
    std::fs::write(&params_path, params).map_err(write_err(&params_path))?;
    Ok(CaseFiles {
        dir,
        cached: false,
        sizing,
    })
}

/// testpmd's arguments, one a line: the EAL's as the profile gives them to
/// the appliance (same lcores, memory, vdevs; its own file prefix), then
/// io forwarding on one core with the appliance's burst (32), rings, pool
/// and cache.
pub fn testpmd_args(pcap: &Path, sizing: Sizing) -> String {
    let profile = profile_toml(pcap, sizing, "palisade-bench-testpmd");
    let mut lines = match palisade_dpdk_config::Profile::from_toml_str(&profile, "generated") {
        // The program name is the caller's.
        Ok(profile) => profile.eal_args().into_iter().skip(1).collect::<Vec<_>>(),
        Err(error) => vec![format!("# the generated profile is invalid: {error}")],
    };
    lines.extend([
        "--".to_owned(),
        "--forward-mode=io".to_owned(),
        "--nb-cores=1".to_owned(),
        "--burst=32".to_owned(),
        format!("--rxd={DESCRIPTORS}"),
        format!("--txd={DESCRIPTORS}"),
        format!("--total-num-mbufs={}", sizing.mbufs),
        format!("--mbcache={MEMPOOL_CACHE}"),
        "--stats-period=1".to_owned(),
    ]);
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_controlplane::config::Config;
    use palisade_dataplane::policy::PolicySnapshot;
    use palisade_dataplane::{HeapPacket, PacketBuf, Verdict, Worker, WorkerConfig};
    use std::collections::HashSet;

    const SENDER: u16 = 0;
    const RECEIVER: u16 = 1;

    fn worker_and_snapshot() -> (Worker, PolicySnapshot) {
        let text = appliance_toml(Path::new("profile.toml"), 1 << 16);
        let config = Config::from_toml_str(&text, "generated").expect("valid config");
        let spec = config
            .to_spec(&|name| match name {
                SENDER_PORT => Some(SENDER),
                RECEIVER_PORT => Some(RECEIVER),
                _ => None,
            })
            .expect("ports resolve");
        let snapshot = PolicySnapshot::compile(&spec, 1).expect("compiles");
        let worker = Worker::new(WorkerConfig {
            max_flows: 1 << 16,
            ..WorkerConfig::default()
        })
        .unwrap();
        (worker, snapshot)
    }

    /// Runs flows 0..n of `case` twice through the real `process()`;
    /// returns both passes' verdicts and the flows tracked after each.
    fn two_passes(case: Case, n: u64) -> [(Vec<Verdict>, usize); 2] {
        let (mut worker, snapshot) = worker_and_snapshot();
        let mut pass = |now| {
            let mut burst: Vec<HeapPacket> = (0..n)
                .map(|i| HeapPacket::new(SENDER, &frame(case, i)))
                .collect();
            let mut verdicts = vec![Verdict::Forward { port: u16::MAX }; burst.len()];
            worker.process(&mut burst, now, &snapshot, &mut verdicts);
            for (verdict, packet) in verdicts.iter().zip(&burst) {
                if *verdict == (Verdict::Forward { port: RECEIVER }) {
                    let next_hop = match case {
                        Case::NorthSouth => UPLINK_MAC,
                        _ => RECEIVER_MAC,
                    };
                    assert_eq!(packet.data()[..6], next_hop);
                    assert_eq!(packet.data()[6..12], ROUTER_MAC);
                }
            }
            (verdicts, worker.flows().len())
        };
        [pass(100), pass(101)]
    }

    /// Under the generated configuration the real `process()` forwards
    /// every established-case frame to the receiver, creating one flow per
    /// frame on the first pass and none on the second; the denied cases
    /// drop what the group does not allow. Were the frames or the
    /// configuration wrong, the benchmark would time drops.
    #[test]
    fn the_appliance_forwards_and_denies_as_each_case_says() {
        let forward = Verdict::Forward { port: RECEIVER };
        let [(first, after_first), (second, after_second)] = two_passes(Case::Established, 500);
        assert!(first.iter().all(|v| *v == forward), "{first:?}");
        assert!(second.iter().all(|v| *v == forward));
        assert_eq!((after_first, after_second), (500, 500));

        let [(first, _), (second, tracked)] = two_passes(Case::HalfDenied, 500);
        for verdicts in [first, second] {
            for (i, v) in verdicts.iter().enumerate() {
                assert_eq!(*v == forward, i % 2 == 0, "flow {i}: {v:?}");
                if i % 2 == 1 {
                    assert!(matches!(v, Verdict::Drop(_)), "flow {i}: {v:?}");
                }
            }
        }
        assert_eq!(tracked, 250);

        let [(first, _), (_, tracked)] = two_passes(Case::AllDenied, 100);
        assert!(first.iter().all(|v| matches!(v, Verdict::Drop(_))));
        assert_eq!(tracked, 0);
    }

    /// North-south frames go out of the uplink's port to its next hop
    /// under the compiled policy (whether the running appliance hands the
    /// configuration's `[uplink]` to its workers is the script's to see: it
    /// reports 0 forwarded if not).
    #[test]
    fn north_south_frames_leave_by_the_uplink() {
        let [(first, created), (second, kept)] = two_passes(Case::NorthSouth, 100);
        let forward = Verdict::Forward { port: RECEIVER };
        assert!(first.iter().chain(&second).all(|v| *v == forward));
        assert_eq!((created, kept), (100, 100));
    }

    #[test]
    fn flow_numbers_are_different_flows_and_frames_are_well_formed() {
        let mut seen = HashSet::new();
        for n in (0..200_000).chain([SOURCE_ADDRESSES * SOURCE_PORTS - 1]) {
            let f = flow(Case::Established, n);
            assert!(seen.insert(f), "flow {n} repeats");
            let bytes = frame(Case::Established, n);
            assert_eq!(ipv4_checksum(&bytes[14..34]), 0, "header checksum of {n}");
        }
    }

    #[test]
    fn the_capture_holds_one_frame_per_flow() {
        let mut out = Vec::new();
        write_pcap(&mut out, Case::HalfDenied, 3).unwrap();
        assert_eq!(out.len(), 24 + 3 * (16 + FRAME_LEN));
        assert_eq!(out[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
        let second = 24 + 16 + FRAME_LEN + 16;
        assert_eq!(out[second..second + FRAME_LEN], frame(Case::HalfDenied, 1));
    }

    /// The profile is valid for the appliance (mbufs cover the preload
    /// and the rings), and testpmd gets the same vdevs, memory and pool.
    #[test]
    fn profile_and_testpmd_arguments_agree() {
        let sizing = Sizing::for_flows(1_000_000);
        assert!(sizing.mbufs >= 1_000_000 + 4 * u64::from(DESCRIPTORS) + 2 * 384);
        let pcap = Path::new("/tmp/x/frames.pcap");
        let text = profile_toml(pcap, sizing, "palisade-bench");
        let profile = palisade_dpdk_config::Profile::from_toml_str(&text, "t").expect("valid");
        assert_eq!(u64::from(profile.mempool.mbufs), sizing.mbufs);
        assert!(profile.mempool.total_bytes() < sizing.socket_mem_mb << 20);
        let args = testpmd_args(pcap, sizing);
        assert!(!args.contains("invalid"), "{args}");
        let eal: Vec<&str> = args.lines().take_while(|l| *l != "--").collect();
        assert!(eal.contains(&"--socket-mem"));
        assert!(eal.contains(&"net_null0,no-rx=1"));
        assert!(eal.contains(&"palisade-bench-testpmd"));
        assert!(eal.contains(&"--huge-unlink"));
        assert!(args.contains(&format!("--total-num-mbufs={}\n", sizing.mbufs)));
        assert!(args.contains("--burst=32\n"));
    }

    #[test]
    fn a_case_is_written_once_and_then_found() {
        let dir = std::env::temp_dir().join(format!("palisade-perf-case-{}", std::process::id()));
        let first = write_case(&dir, Case::AllDenied, 10, 4096).unwrap();
        assert!(!first.cached);
        let second = write_case(&dir, Case::AllDenied, 10, 4096).unwrap();
        assert!(second.cached);
        let other = write_case(&dir, Case::AllDenied, 10, 8192).unwrap();
        assert!(!other.cached, "a different table size rewrites the config");
        let config = Config::load(&first.dir.join("palisade.toml")).expect("valid config");
        assert_eq!(config.appliance.max_flows_per_worker, 8192);
        assert!(matches!(
            write_case(&dir, Case::AllDenied, 0, 4096),
            Err(CaseError::FlowCount(0))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
