//! VPC peering connections and their life cycle: what makes another VPC's
//! groups referable and its blocks routable.

use palisade_policy::{PeeringId, VpcId};
use serde::{Deserialize, Serialize};

use super::fields::not_found;
use super::{ApiError, Ec2ErrorCode, IdSource, Model, ObjectKind, Outcome};

/// A peering's life cycle, as DescribeVpcPeeringConnections reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeeringState {
    /// Requested, not yet accepted: routes nothing.
    PendingAcceptance,
    /// Accepted: routes, and cross-VPC group references match.
    Active,
    /// Deleted: group references across it are stale.
    Deleted,
}

/// A VPC peering connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peering {
    /// Its id.
    pub id: PeeringId,
    /// The requester.
    pub requester: VpcId,
    /// The accepter.
    pub accepter: VpcId,
    /// Where it is in its life cycle.
    pub state: PeeringState,
}

impl Model {
    fn peering(&self, id: &str) -> Result<&Peering, ApiError> {
        self.peerings.get(id).ok_or_else(|| {
            not_found(
                Ec2ErrorCode::InvalidVpcPeeringConnectionIdNotFound,
                "vpcPeeringConnection",
                id,
            )
        })
    }

    /// Whether `a` and `b` are the same VPC or actively peered.
    pub(super) fn reachable(&self, a: &VpcId, b: &VpcId) -> bool {
        a == b
            || self.peerings.values().any(|p| {
                p.state == PeeringState::Active
                    && ((&p.requester == a && &p.accepter == b)
                        || (&p.requester == b && &p.accepter == a))
            })
    }

    /// CreateVpcPeeringConnection: two distinct VPCs whose blocks do not overlap.
    pub(super) fn request_peering(
        &mut self,
        vpc: &str,
        peer_vpc: &str,
        ids: &mut dyn IdSource,
    ) -> Result<Outcome, ApiError> {
        let a = self.vpc(vpc)?;
        let b = self.vpc(peer_vpc)?;
        if a.id == b.id || a.cidr.contains_cidr(&b.cidr) || b.cidr.contains_cidr(&a.cidr) {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidVpcPeeringConnectionOverlap,
                "The VPCs are the same or their CIDR blocks overlap",
            ));
        }
        let id = PeeringId(ids.fresh_id(ObjectKind::Peering));
        self.peerings.insert(
            id.0.clone(),
            Peering {
                id: id.clone(),
                requester: VpcId(vpc.to_owned()),
                accepter: VpcId(peer_vpc.to_owned()),
                state: PeeringState::PendingAcceptance,
            },
        );
        Ok(Outcome::Created(vec![id.0]))
    }

    /// AcceptVpcPeeringConnection.
    pub(super) fn accept_peering(&mut self, peering: &str) -> Result<Outcome, ApiError> {
        if self.peering(peering)?.state != PeeringState::PendingAcceptance {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidStateTransition,
                format!("The peering connection {peering} is not pending acceptance"),
            ));
        }
        if let Some(p) = self.peerings.get_mut(peering) {
            p.state = PeeringState::Active;
        }
        Ok(Outcome::Done)
    }

    /// DeleteVpcPeeringConnection.
    pub(super) fn delete_peering(&mut self, peering: &str) -> Result<Outcome, ApiError> {
        if self.peering(peering)?.state == PeeringState::Deleted {
            return Err(ApiError::new(
                Ec2ErrorCode::InvalidStateTransition,
                format!("The peering connection {peering} is already deleted"),
            ));
        }
        if let Some(p) = self.peerings.get_mut(peering) {
            p.state = PeeringState::Deleted;
        }
        Ok(Outcome::Done)
    }
}
