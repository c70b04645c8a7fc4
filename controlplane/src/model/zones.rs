//! The availability zones of the appliance's region: names (`us-east-1a`)
//! and zone ids (`use1-az1`), which CreateSubnet, DescribeSubnets,
//! DescribeAvailabilityZones and the default VPC's subnets use.

/// One availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `ZoneName`, e.g. `us-east-1a`.
    pub name: String,
    /// `ZoneId`, e.g. `use1-az1`.
    pub id: String,
}

/// The zones of `region`: six (a–f) in `us-east-1`, three (a–c)
/// elsewhere. Zone ids follow AWS's shape (`use1-az1`: the region's
/// initials and number); AWS maps letters to ids per account, palisade in
/// order.
pub fn availability_zones(region: &str) -> Vec<Zone> {
    let count = if region == "us-east-1" { 6 } else { 3 };
    let parts: Vec<&str> = region.split('-').collect();
    let short: String = match parts.as_slice() {
        [first, middle @ .., last] => {
            let mut s = (*first).to_owned();
            for m in middle {
                s.extend(m.chars().next());
            }
            s.push_str(last);
            s
        }
        [_] | [] => region.to_owned(),
    };
    (0..count)
        .map(|n| Zone {
            name: format!("{region}{}", char::from(b'a' + n)),
            id: format!("{short}-az{}", n + 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::availability_zones;

    #[test]
    fn us_east_1_has_six_zones_with_aws_shaped_ids() {
        let zones = availability_zones("us-east-1");
        assert_eq!(zones.len(), 6);
        assert_eq!(zones[0].name, "us-east-1a");
        assert_eq!(zones[0].id, "use1-az1");
        assert_eq!(zones[5].name, "us-east-1f");
        let west = availability_zones("eu-west-3");
        assert_eq!(west.len(), 3);
        assert_eq!(west[2].id, "euw3-az3");
    }
}
