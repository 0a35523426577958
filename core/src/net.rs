//! Network addresses and ranges as kube's flags and validation read them: the service IP range
//! (`--service-cluster-ip-range`), the node-port range (`--service-node-port-range`), and IP
//! parsing with Go's rules. Shared by the configuration, validation, the Service allocator and
//! the EndpointSlice controller.

use alloc::string::String;
use core::fmt;

/// An IPv4 service range (kube's `--service-cluster-ip-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    /// The network address.
    pub network: u32,
    /// Prefix length, 12..=30 (kube refuses ranges larger than a /12).
    pub prefix: u8,
}

impl ServiceCidr {
    /// k3s' default, 10.43.0.0/16.
    pub const K3S: Self = Self {
        network: 0x0a2b_0000,
        prefix: 16,
    };

    /// Parses `a.b.c.d/n`, masking host bits as Go's `ParseCIDR` does.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || alloc::format!("expected an IPv4 CIDR such as 10.43.0.0/16, got {text:?}");
        let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
        let ip = parse_ipv4(ip).ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(12..=30).contains(&prefix) {
            return Err(alloc::format!(
                "the service range {text} must have a prefix between /12 and /30"
            ));
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        Ok(Self {
            network: ip & mask,
            prefix,
        })
    }

    /// Addresses in the range, network and broadcast included.
    pub(crate) fn size(self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    /// The first usable address, which the `kubernetes` Service takes.
    pub fn first(self) -> u32 {
        self.network.wrapping_add(1)
    }

    /// Whether `ip` may be allocated: in the range, neither network nor broadcast address.
    pub(crate) fn usable(self, ip: u32) -> bool {
        ip > self.network && ip < self.network.wrapping_add(self.size() - 1)
    }

    /// Addresses from the bottom kept for explicit requests (kube's `calculateRangeOffset`:
    /// min(max(16, size/16), 256)).
    pub(crate) fn static_band(self) -> u32 {
        (self.size() / 16).clamp(16, 256)
    }
}

impl fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4(self.network), self.prefix)
    }
}

/// A node-port range (kube's `--service-node-port-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// Lowest port.
    pub first: u16,
    /// Highest port.
    pub last: u16,
}

impl PortRange {
    /// kube's default, 30000-32767.
    pub const DEFAULT: Self = Self {
        first: 30000,
        last: 32767,
    };

    /// Parses `first-last` (or a single port).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || alloc::format!("expected a port range such as 30000-32767, got {text:?}");
        let (first, last) = text.split_once('-').unwrap_or((text, text));
        let first: u16 = first.trim().parse().map_err(|_| bad())?;
        let last: u16 = last.trim().parse().map_err(|_| bad())?;
        if first == 0 || last < first {
            return Err(bad());
        }
        Ok(Self { first, last })
    }

    pub(crate) fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// Ports from the bottom kept for explicit requests (kube's portallocator offset:
    /// min(max(16, size/32), 128)).
    pub(crate) fn static_band(self) -> u16 {
        let size = u32::from(self.last - self.first) + 1;
        u16::try_from((size / 32).clamp(16, 128)).unwrap_or(128)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Go's `net.IP.String()` of an IPv4 address.
pub(crate) struct Ipv4(pub(crate) u32);

impl fmt::Display for Ipv4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0.to_be_bytes();
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// kube's `ParseIPSloppy` for IPv4: four decimal fields, leading zeros allowed.
pub(crate) fn parse_ipv4(text: &str) -> Option<u32> {
    let mut parts = text.split('.');
    let mut ip = 0u32;
    for _ in 0..4 {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ip = (ip << 8) | u32::from(part.parse::<u8>().ok()?);
    }
    parts.next().is_none().then_some(ip)
}

/// Whether `text` is an IP address kube would accept (IPv4 here; IPv6 is valid but not served).
pub(crate) fn is_ip(text: &str) -> bool {
    parse_ipv4(text).is_some() || text.parse::<core::net::Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_print_like_kube_flags() {
        let cidr = ServiceCidr::parse("10.43.7.9/16").unwrap();
        assert_eq!(cidr, ServiceCidr::K3S);
        assert_eq!(alloc::format!("{cidr}"), "10.43.0.0/16");
        assert!(cidr.usable(0x0a2b_0001) && cidr.usable(0x0a2b_fffe));
        assert!(!cidr.usable(0x0a2b_0000) && !cidr.usable(0x0a2b_ffff));
        assert!(!cidr.usable(0x0a2c_0001));
        assert_eq!(cidr.static_band(), 256);
        assert!(ServiceCidr::parse("10.0.0.0/8").is_err());
        assert!(ServiceCidr::parse("10.43.0/16").is_err());
        assert_eq!(PortRange::parse("30000-32767"), Ok(PortRange::DEFAULT));
        assert_eq!(PortRange::DEFAULT.static_band(), 86);
        assert!(PortRange::parse("32767-30000").is_err());
        assert_eq!(parse_ipv4("010.043.000.001"), Some(0x0a2b_0001));
        assert!(parse_ipv4("not-an-ip").is_none() && parse_ipv4("1.2.3.256").is_none());
        assert!(is_ip("fd00::1") && !is_ip("fd00::g"));
    }
}
