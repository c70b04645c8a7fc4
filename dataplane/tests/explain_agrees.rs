//! `explain` against the data plane, on random worlds: for random first
//! packets, the verdict the policy explainer gives ([`PolicySnapshot::explain`],
//! what `palisade explain` and `palisade replay` print) must be the verdict
//! `Worker::process` gives the same packet as a frame, and the NACL entries
//! and security-group rules it names must be the ones the plain reference
//! evaluator (`palisade_policy::reference`, SEMANTICS.md as loops over the
//! spec) finds deciding. The world generator is the differential test's
//! (`differential.rs`), copied: that file is a test binary of its own.

use core::net::{IpAddr, Ipv6Addr};

use palisade_dataplane::policy::reference::{self, RefRoute};
use palisade_dataplane::policy::{
    DenyReason, Direction, EniSpec, ExplainedRoute, Outcome, PacketFields, PolicySnapshot,
    PolicySpec,
};
use palisade_dataplane::testkit::worlds::{EXTERNAL_V4, Rng, v4, v6, world};
use palisade_dataplane::testkit::{FrameSpec, Payload, ROUTER_MAC, flags, frame};
use palisade_dataplane::{DropReason, HeapPacket, Verdict, Worker, WorkerConfig};

/// The data plane's counter for a policy deny (as `palisade explain` maps it).
fn drop_reason(reason: DenyReason) -> DropReason {
    match reason {
        DenyReason::UnknownSource => DropReason::UnknownSource,
        DenyReason::SourceNotOwned => DropReason::Spoofed,
        DenyReason::NoRoute => DropReason::NoRoute,
        DenyReason::NaclEgress | DenyReason::NaclIngress => DropReason::NaclDenied,
        DenyReason::SecurityGroupEgress => DropReason::EgressDenied,
        DenyReason::SecurityGroupIngress => DropReason::IngressDenied,
    }
}

/// A random first packet: who sends it (an ENI index, or `None` for the
/// uplink), its fields and the payload to build its frame.
fn random_packet(rng: &mut Rng, spec: &PolicySpec) -> (Option<usize>, PacketFields, Payload) {
    let from_uplink = spec.uplink.is_some() && rng.chance(20);
    let ipv6 = rng.chance(30);
    let pick_addr = |e: &EniSpec| {
        *e.private_ips
            .iter()
            .find(|a| a.is_ipv6() == ipv6)
            .expect("every ENI has both families")
    };
    let sender = (!from_uplink).then(|| rng.below(spec.enis.len() as u64) as usize);
    let external = if ipv6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))
    } else {
        IpAddr::V4(EXTERNAL_V4)
    };
    let src = match sender {
        // Mostly its own address; sometimes another's (the source check).
        Some(i) if rng.chance(90) => pick_addr(&spec.enis[i]),
        Some(_) => {
            let other = rng.pick(&spec.enis).clone();
            pick_addr(&other)
        }
        None => external,
    };
    let dst = match rng.below(10) {
        0 => external,
        1 => {
            // A subnet's router address, or an address nobody owns.
            let (v, s) = (1 + rng.below(2) as u8, 1 + rng.below(2) as u8);
            let host = *rng.pick(&[1, 250]);
            if ipv6 {
                IpAddr::V6(v6(v, s, host))
            } else {
                IpAddr::V4(v4(v, s, host))
            }
        }
        _ => {
            let other = rng.pick(&spec.enis).clone();
            pick_addr(&other)
        }
    };
    let (fields, payload) = match rng.below(4) {
        0 | 1 => {
            let (sp, dp) = (
                40000 + rng.below(10) as u16,
                *rng.pick(&[22, 80, 443, 1500, 53]),
            );
            if rng.chance(50) {
                (
                    PacketFields::l4(src, dst, 6, sp, dp),
                    Payload::Tcp {
                        src_port: sp,
                        dst_port: dp,
                        flags: flags::SYN,
                    },
                )
            } else {
                (
                    PacketFields::l4(src, dst, 17, sp, dp),
                    Payload::Udp {
                        src_port: sp,
                        dst_port: dp,
                    },
                )
            }
        }
        2 => {
            let (protocol, ty) = if ipv6 { (58, 128) } else { (1, 8) };
            (
                PacketFields::icmp(src, dst, protocol, ty, 0),
                Payload::Echo {
                    id: 7,
                    reply: false,
                },
            )
        }
        _ => {
            let protocol = *rng.pick(&[47, 50, 132]);
            (
                PacketFields::l4(src, dst, protocol, 0, 0),
                Payload::Raw { protocol },
            )
        }
    };
    (sender, fields, payload)
}

/// One packet: explain and `process()` agree, and the named rules are the
/// reference's. Returns the outcome, for coverage.
fn check_packet(spec: &PolicySpec, snapshot: &PolicySnapshot, rng: &mut Rng) -> Outcome {
    let (sender, fields, payload) = random_packet(rng, spec);
    let (src_mac, vlan, port) = if let Some(i) = sender {
        (spec.enis[i].mac, spec.enis[i].vlan, spec.enis[i].port)
    } else {
        let up = spec.uplink.expect("uplink");
        (up.mac, up.vlan, up.port)
    };
    let explained = match sender {
        Some(i) => {
            let idx = snapshot.eni_by_id(&spec.enis[i].id).expect("eni compiled");
            snapshot.explain(idx, &fields)
        }
        None => snapshot.explain_from_uplink(&fields),
    };

    // The data plane, on a fresh flow table: this is a first packet.
    let mut worker = Worker::new(WorkerConfig {
        max_flows: 64,
        ..WorkerConfig::default()
    })
    .expect("worker");
    let mut spec_frame = FrameSpec::new(src_mac, ROUTER_MAC, fields.src, fields.dst, payload);
    spec_frame.vlan = vlan;
    let mut burst = [HeapPacket::new(port, &frame(&spec_frame))];
    let mut verdicts = [Verdict::Drop(DropReason::Malformed)];
    worker.process(&mut burst, 0, snapshot, &mut verdicts);
    let expected = match (&explained.outcome, &explained.route) {
        (Outcome::Allowed { .. }, ExplainedRoute::Eni(id)) => Verdict::Forward {
            port: spec.enis.iter().find(|e| &e.id == id).expect("eni").port,
        },
        (Outcome::Allowed { .. }, ExplainedRoute::Uplink) => Verdict::Forward {
            port: spec.uplink.expect("uplink").port,
        },
        (Outcome::Allowed { .. }, route) => panic!("allowed toward {route:?}"),
        (Outcome::ToRouter, _) => Verdict::Drop(DropReason::ToRouter),
        (Outcome::Denied(r), _) => Verdict::Drop(drop_reason(*r)),
    };
    assert_eq!(
        verdicts[0], expected,
        "process() and explain disagree on {fields:?} from {sender:?}:\n{explained}"
    );

    // The named entries and rules are the plain reference's.
    let step_rule = |s: Option<&palisade_dataplane::policy::SgStep>| s.and_then(|s| s.rule.clone());
    let step_allows =
        |s: Option<&palisade_dataplane::policy::SgStep>| s.map(|s| !s.allowing.is_empty());
    match sender {
        Some(i) => {
            let r = reference::decide(spec, &spec.enis[i].id, &fields);
            assert_eq!(
                explained.nacl_egress.as_ref().map(|n| n.decision),
                r.nacl_egress,
                "egress NACL entry of {fields:?}:\n{explained}"
            );
            assert_eq!(
                explained.nacl_ingress.as_ref().map(|n| n.decision),
                r.nacl_ingress,
                "ingress NACL entry of {fields:?}:\n{explained}"
            );
            assert_eq!(
                step_rule(explained.egress.as_ref()),
                r.egress.as_ref().and_then(|m| m.rule.clone()),
                "egress rule of {fields:?}:\n{explained}"
            );
            assert_eq!(
                step_rule(explained.ingress.as_ref()),
                r.ingress.as_ref().and_then(|m| m.rule.clone()),
                "ingress rule of {fields:?}:\n{explained}"
            );
            assert_eq!(
                step_allows(explained.egress.as_ref()),
                r.egress.as_ref().map(|m| m.groups != 0)
            );
            assert_eq!(
                step_allows(explained.ingress.as_ref()),
                r.ingress.as_ref().map(|m| m.groups != 0)
            );
            assert_eq!(
                matches!(explained.outcome, Outcome::Allowed { tracked: false }),
                r.untracked,
                "tracking of {fields:?}:\n{explained}"
            );
        }
        None => {
            if let RefRoute::Eni(dst) = reference::route_from_uplink(spec, fields.dst) {
                let to = spec.enis.iter().find(|e| e.id == dst).expect("eni");
                let nacl = reference::nacl_decide(spec, &to.subnet, Direction::Ingress, &fields);
                let sg = reference::sg_match(spec, &dst, Direction::Ingress, &fields, None);
                assert_eq!(
                    explained.nacl_ingress.as_ref().map(|n| n.decision),
                    Some(nacl)
                );
                assert_eq!(step_rule(explained.ingress.as_ref()), sg.rule);
                assert_eq!(
                    step_allows(explained.ingress.as_ref()),
                    Some(sg.groups != 0)
                );
            } else {
                assert_eq!(explained.outcome, Outcome::Denied(DenyReason::NoRoute));
            }
        }
    }
    explained.outcome
}

#[test]
fn explain_agrees_with_process_and_the_reference() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..300 {
        let spec = world(seed);
        let snapshot = PolicySnapshot::compile(&spec, 1).expect("world compiles");
        let mut rng = Rng(seed ^ 0x5eed);
        for _ in 0..40 {
            let outcome = check_packet(&spec, &snapshot, &mut rng);
            seen.insert(format!("{outcome:?}"));
        }
    }
    // The cases covered every kind of answer, not only one.
    for wanted in [
        "Allowed { tracked: true }",
        "ToRouter",
        "Denied(SourceNotOwned)",
        "Denied(NoRoute)",
        "Denied(NaclEgress)",
        "Denied(SecurityGroupEgress)",
        "Denied(NaclIngress)",
        "Denied(SecurityGroupIngress)",
    ] {
        assert!(seen.contains(wanted), "no case gave {wanted}; saw {seen:?}");
    }
}
