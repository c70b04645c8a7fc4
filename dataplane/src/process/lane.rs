//! Step 5 for a plain IPv4 TCP/UDP frame: the established lane, the
//! denied-flow memory before routing, and the full path otherwise.
//!
//! A plain frame reaches the second pass staged with its flow key (without
//! the VPC scope) and hash only. Most are packets of established flows:
//! the lane forwards them from what their flow caches, without finding the
//! sender by its L2 address, checking the source or routing again.

use palisade_flow::{FlowUpdate, Prefetch, Seconds, Unscoped};
use palisade_policy::PolicySnapshot;
use palisade_wire::parse_plain_ipv4;

use super::decide::paths_timeouts;
use super::rewrite::{Output, forward, forward_through};
use super::route::route_plain;
use super::{Pending, UPLINK_ENDPOINT, Worker, nacl_bits};
use crate::buffer::PacketBuf;
use crate::verdict::DropReason;

/// What the established lane made of a plain frame.
#[derive(Clone, Copy)]
enum Lane {
    /// A hit: forward through this output, the receiver's (the flow is
    /// updated and counted); `None` if the receiver has none (`NoRoute`).
    Forward(Option<Output>),
    /// The flow's state machine ended it: decide the packet as a new flow.
    Restart,
    /// Not for the lane: the full path decides.
    Declined,
    /// No flow has the frame's addresses and ports: the full path decides
    /// it as a new flow, without looking it up again.
    Absent,
}

impl<F: Prefetch> Worker<F> {
    /// Second pass for a plain IPv4 frame: the established lane, or the
    /// full path. Returns the output port.
    #[inline(always)]
    pub(super) fn decide_plain<P: PacketBuf>(
        &mut self,
        p: &Pending,
        pkt: &mut P,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<u16, DropReason> {
        match self.established_plain(p, now, snapshot) {
            Lane::Forward(Some(output)) => forward_through(pkt, output, p, snapshot),
            Lane::Forward(None) => Err(DropReason::NoRoute),
            lane => self.decide_plain_in_full(p, pkt, now, snapshot, lane),
        }
    }

    /// The established lane: a plain frame of a tracked flow whose
    /// direction this generation has routed in full from the same sender
    /// (`nacl_bits::FORWARD_ROUTED` / `REVERSE_ROUTED`) is forwarded to the
    /// receiver the flow caches, without finding its sender by L2 address,
    /// checking its source or routing it again.
    ///
    /// Sound because all three depend only on the snapshot, the sending
    /// ENI and the packet's addresses: the generation is the same, the
    /// flow's key fixes the addresses, and the sender is the same ENI when
    /// the frame carries that ENI's port, VLAN and MAC (an L2 address
    /// names one ENI per snapshot: `CompileError::DuplicateL2`). The
    /// direction's NACL verdict is cached the same way. The differential
    /// tests run every packet through this lane and the reference model.
    #[inline(always)]
    fn established_plain(&mut self, p: &Pending, now: Seconds, snapshot: &PolicySnapshot) -> Lane {
        let generation = snapshot.generation() as u32;
        let entry = match self.flows.lookup_unscoped(p.hash, &p.key, now) {
            Unscoped::Live(entry) => entry,
            Unscoped::Absent => return Lane::Absent,
            Unscoped::Other => return Lane::Declined,
        };
        let from_initiator = entry.initiator() == p.side;
        let (sender, receiver, needed) = if from_initiator {
            (
                entry.initiator_eni,
                entry.responder_eni,
                nacl_bits::FORWARD_ROUTED | nacl_bits::FORWARD_ALLOWED,
            )
        } else {
            (
                entry.responder_eni,
                entry.initiator_eni,
                nacl_bits::REVERSE_ROUTED | nacl_bits::REVERSE_ALLOWED,
            )
        };
        if entry.generation != generation || entry.verdict_flags & needed != needed {
            return Lane::Declined;
        }
        // The uplink as sender (`UPLINK_ENDPOINT`) is past the table's end.
        let Some(sender) = snapshot.eni_by_index(sender) else {
            return Lane::Declined;
        };
        let Some(sender) = snapshot
            .eni_path(sender)
            .filter(|path| path.port == p.port && path.vlan() == p.vlan && path.mac == p.src_mac)
        else {
            return Lane::Declined;
        };
        // The receiver's output, resolved once here for `forward_through`.
        let (output, receiver_path) = if receiver == UPLINK_ENDPOINT {
            (snapshot.uplink().map(Output::uplink), None)
        } else {
            match snapshot.eni_by_index(receiver) {
                Some(eni) => {
                    let path = snapshot.eni_path(eni);
                    (path.map(Output::eni), path)
                }
                None => return Lane::Declined,
            }
        };
        match entry.update_with(p.side, p.tcp_flags, now, || {
            paths_timeouts(Some(sender), receiver_path)
        }) {
            FlowUpdate::Forward => {
                self.counters.flow_hits += 1;
                Lane::Forward(output)
            }
            FlowUpdate::Restart => Lane::Restart,
        }
    }

    /// The full path for a plain frame the established lane did not
    /// forward (`lane` says why). Out of line: the lane's inlined code
    /// would otherwise pay for its registers.
    #[inline(never)]
    fn decide_plain_in_full<P: PacketBuf>(
        &mut self,
        p: &Pending,
        pkt: &mut P,
        now: Seconds,
        snapshot: &PolicySnapshot,
        lane: Lane,
    ) -> Result<u16, DropReason> {
        if let Lane::Absent = lane {
            // No flow: a flow the rules denied a moment ago costs one more
            // hashed lookup (its line prefetched with the flow table's).
            if let Some(reason) = self.remembered_plain_denial(p, now, snapshot) {
                return Err(reason);
            }
        }
        // The frame is as the first pass read it (the lane does not touch
        // it).
        let plain = parse_plain_ipv4(pkt.data()).ok_or(DropReason::Malformed)?;
        let full = route_plain(p, &plain, snapshot)?;
        match lane {
            // As `decide_flow` does on `Restart`: the lane found the flow
            // with the sender and receiver this routing gives.
            Lane::Restart => {
                self.flows.remove(full.hash, &full.key, now);
                self.decide_new(&full, now, snapshot)?;
            }
            // Not even an expired entry has the key: nothing to look up.
            Lane::Absent => self.decide_new(&full, now, snapshot)?,
            Lane::Declined | Lane::Forward(_) => self.decide_flow(&full, now, snapshot)?,
        }
        forward(pkt, &full, snapshot)
    }

    /// The remembered denial of a plain frame no flow has, before it is
    /// routed: it applies if the frame comes from the sender that was
    /// denied, by the established lane's test (port, VLAN and MAC name one
    /// sender per snapshot), since the sender and the addresses fix the
    /// source check, the route and the rules' verdict.
    #[inline(always)]
    fn remembered_plain_denial(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Option<DropReason> {
        let generation = snapshot.generation() as u32;
        let denial = self.denied.find(p.hash, &p.key, p.side, generation, now)?;
        let l2 = if denial.sender == UPLINK_ENDPOINT {
            snapshot.uplink().map(|u| (u.port, u.vlan, u.mac))
        } else {
            snapshot
                .eni_by_index(denial.sender)
                .and_then(|eni| snapshot.eni_path(eni))
                .map(|path| (path.port, path.vlan(), path.mac))
        };
        if l2 != Some((p.port, p.vlan, p.src_mac)) {
            return None;
        }
        Some(self.replay_denial(snapshot, &denial))
    }
}
