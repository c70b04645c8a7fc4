//! Step 5 for packets that carry no flow of their own: ICMP errors, let
//! through as related traffic of the flow they quote, and later fragments
//! (no L4 header), which follow the verdict their datagram's first
//! fragment was given.

use core::net::IpAddr;

use palisade_flow::{FirstFragmentVerdict, FragmentKey, FragmentVerdict, Prefetch, Seconds};
use palisade_policy::{PacketFields, PolicySnapshot};
use palisade_wire::FragmentInfo;

use super::decide::nacl_allows;
use super::{Pending, Worker};
use crate::verdict::DropReason;

impl<F: Prefetch> Worker<F> {
    /// The first fragment of a datagram records its verdict for the rest.
    pub(super) fn follow_first_fragment(&mut self, p: &Pending, now: Seconds, allowed: bool) {
        let Some(fragment) = p.fragment else {
            return;
        };
        if fragment.offset != 0 || !fragment.more {
            return;
        }
        let Ok((hash, key)) = fragment_key(p.key.vpc(), &p.fields, p.fragment) else {
            return;
        };
        let verdict = if allowed {
            FirstFragmentVerdict::Allow {
                source_port: p.fields.src_port,
                destination_port: p.fields.dst_port,
            }
        } else {
            FirstFragmentVerdict::Deny
        };
        // A full fragment table only costs the later fragments (counted
        // there as unknown): the first one's own verdict stands.
        let _ = self.fragments.record_first(hash, key, verdict, now);
    }

    /// An ICMP error is allowed as related traffic of the flow it quotes.
    pub(super) fn decide_related(
        &mut self,
        p: &Pending,
        now: Seconds,
        snapshot: &PolicySnapshot,
    ) -> Result<(), DropReason> {
        if self.flows.lookup(p.hash, &p.key, now).is_none() {
            return Err(DropReason::IcmpErrorUnrelated);
        }
        if !nacl_allows(snapshot, p.src, p.route, &p.fields) {
            return Err(DropReason::NaclDenied);
        }
        self.counters.related += 1;
        Ok(())
    }

    /// A later fragment follows its datagram's first fragment.
    pub(super) fn decide_fragment(&mut self, p: &Pending, now: Seconds) -> Result<(), DropReason> {
        let (hash, key) = fragment_key(p.key.vpc(), &p.fields, p.fragment)?;
        match self.fragments.lookup(hash, &key, now) {
            FragmentVerdict::Allow { .. } => Ok(()),
            FragmentVerdict::Deny | FragmentVerdict::Unknown => Err(DropReason::FragmentUnknown),
        }
    }
}

/// The fragment table's key of a fragmented datagram, and its hash.
pub(super) fn fragment_key(
    vpc: u32,
    fields: &PacketFields,
    fragment: Option<FragmentInfo>,
) -> Result<(u64, FragmentKey), DropReason> {
    let fragment = fragment.ok_or(DropReason::Malformed)?;
    let key = match (fields.src, fields.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => FragmentKey::new_v4(
            vpc,
            s.octets(),
            d.octets(),
            fields.protocol,
            fragment.id as u16,
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            FragmentKey::new_v6(vpc, s.octets(), d.octets(), fields.protocol, fragment.id)
        }
        _ => return Err(DropReason::Malformed),
    };
    Ok((key.hash(), key))
}
