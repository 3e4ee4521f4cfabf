//! `[dns]`: the resolver the doctor reads SPF, DKIM and DMARC with. A leaf
//! module: the settings tree reads it without depending on the doctor.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroU64,
    str::FromStr,
    time::Duration,
};

use serde::Deserialize;

/// `[dns]`: the resolver the SPF/DKIM/DMARC checks use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// `WARMLINE__DNS__NAMESERVER`: `ip` or `ip:port` (`127.0.0.1:5353`,
    /// `[::1]:53`). Unset: the system configuration (`/etc/resolv.conf`).
    pub nameserver: Option<Nameserver>,
    /// How long one lookup may take before it counts as "could not check".
    pub timeout_ms: NonZeroU64,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            nameserver: None,
            timeout_ms: NonZeroU64::new(2000).expect("non-zero literal"),
        }
    }
}

impl DnsSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.get())
    }
}

/// A nameserver address; the port defaults to 53.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nameserver(pub SocketAddr);

impl FromStr for Nameserver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Self(addr));
        }
        s.parse::<IpAddr>()
            .map(|ip| Self(SocketAddr::new(ip, 53)))
            .map_err(|_| format!("'{s}' is not an IP address or IP:port"))
    }
}

impl<'de> Deserialize<'de> for Nameserver {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
