//! `process()` against the reference router, on random worlds.
//!
//! Each case builds a random VPC world (two VPCs, maybe peered; subnets with
//! default or random ACLs; groups with random rules of every kind — all
//! protocols, port ranges, ICMP type/code, IPv4/IPv6 CIDRs, prefix lists,
//! group peers in the same or the other VPC; ENIs with VLANs, several
//! groups, source/dest check on or off; maybe an uplink), then plays a
//! random conversation: new packets between random endpoints, replies to
//! earlier packets, fragments, ICMP errors quoting earlier packets, time
//! passing, and rule changes mid-connection published as new generations.
//! Every packet must get the same verdict from both, and every forwarded
//! frame the same bytes.

use core::net::IpAddr;

use palisade_dataplane::policy::{PolicySnapshot, PolicySpec};
use palisade_dataplane::reference::ReferenceRouter;
use palisade_dataplane::testkit::worlds::{
    EXTERNAL_V4, Rng, UPLINK_MAC, VPCS, random_nacl_entries, random_rule, v4, v6, world,
};
use palisade_dataplane::testkit::{FrameSpec, Payload, ROUTER_MAC, flags, frame, later_fragment};
use palisade_dataplane::{DropReason, HeapPacket, PacketBuf, Verdict, Worker, WorkerConfig};
use proptest::prelude::*;

/// A MAC no ENI and no uplink has.
const STRANGER_MAC: [u8; 6] = [0x02, 0xdd, 0, 0, 0, 1];

/// A rule change mid-conversation.
fn mutate(spec: &mut PolicySpec, choice: u64) {
    let mut rng = Rng(choice);
    let groups: Vec<(String, u8)> = spec
        .security_groups
        .iter()
        .map(|g| (g.id.as_str().to_owned(), 0))
        .collect();
    match rng.below(6) {
        0 | 1 => {
            // Remove a rule.
            let g = rng.below(spec.security_groups.len() as u64) as usize;
            let group = &mut spec.security_groups[g];
            let list = if rng.chance(50) {
                &mut group.ingress
            } else {
                &mut group.egress
            };
            if !list.is_empty() {
                let at = rng.below(list.len() as u64) as usize;
                list.remove(at);
            }
        }
        2 => {
            // Add a rule.
            let g = rng.below(spec.security_groups.len() as u64) as usize;
            let id = format!("sgr-new{choice}");
            let rule = random_rule(&mut rng, &id, &groups);
            spec.security_groups[g].ingress.push(rule);
        }
        3 => {
            // Rewrite a custom ACL.
            let entries = random_nacl_entries(&mut rng);
            let n = 1 + 2 * rng.below(u64::from(VPCS)) as usize;
            spec.nacls[n].entries = entries;
        }
        4 => {
            // Toggle the peering.
            if let Some(p) = spec.peerings.first_mut() {
                p.active = !p.active;
            }
        }
        _ => {
            // Re-attach an ENI to another group of its VPC.
            let e = rng.below(spec.enis.len() as u64) as usize;
            let vpc = if e % 2 == 0 { "sg-1" } else { "sg-2" };
            spec.enis[e].groups = vec![format!("{vpc}{}", rng.below(2)).as_str().into()];
        }
    }
}

/// One step of a conversation, as plain numbers proptest can shrink.
#[derive(Clone, Debug)]
enum Event {
    /// A new packet: sender, receiver/address choice, protocol choice,
    /// ports choice, flags choice.
    Send(u8, u8, u8, u8, u8),
    /// The receiver of the `n`-th earlier packet answers it.
    Reply(u8, u8),
    /// An ICMP error from the receiver of the `n`-th earlier packet.
    Error(u8),
    /// The `n`-th earlier packet again as a first fragment, then a later one.
    Fragment(u8, bool),
    /// The `n`-th earlier packet again, as sent: a flood of one flow (a
    /// denied one then meets the denied-flow memory).
    Repeat(u8),
    /// Time passes.
    Wait(u8),
    /// A rule change, published as the next generation.
    Change(u64),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d, e)| Event::Send(a, b, c, d, e)),
        6 => (any::<u8>(), any::<u8>()).prop_map(|(n, f)| Event::Reply(n, f)),
        1 => any::<u8>().prop_map(Event::Error),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(n, first)| Event::Fragment(n, first)),
        3 => any::<u8>().prop_map(Event::Repeat),
        2 => any::<u8>().prop_map(Event::Wait),
        1 => any::<u64>().prop_map(Event::Change),
    ]
}

/// Who sends: an ENI (index), the uplink or a stranger, and on which port.
#[derive(Clone, Copy, Debug)]
enum Sender {
    Eni(usize),
    Uplink,
    Stranger,
}

struct Sent {
    port: u16,
    spec: FrameSpec,
    /// Where the reply comes from.
    replier: Option<(u16, [u8; 6], Option<u16>)>,
}

struct Harness {
    spec: PolicySpec,
    snapshot: PolicySnapshot,
    worker: Worker,
    reference: ReferenceRouter,
    now: u32,
    sent: Vec<Sent>,
    compared: usize,
}

impl Harness {
    fn endpoint_of(&self, ip: IpAddr) -> Option<(u16, [u8; 6], Option<u16>)> {
        if let Some(e) = self.spec.enis.iter().find(|e| e.private_ips.contains(&ip)) {
            return Some((e.port, e.mac, e.vlan));
        }
        self.spec.uplink.as_ref().map(|u| (u.port, u.mac, u.vlan))
    }

    fn send_event(
        &mut self,
        who: u8,
        to: u8,
        proto: u8,
        ports: u8,
        flag: u8,
    ) -> Result<(), TestCaseError> {
        let enis = self.spec.enis.len();
        let sender = match who % 16 {
            14 => Sender::Uplink,
            15 => Sender::Stranger,
            n => Sender::Eni(usize::from(n) % enis),
        };
        let want_v6 = to & 0x80 != 0;
        let dst_ip = match to % 8 {
            0..=4 => {
                let e = &self.spec.enis[usize::from(to) % enis];
                e.private_ips[usize::from(want_v6)]
            }
            5 => {
                // The gateway of some subnet.
                let v = 1 + (to >> 3) % 2;
                let s = 1 + (to >> 4) % 2;
                if want_v6 {
                    IpAddr::V6(v6(v, s, 1))
                } else {
                    IpAddr::V4(v4(v, s, 1))
                }
            }
            6 => IpAddr::V4(EXTERNAL_V4),
            _ => IpAddr::V4(v4(1, 1, 99)),
        };
        let (port, src_mac, vlan, src_ip) = match sender {
            Sender::Eni(i) => {
                let e = &self.spec.enis[i];
                let family = usize::from(dst_ip.is_ipv6());
                // Now and then a spoofed source.
                let src = if ports % 29 == 0 {
                    match dst_ip {
                        IpAddr::V4(_) => IpAddr::V4(v4(1, 2, 200)),
                        IpAddr::V6(_) => IpAddr::V6(v6(1, 2, 200)),
                    }
                } else {
                    e.private_ips[family]
                };
                (e.port, e.mac, e.vlan, src)
            }
            Sender::Uplink => (
                3,
                UPLINK_MAC,
                None,
                match dst_ip {
                    IpAddr::V4(_) => IpAddr::V4(EXTERNAL_V4),
                    IpAddr::V6(_) => IpAddr::V6("2001:db8::7".parse().unwrap()),
                },
            ),
            Sender::Stranger => (
                0,
                STRANGER_MAC,
                None,
                match dst_ip {
                    IpAddr::V4(_) => IpAddr::V4(v4(1, 1, 10)),
                    IpAddr::V6(_) => IpAddr::V6(v6(1, 1, 10)),
                },
            ),
        };
        let sport = [40000, 40001, 80, 1500][usize::from(ports % 4)];
        let dport = [80, 22, 1500, 40000, 53][usize::from((ports >> 2) % 5)];
        let tcp_flags = [
            flags::SYN,
            flags::SYN,
            flags::ACK,
            flags::FIN_ACK,
            flags::RST,
            flags::SYN_ACK,
        ][usize::from(flag % 6)];
        let payload = match proto % 6 {
            0..=2 => Payload::Tcp {
                src_port: sport,
                dst_port: dport,
                flags: tcp_flags,
            },
            3 => Payload::Udp {
                src_port: sport,
                dst_port: dport,
            },
            4 => Payload::Echo {
                id: u16::from(ports % 3),
                reply: flag % 5 == 0,
            },
            _ => Payload::Raw { protocol: 47 },
        };
        let mut spec = FrameSpec::new(src_mac, ROUTER_MAC, src_ip, dst_ip, payload);
        spec.vlan = vlan;
        if flag % 37 == 0 {
            spec.ttl = 1;
        }
        let replier = self.endpoint_of(dst_ip);
        self.check(port, &frame(&spec))?;
        self.sent.push(Sent {
            port,
            spec,
            replier,
        });
        Ok(())
    }

    fn reply_event(&mut self, n: u8, flag: u8) -> Result<(), TestCaseError> {
        if self.sent.is_empty() {
            return Ok(());
        }
        let original = &self.sent[usize::from(n) % self.sent.len()];
        let Some((port, mac, vlan)) = original.replier else {
            return Ok(());
        };
        let mut spec = original.spec.clone();
        spec.src = original.spec.dst;
        spec.dst = original.spec.src;
        spec.src_mac = mac;
        spec.vlan = vlan;
        spec.ttl = 64;
        spec.fragment = None;
        spec.payload = match spec.payload {
            Payload::Tcp {
                src_port, dst_port, ..
            } => Payload::Tcp {
                src_port: dst_port,
                dst_port: src_port,
                flags: [
                    flags::SYN_ACK,
                    flags::ACK,
                    flags::FIN_ACK,
                    flags::RST,
                    flags::SYN,
                ][usize::from(flag % 5)],
            },
            Payload::Udp { src_port, dst_port } => Payload::Udp {
                src_port: dst_port,
                dst_port: src_port,
            },
            Payload::Echo { id, .. } => Payload::Echo { id, reply: true },
            other => other,
        };
        let replier = Some((original.port, original.spec.src_mac, original.spec.vlan));
        self.check(port, &frame(&spec))?;
        self.sent.push(Sent {
            port,
            spec,
            replier,
        });
        Ok(())
    }

    fn repeat_event(&mut self, n: u8) -> Result<(), TestCaseError> {
        if self.sent.is_empty() {
            return Ok(());
        }
        let original = &self.sent[usize::from(n) % self.sent.len()];
        let (port, bytes) = (original.port, frame(&original.spec));
        self.check(port, &bytes)
    }

    fn error_event(&mut self, n: u8) -> Result<(), TestCaseError> {
        if self.sent.is_empty() {
            return Ok(());
        }
        let original = &self.sent[usize::from(n) % self.sent.len()];
        let Some((port, mac, vlan)) = original.replier else {
            return Ok(());
        };
        let mut spec = FrameSpec::new(
            mac,
            ROUTER_MAC,
            original.spec.dst,
            original.spec.src,
            Payload::Unreachable {
                quoted: frame(&original.spec),
            },
        );
        spec.vlan = vlan;
        self.check(port, &frame(&spec))
    }

    fn fragment_event(&mut self, n: u8, with_first: bool) -> Result<(), TestCaseError> {
        if self.sent.is_empty() {
            return Ok(());
        }
        let original = &self.sent[usize::from(n) % self.sent.len()];
        let port = original.port;
        let mut first = original.spec.clone();
        let ident = 1000 + u32::from(n);
        first.fragment = Some((ident, 0, true));
        let later = later_fragment(&first, ident, 64, false);
        if with_first {
            self.check(port, &frame(&first))?;
        }
        self.check(port, &later)
    }

    /// Sends one frame through both and compares.
    fn check(&mut self, port: u16, bytes: &[u8]) -> Result<(), TestCaseError> {
        let mut burst = [HeapPacket::new(port, bytes)];
        let mut verdicts = [Verdict::Drop(DropReason::Malformed)];
        self.worker
            .process(&mut burst, self.now, &self.snapshot, &mut verdicts);
        let (expected, expected_out) = self.reference.handle(&self.spec, port, bytes, self.now);
        if std::env::var_os("DIFF_TRACE").is_some() {
            eprintln!(
                "t={} port={} fast={:?} ref={:?} flows={} {:02x?}",
                self.now,
                port,
                verdicts[0],
                expected,
                self.worker.flows().len(),
                &bytes[14..bytes.len().min(38)]
            );
        }
        prop_assert_eq!(
            verdicts[0],
            expected,
            "frame {:02x?} on port {} at {}",
            bytes,
            port,
            self.now
        );
        if let (Verdict::Forward { .. } | Verdict::Reply { .. }, Some(out)) =
            (expected, expected_out)
        {
            prop_assert_eq!(burst[0].data(), &out[..], "output of frame {:02x?}", bytes);
        }
        self.compared += 1;
        Ok(())
    }
}

fn run(seed: u64, events: &[Event]) -> Result<usize, TestCaseError> {
    let spec = world(seed);
    let snapshot = PolicySnapshot::compile(&spec, 1)
        .map_err(|e| TestCaseError::fail(format!("random world does not compile: {e}")))?;
    let mut h = Harness {
        spec,
        snapshot,
        worker: Worker::new(WorkerConfig {
            max_flows: 4096,
            max_fragmented_datagrams: 1024,
            ..WorkerConfig::default()
        })
        .unwrap(),
        reference: ReferenceRouter::new(),
        now: 10,
        sent: Vec::new(),
        compared: 0,
    };
    for e in events {
        match *e {
            Event::Send(who, to, proto, ports, flag) => {
                h.send_event(who, to, proto, ports, flag)?;
            }
            Event::Reply(n, f) => h.reply_event(n, f)?,
            Event::Error(n) => h.error_event(n)?,
            Event::Fragment(n, first) => h.fragment_event(n, first)?,
            Event::Repeat(n) => h.repeat_event(n)?,
            Event::Wait(dt) => h.now += [0, 1, 5, 29, 31, 61, 121, 200][usize::from(dt % 8)],
            Event::Change(c) => {
                mutate(&mut h.spec, c);
                let next = h.snapshot.generation() + 1;
                h.snapshot = PolicySnapshot::compile(&h.spec, next).map_err(|e| {
                    TestCaseError::fail(format!("changed world does not compile: {e}"))
                })?;
            }
        }
    }
    Ok(h.compared)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn process_agrees_with_the_reference(seed in any::<u64>(), events in prop::collection::vec(event(), 1..120)) {
        run(seed, &events)?;
    }
}

/// The generator is not vacuous: across a few fixed worlds, conversations
/// forward, answer and drop for many different reasons.
#[test]
fn conversations_cover_the_verdicts() {
    use std::collections::HashSet;
    let mut seen = HashSet::new();
    let mut rng = Rng(7);
    for seed in 0..40 {
        let spec = world(seed);
        let snapshot = PolicySnapshot::compile(&spec, 1).expect("world compiles");
        let mut h = Harness {
            spec,
            snapshot,
            worker: Worker::new(WorkerConfig {
                max_flows: 4096,
                ..WorkerConfig::default()
            })
            .unwrap(),
            reference: ReferenceRouter::new(),
            now: 10,
            sent: Vec::new(),
            compared: 0,
        };
        for _ in 0..200 {
            let r = rng.next_u64().to_le_bytes();
            let result = match r[0] % 11 {
                0..=4 => h.send_event(r[1], r[2], r[3], r[4], r[5]),
                5..=7 => h.reply_event(r[1], r[2]),
                8 => h.error_event(r[1]),
                9 => h.repeat_event(r[1]),
                _ => h.fragment_event(r[1], r[2] % 2 == 0),
            };
            result.expect("agrees");
        }
        for (i, d) in h.worker.counters().drops.iter().enumerate() {
            if *d > 0 {
                seen.insert(DropReason::ALL[i].label());
            }
        }
        if h.worker.counters().forwarded > 0 {
            seen.insert("forwarded");
        }
        if h.worker.counters().flow_hits > 0 {
            seen.insert("flow_hits");
        }
        if h.worker.counters().related > 0 {
            seen.insert("related");
        }
        if h.worker.counters().denied_remembered > 0 {
            seen.insert("denied_remembered");
        }
    }
    for needed in [
        "forwarded",
        "flow_hits",
        "related",
        "denied_remembered",
        "spoofed",
        "unknown_source",
        "no_route",
        "egress_denied",
        "ingress_denied",
        "nacl_denied",
        "to_router",
        "ttl_expired",
        "fragment_unknown",
        "icmp_error_unrelated",
    ] {
        assert!(
            seen.contains(needed),
            "no case exercised {needed}; saw {seen:?}"
        );
    }
}
