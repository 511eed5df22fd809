//! The validation rules of TFChain's tfgrid pallet for names, addresses, locations and interfaces.
//! Each returns the reason a value is refused, for the caller to wrap in its error.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::limits::*;
use crate::types::{Interface, Location, Resources};

type Rule = Result<(), &'static str>;

fn check(ok: bool, reason: &'static str) -> Rule {
    if ok { Ok(()) } else { Err(reason) }
}

pub fn farm_name(name: &str) -> Rule {
    check(
        (FARM_NAME_LEN_MIN..=FARM_NAME_LEN_MAX).contains(&name.len()),
        "must be 3 to 40 characters",
    )?;
    check(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "may only contain letters, digits, '_' and '-'",
    )
}

pub fn relay(relay: &str) -> Rule {
    check(
        !relay.is_empty() && relay.len() <= RELAY_LEN_MAX,
        "must be 1 to 1024 characters",
    )?;
    check(
        relay
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
        "may only contain letters, digits, '-', '_' and '.'",
    )?;
    check(
        relay.split('.').all(|label| !label.is_empty()),
        "has an empty label or a dot at an end",
    )
}

pub fn terms(link: &str, hash: &str) -> Rule {
    check(
        (1..=TC_LINK_LEN_MAX).contains(&link.len()),
        "the document link must be 1 to 2048 characters",
    )?;
    check(
        link.chars().all(|c| c.is_ascii_graphic()),
        "the document link may only contain URL characters",
    )?;
    check(
        (1..=TC_HASH_LEN_MAX).contains(&hash.len()),
        "the document hash must be 1 to 50 characters",
    )?;
    check(
        hash.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "the document hash may only contain letters, digits, '-' and '_'",
    )
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || ip.octets()[0] == 0
        || ip.octets()[0] >= 240)
}

/// Parses `a.b.c.d/len`.
pub fn parse_cidr_v4(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok()?;
    (len <= 32).then_some(())?;
    Some((ip.parse().ok()?, len))
}

/// A public IPv4 address with its prefix and its gateway, as farms and public configs hold them.
pub fn public_ip_v4(ip: &str, gateway: &str) -> Rule {
    check(ip.len() <= PUBLIC_IP_LEN_MAX, "the address is too long")?;
    check(gateway.len() <= GATEWAY_LEN_MAX, "the gateway is too long")?;
    let (addr, len) = parse_cidr_v4(ip)
        .ok_or("the address must be IPv4 with a prefix, like 185.206.122.33/24")?;
    let gw: Ipv4Addr = gateway
        .parse()
        .map_err(|_| "the gateway must be an IPv4 address")?;
    check(
        is_public_v4(addr),
        "the address is not a public unicast address",
    )?;
    check(
        is_public_v4(gw),
        "the gateway is not a public unicast address",
    )?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let network = u32::from(addr) & mask;
    check(
        u32::from(gw) & mask == network,
        "the gateway is outside the address's prefix",
    )?;
    check(
        u32::from(gw) != network,
        "the gateway is the network address",
    )?;
    check(gw != addr, "the gateway is the address itself")
}

pub fn public_ip_v6(ip: &str, gateway: &str) -> Rule {
    check(ip.len() <= IP6_LEN_MAX, "the IPv6 address is too long")?;
    check(
        gateway.len() <= GATEWAY6_LEN_MAX,
        "the IPv6 gateway is too long",
    )?;
    let (addr, len) = ip
        .split_once('/')
        .ok_or("the IPv6 address needs a prefix")?;
    let _: Ipv6Addr = addr
        .parse()
        .map_err(|_| "the IPv6 address does not parse")?;
    let len: u8 = len.parse().map_err(|_| "the IPv6 prefix does not parse")?;
    check(len <= 128, "the IPv6 prefix is longer than 128")?;
    let _: Ipv6Addr = gateway
        .parse()
        .map_err(|_| "the IPv6 gateway does not parse")?;
    Ok(())
}

pub fn domain(domain: &str) -> Rule {
    check(
        !domain.is_empty() && domain.len() <= DOMAIN_LEN_MAX,
        "the domain must be 1 to 128 characters",
    )?;
    check(
        domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
        "the domain may only contain letters, digits, '-' and '.'",
    )
}

pub fn resources(r: &Resources) -> Rule {
    check(r.cru >= NODE_CRU_MIN, "at least 1 CPU core")?;
    check(r.mru >= NODE_MRU_MIN, "at least 2 GiB of memory")?;
    check(
        r.sru >= NODE_SRU_MIN || r.hru >= NODE_HRU_MIN,
        "at least 100 GiB of SSD or 100 GB of HDD",
    )
}

fn coordinate(text: &str, bound: f64) -> bool {
    if text.is_empty() || text.len() > COORDINATE_LEN_MAX {
        return false;
    }
    text == "Unknown"
        || text
            .parse::<f64>()
            .is_ok_and(|v| v.is_finite() && v.abs() <= bound)
}

pub fn location(l: &Location) -> Rule {
    check(
        (1..=CITY_LEN_MAX).contains(&l.city.len()),
        "the city must be 1 to 58 characters",
    )?;
    check(
        (COUNTRY_LEN_MIN..=COUNTRY_LEN_MAX).contains(&l.country.len()),
        "the country must be 2 to 56 characters",
    )?;
    check(
        coordinate(&l.latitude, 90.0),
        "the latitude must be a number from -90 to 90, or Unknown",
    )?;
    check(
        coordinate(&l.longitude, 180.0),
        "the longitude must be a number from -180 to 180, or Unknown",
    )
}

pub fn interface(i: &Interface) -> Rule {
    check(
        (INTERFACE_NAME_LEN_MIN..=INTERFACE_NAME_LEN_MAX).contains(&i.name.len()),
        "the name must be 3 to 20 characters",
    )?;
    check(
        i.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'),
        "the name may only contain lowercase letters, digits, '_' and '-'",
    )?;
    let mac_ok = i.mac.len() == 17
        && i.mac.split(':').count() == 6
        && i.mac
            .split(':')
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    check(mac_ok, "the MAC address must look like 52:54:00:12:34:56")?;
    check(i.ips.len() <= INTERFACE_IPS_MAX, "at most 10 addresses")?;
    for ip in &i.ips {
        check(
            (INTERFACE_IP_LEN_MIN..=INTERFACE_IP_LEN_MAX).contains(&ip.len()),
            "an address must be 7 to 42 characters",
        )?;
        let addr = ip.split_once('/').map_or(ip.as_str(), |(a, _)| a);
        check(
            addr.parse::<std::net::IpAddr>().is_ok(),
            "an address is neither IPv4 nor IPv6",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn farm_names() {
        assert!(farm_name("my_farm-1").is_ok());
        for bad in ["ab", "a b c", "farm!", &"x".repeat(41)] {
            assert!(farm_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relays() {
        assert!(relay("relay.grid.tf").is_ok());
        for bad in ["", ".relay", "relay.", "re..lay", "re lay"] {
            assert!(relay(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn terms_and_conditions() {
        assert!(terms("https://grid.tf/tc.pdf", "abc-123").is_ok());
        assert!(terms("", "abc").is_err());
        assert!(terms("https://x", "").is_err());
        assert!(terms("https://x", "a b").is_err());
        assert!(terms("https://x", &"a".repeat(51)).is_err());
    }

    #[test]
    fn public_ips() {
        assert_eq!(public_ip_v4("185.206.122.33/24", "185.206.122.1"), Ok(()));
        for (ip, gw) in [
            ("185.206.122.33", "185.206.122.1"),     // no prefix
            ("10.0.0.2/24", "10.0.0.1"),             // private
            ("185.206.122.33/24", "185.206.123.1"),  // gateway outside
            ("185.206.122.33/24", "185.206.122.0"),  // network address
            ("185.206.122.33/24", "185.206.122.33"), // itself
            ("185.206.122.33/24", "gateway"),
            ("127.0.0.2/8", "127.0.0.1"),
            ("224.0.0.2/24", "224.0.0.1"),
        ] {
            assert!(public_ip_v4(ip, gw).is_err(), "{ip} {gw}");
        }
        assert!(public_ip_v6("2a02:1802:5e::223/64", "2a02:1802:5e::1").is_ok());
        assert!(public_ip_v6("2a02:1802:5e::223", "2a02:1802:5e::1").is_err());
    }

    #[test]
    fn node_fields() {
        let gib = 1024 * 1024 * 1024;
        assert!(
            resources(&Resources {
                cru: 1,
                mru: 2 * gib,
                sru: 100 * gib,
                hru: 0
            })
            .is_ok()
        );
        assert!(
            resources(&Resources {
                cru: 1,
                mru: 2 * gib,
                sru: 0,
                hru: 100_000_000_000
            })
            .is_ok()
        );
        assert!(
            resources(&Resources {
                cru: 0,
                mru: 2 * gib,
                sru: 100 * gib,
                hru: 0
            })
            .is_err()
        );
        assert!(
            resources(&Resources {
                cru: 1,
                mru: gib,
                sru: 100 * gib,
                hru: 0
            })
            .is_err()
        );
        assert!(
            resources(&Resources {
                cru: 1,
                mru: 2 * gib,
                sru: gib,
                hru: gib
            })
            .is_err()
        );

        let loc = |lat: &str, long: &str| Location {
            city: "Ghent".into(),
            country: "Belgium".into(),
            latitude: lat.into(),
            longitude: long.into(),
        };
        assert!(location(&loc("51.05", "3.71")).is_ok());
        assert!(location(&loc("Unknown", "Unknown")).is_ok());
        assert!(location(&loc("91", "3")).is_err());
        assert!(location(&loc("1", "-181")).is_err());
        assert!(location(&loc("north", "3")).is_err());

        let iface = |name: &str, mac: &str, ips: &[&str]| Interface {
            name: name.into(),
            mac: mac.into(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
        };
        assert!(
            interface(&iface(
                "zos",
                "52:54:00:12:34:56",
                &["10.1.2.3", "fe80::1/64"]
            ))
            .is_ok()
        );
        assert!(interface(&iface("ZOS", "52:54:00:12:34:56", &[])).is_err());
        assert!(interface(&iface("zos", "52:54:00:12:34", &[])).is_err());
        assert!(interface(&iface("zos", "52:54:00:12:34:56", &["1.2.3"])).is_err());
        assert!(interface(&iface("zos", "52:54:00:12:34:56", &["10.0.0.1"; 11])).is_err());
    }
}
