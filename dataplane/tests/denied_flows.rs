//! The denied-flow memory (`palisade_dataplane::denied`) against the plain
//! reference: floods of denied packets across rule changes, NACL changes,
//! a full flow table and the memory's expiry.
//!
//! Every packet goes through three routers: the worker with its memory,
//! the same worker with the memory off, and the reference model. They must
//! agree on every verdict and every output byte, and the two workers on
//! every counter but the memory's own (`denied_remembered`): the memory
//! changes what a denied packet costs, never what happens to it nor how
//! it is counted.

use core::net::{IpAddr, Ipv4Addr};

use palisade_dataplane::policy::{
    NaclAction, NaclEntry, PolicySnapshot, PolicySpec, PortSpec, Protocol, SgId,
};
use palisade_dataplane::reference::ReferenceRouter;
use palisade_dataplane::testkit::{
    self, FrameSpec, Payload, ROUTER_MAC, demo_spec, eni_mac, flags, frame,
};
use palisade_dataplane::{DropReason, HeapPacket, Verdict, Worker, WorkerConfig, WorkerCounters};

const A: u8 = 0;
const B: u8 = 1;
const C: u8 = 2;

/// The memory's lifetime in these tests.
const TIMEOUT: u32 = 2;

struct Net {
    spec: PolicySpec,
    snapshot: PolicySnapshot,
    /// With the denied-flow memory.
    worker: Worker,
    /// Without it: every denied packet classified.
    plain: Worker,
    reference: ReferenceRouter,
    now: u32,
}

impl Net {
    fn new(spec: PolicySpec) -> Self {
        Self::with_config(
            spec,
            WorkerConfig {
                max_flows: 1024,
                ..WorkerConfig::default()
            },
        )
    }

    fn with_config(spec: PolicySpec, config: WorkerConfig) -> Self {
        let snapshot = PolicySnapshot::compile(&spec, 1).expect("demo spec compiles");
        let worker = Worker::new(WorkerConfig {
            denied_flows: config.denied_flows.max(16),
            denied_timeout: TIMEOUT,
            ..config
        })
        .expect("worker");
        let plain = Worker::new(WorkerConfig {
            denied_flows: 0,
            ..config
        })
        .expect("worker");
        Net {
            spec,
            snapshot,
            worker,
            plain,
            reference: ReferenceRouter::new(),
            now: 1000,
        }
    }

    /// Sends one frame into `port` through all three; their common verdict.
    fn verdict(&mut self, port: u16, bytes: &[u8]) -> Verdict {
        let mut outs = Vec::new();
        for worker in [&mut self.worker, &mut self.plain] {
            let mut burst = [HeapPacket::new(port, bytes)];
            let mut verdicts = [Verdict::Drop(DropReason::Malformed)];
            worker.process(&mut burst, self.now, &self.snapshot, &mut verdicts);
            let [pkt] = burst;
            outs.push((verdicts[0], pkt.into_frame()));
        }
        let (expected, expected_out) = self.reference.handle(&self.spec, port, bytes, self.now);
        assert_eq!(outs[0].0, expected, "with the memory, frame {bytes:02x?}");
        assert_eq!(
            outs[1].0, expected,
            "without the memory, frame {bytes:02x?}"
        );
        if let Some(out) = expected_out {
            assert_eq!(outs[0].1, out, "output with the memory");
            assert_eq!(outs[1].1, out, "output without the memory");
        }
        self.same_counters();
        expected
    }

    /// The two workers counted the same, the memory's own count aside.
    fn same_counters(&self) {
        let strip = |c: &WorkerCounters| WorkerCounters {
            denied_remembered: 0,
            ..c.clone()
        };
        assert_eq!(
            strip(self.worker.counters()),
            strip(self.plain.counters()),
            "counters with and without the memory"
        );
        assert_eq!(self.worker.group_allowed(), self.plain.group_allowed());
        assert_eq!(self.worker.group_denied(), self.plain.group_denied());
    }

    fn remembered(&self) -> u64 {
        self.worker.counters().denied_remembered
    }

    /// Publishes a changed spec as the next generation.
    fn change(&mut self, edit: impl FnOnce(&mut PolicySpec)) {
        edit(&mut self.spec);
        let next = self.snapshot.generation() + 1;
        self.snapshot = PolicySnapshot::compile(&self.spec, next).expect("changed spec compiles");
    }
}

fn ip(i: u8) -> IpAddr {
    [
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 10)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 2, 20)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 2, 30)),
    ][usize::from(i)]
}

fn tcp(from: u8, to: u8, sport: u16, dport: u16, f: u8) -> Vec<u8> {
    frame(&FrameSpec::new(
        eni_mac(from),
        ROUTER_MAC,
        ip(from),
        ip(to),
        Payload::Tcp {
            src_port: sport,
            dst_port: dport,
            flags: f,
        },
    ))
}

fn fwd(to: u8) -> Verdict {
    Verdict::Forward {
        port: u16::from(to),
    }
}

const INGRESS_DENIED: Verdict = Verdict::Drop(DropReason::IngressDenied);
const NACL_DENIED: Verdict = Verdict::Drop(DropReason::NaclDenied);

/// B's ssh group admits 10.0.1.99 only; this lets A (10.0.1.10) in too.
fn allow_ssh_from_a(spec: &mut PolicySpec) {
    let ssh = spec
        .security_groups
        .iter_mut()
        .find(|g| g.id == SgId::from("ssh"))
        .unwrap();
    ssh.ingress.push(testkit::rule(
        "sgr-s2",
        Protocol::Tcp,
        PortSpec::Range { from: 22, to: 22 },
        testkit::cidr4("10.0.1.10/32"),
    ));
}

/// A NACL entry of subnet-b's inbound side denying everything from A.
fn nacl_deny_a(spec: &mut PolicySpec) {
    spec.nacls[0].entries.push(NaclEntry {
        rule_number: 10,
        egress: false,
        protocol: Protocol::All,
        cidr: "10.0.1.10/32".parse().unwrap(),
        ports: PortSpec::Any,
        action: NaclAction::Deny,
    });
}

#[test]
fn a_denied_flood_is_remembered_and_counted_under_its_reason() {
    let mut net = Net::new(demo_spec());
    let syn = tcp(A, B, 40000, 22, flags::SYN);
    for _ in 0..100 {
        assert_eq!(net.verdict(0, &syn), INGRESS_DENIED);
    }
    // The first classified, the other 99 remembered.
    assert_eq!(net.remembered(), 99);
    assert_eq!(
        net.worker.counters().dropped(DropReason::IngressDenied),
        100
    );
    // Per group as classified every time: A's default let each out, B's
    // web and ssh refused each.
    let group = |id: &str| net.snapshot.group_by_id(&SgId::from(id)).unwrap().index();
    assert_eq!(net.worker.group_allowed()[group("default")], 100);
    assert_eq!(net.worker.group_denied()[group("web")], 100);
    assert_eq!(net.worker.group_denied()[group("ssh")], 100);
    assert_eq!(net.worker.flows().len(), 0, "no flow for a denied packet");
}

#[test]
fn a_rule_added_mid_flood_admits_the_very_next_packet() {
    let mut net = Net::new(demo_spec());
    let syn = tcp(A, B, 40000, 22, flags::SYN);
    for _ in 0..10 {
        assert_eq!(net.verdict(0, &syn), INGRESS_DENIED);
    }
    assert_eq!(net.remembered(), 9);
    net.change(allow_ssh_from_a);
    assert_eq!(net.verdict(0, &syn), fwd(B));
    assert_eq!(
        net.verdict(1, &tcp(B, A, 22, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 22, flags::ACK)), fwd(B));
    assert_eq!(net.remembered(), 9);
}

#[test]
fn a_rule_removed_mid_flood_still_denies_and_tracked_connections_pass() {
    let mut net = Net::new(demo_spec());
    // A tracked web connection, and a flood of denied ssh SYNs.
    assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::SYN)), fwd(B));
    assert_eq!(
        net.verdict(1, &tcp(B, A, 80, 40000, flags::SYN_ACK)),
        fwd(A)
    );
    let ssh = tcp(A, B, 40001, 22, flags::SYN);
    for _ in 0..10 {
        assert_eq!(net.verdict(0, &ssh), INGRESS_DENIED);
    }
    // A new web SYN each time, remembered too once denied.
    let web = tcp(A, B, 40002, 80, flags::SYN);
    net.change(|spec| {
        let g = spec
            .security_groups
            .iter_mut()
            .find(|g| g.id == SgId::from("web"))
            .unwrap();
        g.ingress.retain(|r| r.id.as_str() != "sgr-w1");
    });
    let before = net.remembered();
    for _ in 0..10 {
        assert_eq!(net.verdict(0, &ssh), INGRESS_DENIED);
        assert_eq!(net.verdict(0, &web), INGRESS_DENIED);
        // The tracked connection outlives its rule (SEMANTICS.md).
        assert_eq!(net.verdict(0, &tcp(A, B, 40000, 80, flags::ACK)), fwd(B));
        assert_eq!(net.verdict(1, &tcp(B, A, 80, 40000, flags::ACK)), fwd(A));
    }
    // Each denied flow classified once under the new generation.
    assert_eq!(net.remembered() - before, 2 * 9);
}

#[test]
fn a_nacl_change_mid_flood_decides_the_very_next_packet() {
    let mut net = Net::new(demo_spec());
    let syn = tcp(A, B, 40000, 22, flags::SYN);
    for _ in 0..5 {
        assert_eq!(net.verdict(0, &syn), INGRESS_DENIED);
    }
    // Denied by a NACL now: the reason the counters give changes at once.
    net.change(nacl_deny_a);
    for _ in 0..5 {
        assert_eq!(net.verdict(0, &syn), NACL_DENIED);
    }
    // The groups now allow ssh from A, but the NACL still denies.
    net.change(allow_ssh_from_a);
    assert_eq!(net.verdict(0, &syn), NACL_DENIED);
    assert_eq!(net.verdict(0, &syn), NACL_DENIED);
    // The NACL goes: the very next packet passes.
    net.change(|spec| spec.nacls[0].entries.retain(|e| e.rule_number != 10));
    assert_eq!(net.verdict(0, &syn), fwd(B));
    assert_eq!(net.remembered(), 4 + 4 + 1);
    assert_eq!(net.worker.counters().dropped(DropReason::NaclDenied), 7);
    assert_eq!(net.worker.counters().dropped(DropReason::IngressDenied), 5);
}

#[test]
fn a_remembered_denial_is_for_its_sender_and_direction_only() {
    let mut net = Net::new(demo_spec());
    // C is in subnet-b with B; from C's port and MAC but A's address, the
    // packet is spoofed, not the remembered denial of A's.
    let from_a = tcp(A, B, 40000, 22, flags::SYN);
    assert_eq!(net.verdict(0, &from_a), INGRESS_DENIED);
    assert_eq!(net.verdict(0, &from_a), INGRESS_DENIED);
    let mut spoofed = FrameSpec::new(
        eni_mac(C),
        ROUTER_MAC,
        ip(A),
        ip(B),
        Payload::Tcp {
            src_port: 40000,
            dst_port: 22,
            flags: flags::SYN,
        },
    );
    assert_eq!(
        net.verdict(2, &frame(&spoofed)),
        Verdict::Drop(DropReason::Spoofed)
    );
    // A's MAC on another port: an unknown sender.
    assert_eq!(
        net.verdict(2, &from_a),
        Verdict::Drop(DropReason::UnknownSource)
    );
    spoofed.src_mac = [0x02, 0, 0, 0, 0, 0x99];
    assert_eq!(
        net.verdict(0, &frame(&spoofed)),
        Verdict::Drop(DropReason::UnknownSource)
    );
    // The same flow the other way is B's to open (and B's web group lets
    // it out; A's default group does not let B in).
    assert_eq!(
        net.verdict(1, &tcp(B, A, 22, 40000, flags::SYN)),
        INGRESS_DENIED
    );
    assert_eq!(net.remembered(), 1);
}

#[test]
fn the_memory_never_takes_a_tracked_connections_room() {
    let mut net = Net::with_config(
        demo_spec(),
        WorkerConfig {
            max_flows: 16,
            denied_flows: 16,
            ..WorkerConfig::default()
        },
    );
    let capacity = net.worker.flows().capacity();
    // Half the allowance in tracked connections.
    let half = capacity as u16 / 2;
    for port in 0..half {
        assert_eq!(
            net.verdict(0, &tcp(A, B, 20000 + port, 80, flags::SYN)),
            fwd(B)
        );
    }
    // A flood of distinct denied flows, far more than the memory holds,
    // each packet twice: they displace each other, never a flow.
    for port in 0..2000 {
        for _ in 0..2 {
            assert_eq!(
                net.verdict(0, &tcp(A, B, 30000 + port, 22, flags::SYN)),
                INGRESS_DENIED,
            );
        }
    }
    assert_eq!(net.remembered(), 2000);
    assert!(net.worker.denied_flows().counters().displaced > 0);
    assert_eq!(net.worker.flows().len(), usize::from(half));
    assert_eq!(net.worker.flows().available(), capacity - usize::from(half));
    // The rest of the allowance is still there for new connections, and
    // every tracked one still passes.
    for port in half..capacity as u16 {
        assert_eq!(
            net.verdict(0, &tcp(A, B, 20000 + port, 80, flags::SYN)),
            fwd(B)
        );
    }
    for port in 0..capacity as u16 {
        assert_eq!(
            net.verdict(1, &tcp(B, A, 80, 20000 + port, flags::SYN_ACK)),
            fwd(A)
        );
    }
    assert_eq!(net.worker.counters().dropped(DropReason::ConntrackFull), 0);
}

#[test]
fn a_remembered_denial_expires() {
    let mut net = Net::new(demo_spec());
    let syn = tcp(A, B, 40000, 22, flags::SYN);
    assert_eq!(net.verdict(0, &syn), INGRESS_DENIED);
    net.now += TIMEOUT - 1;
    assert_eq!(net.verdict(0, &syn), INGRESS_DENIED);
    assert_eq!(net.remembered(), 1, "remembered until its timeout");
    // Hits do not extend it: at the timeout the rules decide again, and
    // the new denial is remembered afresh.
    net.now += 1;
    assert_eq!(net.verdict(0, &syn), INGRESS_DENIED);
    assert_eq!(net.remembered(), 1, "expired: classified");
    assert_eq!(net.worker.denied_flows().counters().remembered, 2);
    assert_eq!(net.verdict(0, &syn), INGRESS_DENIED);
    assert_eq!(net.remembered(), 2);
}

#[test]
fn other_kinds_of_packets_are_decided_every_time_or_remembered_exactly() {
    let mut net = Net::new(demo_spec());
    // ICMP echo to B from C: web admits ICMP from 10.0.0.0/16, so it
    // passes; an echo from the uplink-less world is not possible here, so
    // check that a denied ICMP is never remembered: B → A echo (A's
    // default group does not admit B).
    let echo = frame(&FrameSpec::new(
        eni_mac(B),
        ROUTER_MAC,
        ip(B),
        ip(A),
        Payload::Echo {
            id: 7,
            reply: false,
        },
    ));
    for _ in 0..5 {
        assert_eq!(net.verdict(1, &echo), INGRESS_DENIED);
    }
    // IPv6 and UDP take the general path, and are remembered there.
    let udp6 = frame(&FrameSpec::new(
        eni_mac(B),
        ROUTER_MAC,
        "fd00:0:0:2::20".parse().unwrap(),
        "fd00:0:0:1::10".parse().unwrap(),
        Payload::Udp {
            src_port: 53,
            dst_port: 5353,
        },
    ));
    for _ in 0..5 {
        assert_eq!(net.verdict(1, &udp6), INGRESS_DENIED);
    }
    assert_eq!(net.remembered(), 4, "ICMP never, the UDP flow after once");
    // A first fragment of a remembered flow still records its denial for
    // the later fragments (as the classification does).
    let mut first = FrameSpec::new(
        eni_mac(A),
        ROUTER_MAC,
        ip(A),
        ip(B),
        Payload::Udp {
            src_port: 9,
            dst_port: 9,
        },
    );
    assert_eq!(net.verdict(0, &frame(&first)), INGRESS_DENIED);
    first.fragment = Some((77, 0, true));
    assert_eq!(net.verdict(0, &frame(&first)), INGRESS_DENIED);
    let later = testkit::later_fragment(&first, 77, 64, false);
    assert_eq!(
        net.verdict(0, &later),
        Verdict::Drop(DropReason::FragmentUnknown)
    );
    assert_eq!(net.remembered(), 5);
}

#[test]
fn the_denied_memory_is_sized_to_the_flow_table() {
    let default = WorkerConfig::default();
    let busy = WorkerConfig::for_flows(1 << 22);
    assert_eq!((busy.max_flows, busy.denied_flows), (1 << 22, 1 << 19));
    assert_eq!(WorkerConfig::for_flows(1 << 20).denied_flows, 1 << 17);
    // Small tables keep the default; huge ones stop at 32 MiB.
    assert_eq!(
        WorkerConfig::for_flows(64).denied_flows,
        default.denied_flows
    );
    assert_eq!(WorkerConfig::for_flows(1 << 30).denied_flows, 1 << 19);
    assert_eq!(busy.denied_timeout, default.denied_timeout);
}
