//! The memif generator's world and frames, sans-IO.
//!
//! `palisade-perf gen-memif` feeds `palisade run` from the other core
//! through one memif link: every frame it sends comes from one of a few
//! ENIs that all sit on the appliance's single memif port (one VPC, one
//! subnet, the VPC's default group: members may reach each other), and is
//! addressed to the router MAC, so the appliance routes it back out of the
//! same port to the peer ENI and the generator counts what returns.
//!
//! This module is the part that needs no DPDK: the ENIs, the mapping from a
//! flow number to its 4-tuple, the frame templates (built once with the
//! dataplane's `testkit`, so they are exactly what the golden tests send)
//! and the per-frame patch (ports plus an incremental TCP checksum), and the
//! appliance configuration that declares the same ENIs. Keeping the world in
//! one place is what makes the generator's frames and the appliance's
//! configuration agree; the tests run the frames through the real
//! `Worker::process` under that configuration.

use core::net::{IpAddr, Ipv4Addr};
use std::fmt::Write as _;

use palisade_dataplane::testkit::{FrameSpec, Payload, flags, frame};
use palisade_dataplane::wire::checksum::update_word;

/// The router MAC the generated configuration sets and frames go to.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x50, 0x41, 0x4c, 0x00, 0x01];

/// The DPDK profile port the ENIs are bound to (`dpdk-config/memif-bench.toml`).
pub const PORT_NAME: &str = "memif";

/// Every generated frame is this long: Ethernet, IPv4, TCP without
/// options, `testkit`'s 24-byte payload.
pub const FRAME_LEN: usize = 14 + 20 + 20 + 24;

/// Where the TCP ports and checksum sit in a [`FRAME_LEN`] frame.
const SRC_PORT_AT: usize = 34;
const DST_PORT_AT: usize = 36;
const TCP_CHECKSUM_AT: usize = 50;

/// Source ports cycle through 1024..65536 before the destination port moves.
const SRC_PORTS: u64 = 65536 - 1024;

/// The first port numbers, which every template carries before patching.
const TEMPLATE_SRC_PORT: u16 = 1024;
const TEMPLATE_DST_PORT: u16 = 1;

/// What problems a traffic plan can have.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrafficError {
    /// Fewer than two ENIs leave no pair to talk; more than 200 do not fit
    /// the addresses 10.0.1.10 .. 10.0.1.209 of the /24 subnet.
    #[error("{0} ENIs: need 2 to 200")]
    EniCount(usize),
}

/// The kind of TCP segment a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The opening SYN, client to server.
    Syn,
    /// The server's SYN+ACK.
    SynAck,
    /// An ACK with 24 bytes of data (the handshake's last ACK, and every
    /// data frame of an established flow, in either direction).
    Ack,
}

impl Segment {
    const ALL: [Segment; 3] = [Segment::Syn, Segment::SynAck, Segment::Ack];

    fn flags(self) -> u8 {
        match self {
            Segment::Syn => flags::SYN,
            Segment::SynAck => flags::SYN_ACK,
            Segment::Ack => flags::ACK,
        }
    }
}

/// One TCP connection: client ENI `client` to server ENI `server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The client's ENI index.
    pub client: usize,
    /// The server's ENI index.
    pub server: usize,
    /// The client's port.
    pub src_port: u16,
    /// The server's port.
    pub dst_port: u16,
}

/// The generator's world: `enis` ENIs on the one memif port, and every
/// frame it can send, pre-built.
#[derive(Debug, Clone)]
pub struct TrafficPlan {
    enis: usize,
    /// Templates by (segment, sender, receiver), all with the template ports.
    templates: Vec<[u8; FRAME_LEN]>,
}

impl TrafficPlan {
    /// A plan with `enis` ENIs (2 to 200).
    pub fn new(enis: usize) -> Result<TrafficPlan, TrafficError> {
        if !(2..=200).contains(&enis) {
            return Err(TrafficError::EniCount(enis));
        }
        let mut templates = Vec::with_capacity(Segment::ALL.len() * enis * enis);
        for segment in Segment::ALL {
            for sender in 0..enis {
                for receiver in 0..enis {
                    let bytes = frame(&FrameSpec::new(
                        Self::eni_mac(sender),
                        ROUTER_MAC,
                        IpAddr::V4(Self::eni_ip(sender)),
                        IpAddr::V4(Self::eni_ip(receiver)),
                        Payload::Tcp {
                            src_port: TEMPLATE_SRC_PORT,
                            dst_port: TEMPLATE_DST_PORT,
                            flags: segment.flags(),
                        },
                    ));
                    let mut template = [0; FRAME_LEN];
                    // testkit's TCP frames without options are FRAME_LEN
                    // long; the test below pins it.
                    let len = bytes.len().min(FRAME_LEN);
                    template[..len].copy_from_slice(&bytes[..len]);
                    templates.push(template);
                }
            }
        }
        Ok(TrafficPlan { enis, templates })
    }

    /// How many ENIs.
    pub fn enis(&self) -> usize {
        self.enis
    }

    /// ENI `index`'s MAC: 02:00:00:00:10:xx.
    pub fn eni_mac(index: usize) -> [u8; 6] {
        [0x02, 0x00, 0x00, 0x00, 0x10, index as u8]
    }

    /// ENI `index`'s address: 10.0.1.(10 + index).
    pub fn eni_ip(index: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 1, 10 + index as u8)
    }

    /// Flow number `n`: consecutive numbers go round the ordered ENI pairs,
    /// then move the client port, then the server port, so numbers below
    /// `pairs × 64512 × 65535` are all different connections (the "new
    /// flows" mode only counts up).
    pub fn flow(&self, n: u64) -> Flow {
        let others = self.enis as u64 - 1;
        let pairs = self.enis as u64 * others;
        let pair = n % pairs;
        let rest = n / pairs;
        let client = (pair / others) as usize;
        let mut server = (pair % others) as usize;
        if server >= client {
            server += 1;
        }
        Flow {
            client,
            server,
            src_port: 1024 + (rest % SRC_PORTS) as u16,
            dst_port: 1 + ((rest / SRC_PORTS) % 65535) as u16,
        }
    }

    /// Writes `flow`'s `segment` into `out` (at least [`FRAME_LEN`] bytes;
    /// returns false, writing nothing, when shorter). `reply` sends it
    /// from the server to the client. A copy of the template and three
    /// 16-bit patches: cheap enough for the generator's hot loop.
    #[inline]
    pub fn write(&self, flow: Flow, segment: Segment, reply: bool, out: &mut [u8]) -> bool {
        let Some(out) = out.get_mut(..FRAME_LEN) else {
            return false;
        };
        let (sender, receiver, src_port, dst_port) = if reply {
            (flow.server, flow.client, flow.dst_port, flow.src_port)
        } else {
            (flow.client, flow.server, flow.src_port, flow.dst_port)
        };
        let index = (segment as usize * self.enis + sender) * self.enis + receiver;
        let Some(template) = self.templates.get(index) else {
            return false;
        };
        out.copy_from_slice(template);
        let mut checksum = u16::from_be_bytes([out[TCP_CHECKSUM_AT], out[TCP_CHECKSUM_AT + 1]]);
        checksum = update_word(checksum, TEMPLATE_SRC_PORT, src_port);
        checksum = update_word(checksum, TEMPLATE_DST_PORT, dst_port);
        out[SRC_PORT_AT..SRC_PORT_AT + 2].copy_from_slice(&src_port.to_be_bytes());
        out[DST_PORT_AT..DST_PORT_AT + 2].copy_from_slice(&dst_port.to_be_bytes());
        out[TCP_CHECKSUM_AT..TCP_CHECKSUM_AT + 2].copy_from_slice(&checksum.to_be_bytes());
        true
    }

    /// The appliance configuration (docs/CONFIG.md) that declares this
    /// plan's ENIs on the profile's memif port: one VPC, one subnet, the
    /// default group (members reach each other), the default ACL.
    pub fn appliance_config(&self, profile: &str, max_flows_per_worker: u64) -> String {
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let mut text = format!(
            "# Written by `palisade-perf memif-config`: the world of `palisade-perf gen-memif`.\n\
             [appliance]\n\
             profile = {profile:?}\n\
             max_flows_per_worker = {max_flows_per_worker}\n\
             router_mac = \"{}\"\n\
             \n\
             [[vpc]]\n\
             name = \"bench\"\n\
             cidr = \"10.0.0.0/16\"\n\
             \n\
             [[subnet]]\n\
             name = \"bench\"\n\
             vpc = \"bench\"\n\
             cidr = \"10.0.1.0/24\"\n",
            mac(ROUTER_MAC)
        );
        for index in 0..self.enis {
            // Writing to a String cannot fail.
            let _ = write!(
                text,
                "\n[[eni]]\nname = \"gen-{index}\"\nsubnet = \"bench\"\nport = \"{PORT_NAME}\"\n\
                 mac = \"{}\"\nips = [\"{}\"]\n",
                mac(Self::eni_mac(index)),
                Self::eni_ip(index)
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_controlplane::config::Config;
    use palisade_dataplane::policy::PolicySnapshot;
    use palisade_dataplane::{HeapPacket, PacketBuf, Verdict, Worker, WorkerConfig};
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn reference_frame(plan: &TrafficPlan, flow: Flow, segment: Segment, reply: bool) -> Vec<u8> {
        let (sender, receiver, src_port, dst_port) = if reply {
            (flow.server, flow.client, flow.dst_port, flow.src_port)
        } else {
            (flow.client, flow.server, flow.src_port, flow.dst_port)
        };
        assert!(sender < plan.enis() && receiver < plan.enis());
        frame(&FrameSpec::new(
            TrafficPlan::eni_mac(sender),
            ROUTER_MAC,
            IpAddr::V4(TrafficPlan::eni_ip(sender)),
            IpAddr::V4(TrafficPlan::eni_ip(receiver)),
            Payload::Tcp {
                src_port,
                dst_port,
                flags: segment.flags(),
            },
        ))
    }

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            Just(Segment::Syn),
            Just(Segment::SynAck),
            Just(Segment::Ack)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The patched template is byte for byte the frame testkit builds
        /// for the same flow: ports and the incrementally updated checksum.
        #[test]
        fn patched_frame_is_the_frame_built_from_scratch(
            enis in 2usize..=12,
            n in any::<u64>(),
            segment in segment(),
            reply in any::<bool>(),
        ) {
            let plan = TrafficPlan::new(enis).unwrap();
            let flow = plan.flow(n);
            let mut out = [0u8; FRAME_LEN + 3];
            prop_assert!(plan.write(flow, segment, reply, &mut out));
            let expected = reference_frame(&plan, flow, segment, reply);
            prop_assert_eq!(expected.len(), FRAME_LEN);
            prop_assert_eq!(&out[..FRAME_LEN], &expected[..]);
            prop_assert_eq!(&out[FRAME_LEN..], &[0u8; 3][..]);
        }

        /// A flow's two ENIs are different and inside the plan.
        #[test]
        fn flows_join_two_different_enis(enis in 2usize..=12, n in any::<u64>()) {
            let plan = TrafficPlan::new(enis).unwrap();
            let flow = plan.flow(n);
            prop_assert!(flow.client < enis && flow.server < enis);
            prop_assert_ne!(flow.client, flow.server);
            prop_assert!(flow.src_port >= 1024 && flow.dst_port >= 1);
        }
    }

    /// The largest plan (whose templates take a while to build in a debug
    /// build, hence not in the property tests) patches correctly too.
    #[test]
    fn the_largest_plan_patches_like_the_smallest() {
        let plan = TrafficPlan::new(200).unwrap();
        for n in [0, 1, 39_799, 39_800, 123_456_789, u64::MAX] {
            let flow = plan.flow(n);
            assert!(flow.client < 200 && flow.server < 200 && flow.client != flow.server);
            for (segment, reply) in [(Segment::Syn, false), (Segment::Ack, true)] {
                let mut out = [0u8; FRAME_LEN];
                assert!(plan.write(flow, segment, reply, &mut out));
                assert_eq!(out[..], reference_frame(&plan, flow, segment, reply)[..]);
            }
        }
    }

    #[test]
    fn consecutive_flow_numbers_are_different_connections() {
        // 4 ENIs make 12 pairs; 2 × 12 × 64512 numbers also cross a
        // destination-port step.
        let plan = TrafficPlan::new(4).unwrap();
        let count = 2 * 12 * SRC_PORTS + 100;
        let mut seen = HashSet::with_capacity(count as usize);
        for n in 0..count {
            assert!(seen.insert(plan.flow(n)), "flow {n} repeats");
        }
    }

    #[test]
    fn eni_counts_outside_the_subnet_are_refused() {
        assert_eq!(TrafficPlan::new(1).unwrap_err(), TrafficError::EniCount(1));
        assert_eq!(
            TrafficPlan::new(201).unwrap_err(),
            TrafficError::EniCount(201)
        );
        let plan = TrafficPlan::new(3).unwrap();
        assert!(!plan.write(plan.flow(0), Segment::Syn, false, &mut [0; FRAME_LEN - 1]));
    }

    /// The generated configuration is valid, and under it the real
    /// `process()` forwards every frame the generator sends — the
    /// handshake, established data both ways, and SYNs of new flows — back
    /// out of the memif port to the receiving ENI. If this failed, the
    /// benchmark would measure drops, not forwarding.
    #[test]
    fn the_appliance_forwards_every_generated_frame_under_the_generated_config() {
        const MEMIF_PORT: u16 = 0;
        let plan = TrafficPlan::new(6).unwrap();
        let text = plan.appliance_config("dpdk-config/memif-bench.toml", 4096);
        let config = Config::from_toml_str(&text, "generated").expect("valid config");
        let spec = config
            .to_spec(&|name| (name == PORT_NAME).then_some(MEMIF_PORT))
            .expect("port resolves");
        let snapshot = PolicySnapshot::compile(&spec, 1).expect("compiles");
        let mut worker = Worker::new(WorkerConfig {
            max_flows: 4096,
            ..WorkerConfig::default()
        })
        .unwrap();
        let flows: Vec<Flow> = (0..64).map(|n| plan.flow(n)).collect();
        let run = |worker: &mut Worker, frames: Vec<(Vec<u8>, Flow, bool)>| {
            let mut burst: Vec<HeapPacket> = frames
                .iter()
                .map(|(bytes, _, _)| HeapPacket::new(MEMIF_PORT, bytes))
                .collect();
            let mut verdicts = vec![Verdict::Forward { port: u16::MAX }; burst.len()];
            worker.process(&mut burst, 100, &snapshot, &mut verdicts);
            for ((verdict, packet), (_, flow, reply)) in verdicts.iter().zip(&burst).zip(&frames) {
                assert_eq!(*verdict, Verdict::Forward { port: MEMIF_PORT });
                let receiver = if *reply { flow.client } else { flow.server };
                assert_eq!(packet.data()[..6], TrafficPlan::eni_mac(receiver));
                assert_eq!(packet.data()[6..12], ROUTER_MAC);
            }
        };
        let frames_of = |segment: Segment, reply: bool| -> Vec<(Vec<u8>, Flow, bool)> {
            flows
                .iter()
                .map(|&flow| {
                    let mut bytes = vec![0; FRAME_LEN];
                    assert!(plan.write(flow, segment, reply, &mut bytes));
                    (bytes, flow, reply)
                })
                .collect()
        };
        run(&mut worker, frames_of(Segment::Syn, false));
        run(&mut worker, frames_of(Segment::SynAck, true));
        run(&mut worker, frames_of(Segment::Ack, false));
        run(&mut worker, frames_of(Segment::Ack, true));
        assert_eq!(worker.flows().len(), flows.len());
        // New flows: SYNs only, numbers never used before.
        let fresh: Vec<(Vec<u8>, Flow, bool)> = (1000..1032)
            .map(|n| {
                let flow = plan.flow(n);
                let mut bytes = vec![0; FRAME_LEN];
                assert!(plan.write(flow, Segment::Syn, false, &mut bytes));
                (bytes, flow, false)
            })
            .collect();
        run(&mut worker, fresh);
        assert_eq!(worker.flows().len(), flows.len() + 32);
    }
}
