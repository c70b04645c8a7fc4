//! Step 5 for a routed packet with a flow of its own: the flow lookup,
//! the NACL verdict a flow caches per direction and generation, and for
//! a new flow the rules' decision (NACLs, the sender's egress and the
//! receiver's ingress security groups), the flow's insertion, or the
//! denial's memory.

use palisade_flow::{FlowInit, FlowUpdate, InsertError, Prefetch, Seconds, Timeouts};
use palisade_policy::{
    DenyReason, Direction as PolicyDirection, EniPath, FlowDecision, NaclPath, PacketFields,
    PolicySnapshot, Route, SgDetail, SgMatch, Verdict as PolicyVerdict,
};

use super::{Endpoint, Pending, Worker, nacl_bits};
use crate::denied::{Denial, GroupTally};
use crate::verdict::DropReason;

impl<F: Prefetch> Worker<F> {
    /// Second pass for a routed packet with its own flow: hit or decide.
    pub(super) fn decide_flow(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<(), DropReason> {
        let generation = snapshot.generation() as u32;
        let flags = p.tcp_flags;
        if let Some(entry) = self.flows.lookup(p.hash, &p.key, now) {
            let from_initiator = entry.initiator() == p.side;
            if entry.generation != generation {
                // A newer policy: refresh what the flow caches for it. Its
                // security-group admission stands (tracked flows survive
                // rule changes); NACLs are re-checked below.
                self.counters.revalidations += 1;
                entry.generation = generation;
                entry.verdict_flags = 0;
                let (initiator, responder) = if from_initiator {
                    (p.src, p.dst)
                } else {
                    (p.dst, p.src)
                };
                entry.initiator_eni = initiator.cached();
                entry.responder_eni = responder.cached();
            }
            let (checked, allowed, routed) = if from_initiator {
                (
                    nacl_bits::FORWARD_CHECKED,
                    nacl_bits::FORWARD_ALLOWED,
                    nacl_bits::FORWARD_ROUTED,
                )
            } else {
                (
                    nacl_bits::REVERSE_CHECKED,
                    nacl_bits::REVERSE_ALLOWED,
                    nacl_bits::REVERSE_ROUTED,
                )
            };
            // A direction's NACL verdict depends only on fields that are
            // constant along it, except ICMP's type and code (an echo flow
            // may carry requests and replies both ways): ICMP is checked
            // every packet, the rest once per direction and generation.
            if is_icmp(p.fields.protocol) {
                if !nacl_allows(snapshot, p.src, p.route, &p.fields) {
                    return Err(DropReason::NaclDenied);
                }
            } else {
                if entry.verdict_flags & checked == 0 {
                    let ok = nacl_allows(snapshot, p.src, p.route, &p.fields);
                    entry.verdict_flags |= checked | if ok { allowed } else { 0 };
                }
                if entry.verdict_flags & allowed == 0 {
                    return Err(DropReason::NaclDenied);
                }
            }
            // This packet was routed in full: if it went where the flow
            // says this direction goes, the established lane may skip the
            // routing for the direction's next packets (this generation).
            let (sender, receiver) = if from_initiator {
                (entry.initiator_eni, entry.responder_eni)
            } else {
                (entry.responder_eni, entry.initiator_eni)
            };
            if (sender, receiver) == (p.src.cached(), p.dst.cached()) {
                entry.verdict_flags |= routed;
            }
            let update =
                entry.update_with(p.side, flags, now, || flow_timeouts(snapshot, p.src, p.dst));
            match update {
                FlowUpdate::Forward => {
                    self.counters.flow_hits += 1;
                    self.follow_first_fragment(p, now, true);
                    return Ok(());
                }
                FlowUpdate::Restart => {
                    self.flows.remove(p.hash, &p.key, now);
                }
            }
        } else if let Some(reason) = self.remembered_denial(p, now, snapshot) {
            return Err(reason);
        }
        self.decide_new(p, now, snapshot)
    }

    /// [`Self::decide_flow`] for a packet whose flow has no entry (any
    /// more): the rules decide, and an allowed tracked flow is inserted or
    /// a denied one remembered.
    pub(super) fn decide_new(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<(), DropReason> {
        let generation = snapshot.generation() as u32;
        let flags = p.tcp_flags;
        let decision = match p.src {
            // The first pass routed the packet already: no second lookup.
            Endpoint::Eni(src) => snapshot.decide_routed(src, p.route, &p.fields, SgDetail::Groups),
            Endpoint::Uplink => snapshot.decide_from_uplink(&p.fields, SgDetail::Groups),
        };
        let tallies = group_tallies(snapshot, p, &decision);
        self.count_group_tallies(snapshot, tallies);
        let untracked = decision.untracked
            || (decision.verdict == PolicyVerdict::Allow
                && reply_of_untracked(snapshot, p, &decision));
        let result = match decision.verdict {
            PolicyVerdict::Allow if untracked => {
                self.counters.untracked += 1;
                Ok(())
            }
            PolicyVerdict::Allow => {
                let init = FlowInit {
                    initiator: p.side,
                    tcp_flags: flags,
                    tracked: true,
                    generation,
                    initiator_eni: p.src.cached(),
                    responder_eni: p.dst.cached(),
                    admitted_by: admitting_group(snapshot, p, &decision),
                    // Routed in full just now, from `src` to `dst`.
                    verdict_flags: nacl_bits::FORWARD_CHECKED
                        | nacl_bits::FORWARD_ALLOWED
                        | nacl_bits::FORWARD_ROUTED,
                };
                let timeouts = flow_timeouts(snapshot, p.src, p.dst);
                // The lookup missed (or `Restart` removed the flow), and
                // nothing has touched the table since.
                match self
                    .flows
                    .insert_missing(p.hash, p.key, &init, now, &timeouts)
                {
                    Ok(_) => {
                        self.counters.new_flows += 1;
                        Ok(())
                    }
                    Err(InsertError::TableFull | InsertError::ProbeLimit) => {
                        Err(DropReason::ConntrackFull)
                    }
                    // Unreachable after a failed lookup, but harmless: the
                    // flow exists, so the packet belongs to it.
                    Err(InsertError::AlreadyPresent) => Ok(()),
                }
            }
            PolicyVerdict::ToRouter => Err(DropReason::ToRouter),
            PolicyVerdict::Deny(reason) => {
                let reason = deny_reason(reason);
                // ICMP's verdict depends on its type and code too, which
                // the flow key does not hold: decided every packet.
                if !is_icmp(p.fields.protocol) {
                    let denial = Denial {
                        reason,
                        sender: p.src.cached(),
                        egress: tallies[0],
                        ingress: tallies[1],
                    };
                    self.denied
                        .remember(p.hash, &p.key, p.side, generation, now, denial);
                }
                Err(reason)
            }
        };
        self.follow_first_fragment(p, now, result.is_ok());
        result
    }

    /// The remembered denial of a routed packet's flow ([`crate::denied`]),
    /// counted as the classification counted it; `None` if none applies.
    fn remembered_denial(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Option<DropReason> {
        let generation = snapshot.generation() as u32;
        let denial = self
            .denied
            .find(p.hash, &p.key, p.side, generation, now)
            .filter(|d| d.sender == p.src.cached())?;
        self.follow_first_fragment(p, now, false);
        Some(self.replay_denial(snapshot, &denial))
    }

    /// Counts a remembered denial's packet as its classification counted
    /// it (the caller counts the drop); its reason.
    #[inline(always)]
    pub(super) fn replay_denial(
        &mut self,
        snapshot: &PolicySnapshot,
        denial: &Denial,
    ) -> DropReason {
        self.counters.denied_remembered += 1;
        self.count_group_tallies(snapshot, [denial.egress, denial.ingress]);
        denial.reason
    }

    /// Per-group counters of new flows: the group whose rule allowed each
    /// side, or every group of the side that denied ([`group_tallies`]),
    /// for the sender's egress and the receiver's ingress.
    #[inline(always)]
    fn count_group_tallies(&mut self, snapshot: &PolicySnapshot, tallies: [GroupTally; 2]) {
        for tally in tallies {
            match tally {
                GroupTally::None => {}
                GroupTally::Allowed(group) => {
                    if let Some(c) = self.group_allowed.get_mut(group as usize) {
                        *c += 1;
                    }
                }
                GroupTally::AllDenied(set) => {
                    let Some(set) = snapshot.sg_set_by_index(set) else {
                        continue;
                    };
                    for g in snapshot.sg_set_groups(set) {
                        if let Some(c) = self.group_denied.get_mut(g.index()) {
                            *c += 1;
                        }
                    }
                }
            }
        }
    }
}

/// What a new flow's decision counts per security group, for the sender's
/// egress and the receiver's ingress: the lowest allowing group of the
/// side's set, or every group of a side that denied (by the set's index,
/// so that a remembered denial counts them without the ENI).
fn group_tallies(
    snapshot: &PolicySnapshot,
    p: &Pending,
    decision: &FlowDecision,
) -> [GroupTally; 2] {
    let tally = |end: Endpoint, side: Option<SgMatch>| {
        let (Endpoint::Eni(eni), Some(m)) = (end, side) else {
            return GroupTally::None;
        };
        let set = snapshot.eni(eni).sg_set;
        if m.groups == 0 {
            return GroupTally::AllDenied(set.index() as u32);
        }
        snapshot
            .sg_set_groups(set)
            .get(m.groups.trailing_zeros() as usize)
            .map_or(GroupTally::None, |g| GroupTally::Allowed(g.index() as u32))
    };
    [
        tally(p.src, decision.egress),
        tally(p.dst, decision.ingress),
    ]
}

/// Whether an allowed packet that would open a tracked flow is in fact the
/// reply of an untracked one: the same packet the other way round is
/// allowed and untracked.
///
/// **palisade**: an untracked flow leaves no state, so its replies look like
/// new flows from the responder, which the responder's side may well
/// track (a web server's egress allows everything out, but its ingress does
/// not let every port back in). Were such a reply tracked, the flow would
/// outlive a rule change that SEMANTICS.md says stops it at once. So a
/// packet whose reverse is an untracked flow is treated as untracked too;
/// while the rules stand it is allowed either way, and the rules alone
/// decide it once they change. Only flows with an untracked side pay for
/// the second decision.
fn reply_of_untracked(snapshot: &PolicySnapshot, p: &Pending, decision: &FlowDecision) -> bool {
    let some_side_untracked = decision.egress.is_some_and(|m| m.untracked)
        || decision.ingress.is_some_and(|m| m.untracked);
    if !some_side_untracked {
        return false;
    }
    let f = &p.fields;
    let reverse = PacketFields {
        src: f.dst,
        dst: f.src,
        src_port: f.dst_port,
        dst_port: f.src_port,
        ..*f
    };
    let back = match p.dst {
        Endpoint::Eni(e) => snapshot.decide(e, &reverse),
        Endpoint::Uplink => snapshot.decide_from_uplink(&reverse, SgDetail::Groups),
    };
    back.verdict == PolicyVerdict::Allow && back.untracked
}

/// The group that admitted a new flow: the lowest allowing group (whose
/// first matching rule is the one `explain` names) of the receiving side,
/// or toward the uplink of the sending side; `u16::MAX` if neither.
///
/// [`group_tallies`] finds the same groups, but returning this one from it
/// would widen a value that travels through the established lane's inlined
/// code and cost it registers; the lookup is repeated here instead, on
/// allowed new flows only.
fn admitting_group(snapshot: &PolicySnapshot, p: &Pending, decision: &FlowDecision) -> u16 {
    let (end, side) = match decision.ingress {
        Some(m) => (p.dst, m),
        None => match decision.egress {
            Some(m) => (p.src, m),
            None => return u16::MAX,
        },
    };
    let Endpoint::Eni(eni) = end else {
        return u16::MAX;
    };
    snapshot
        .sg_set_groups(snapshot.eni(eni).sg_set)
        .get(side.groups.trailing_zeros() as usize)
        .map_or(u16::MAX, |g| g.index() as u16)
}

/// Whether the NACLs on the packet's path allow it.
pub(super) fn nacl_allows(
    snapshot: &PolicySnapshot,
    src: Endpoint,
    route: Route,
    fields: &PacketFields,
) -> bool {
    let path: NaclPath = match (src, route) {
        (Endpoint::Eni(s), route) => snapshot.nacl_path(s, route),
        (Endpoint::Uplink, Route::Eni(d)) => snapshot.nacl_path_from_uplink(d),
        (Endpoint::Uplink, _) => NaclPath::default(),
    };
    path.egress.is_none_or(|s| {
        snapshot
            .nacl_decide(s, PolicyDirection::Egress, fields)
            .allow
    }) && path.ingress.is_none_or(|s| {
        snapshot
            .nacl_decide(s, PolicyDirection::Ingress, fields)
            .allow
    })
}

/// The idle timeouts of a flow between two endpoints: the stricter of the
/// two ENIs' settings (**palisade**: a flow ends when either side would
/// forget it).
fn flow_timeouts(snapshot: &PolicySnapshot, a: Endpoint, b: Endpoint) -> Timeouts {
    let path = |end| match end {
        Endpoint::Eni(e) => snapshot.eni_path(e),
        Endpoint::Uplink => None,
    };
    paths_timeouts(path(a), path(b))
}

/// [`flow_timeouts`] from the ends' records (`None` for the uplink).
#[inline(always)]
pub(super) fn paths_timeouts(a: Option<&EniPath>, b: Option<&EniPath>) -> Timeouts {
    let mut t: Option<(u32, u32, u32)> = None;
    for path in [a, b].into_iter().flatten() {
        let c = path.timeouts;
        t = Some(match t {
            None => (c.tcp_established, c.udp_stream, c.udp),
            Some((est, stream, oneway)) => (
                est.min(c.tcp_established),
                stream.min(c.udp_stream),
                oneway.min(c.udp),
            ),
        });
    }
    // The snapshot's compile checked every ENI's settings, so clamping
    // changes nothing and spares the checks.
    t.map_or(Timeouts::DEFAULT, |(est, stream, oneway)| {
        Timeouts::clamped(est, stream, oneway)
    })
}

fn is_icmp(protocol: u8) -> bool {
    protocol == palisade_flow::IPPROTO_ICMP || protocol == palisade_flow::IPPROTO_ICMPV6
}

fn deny_reason(reason: DenyReason) -> DropReason {
    match reason {
        DenyReason::UnknownSource => DropReason::UnknownSource,
        DenyReason::SourceNotOwned => DropReason::Spoofed,
        DenyReason::NoRoute => DropReason::NoRoute,
        DenyReason::NaclEgress | DenyReason::NaclIngress => DropReason::NaclDenied,
        DenyReason::SecurityGroupEgress => DropReason::EgressDenied,
        DenyReason::SecurityGroupIngress => DropReason::IngressDenied,
    }
}
