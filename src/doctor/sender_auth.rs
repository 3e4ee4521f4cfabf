//! Sender authentication: the doctor's SPF, DKIM and DMARC rows for the
//! domain of `email.from` (`WARMLINE_EMAIL_FROM`), read from DNS as a
//! receiving mail server would read them. Gmail and Yahoo require all three
//! from bulk senders (`reliability-and-compliance.md` §6).
//!
//! What is looked up, by the provider that carries email:
//! - SPF: a TXT record starting `v=spf1` on the envelope (Return-Path)
//!   domain, the one SPF authenticates. With SMTP that is the sender
//!   domain; Resend sends from its own `send.<domain>` subdomain and asks
//!   for the SPF record there.
//! - DKIM: a TXT key at `<selector>._domainkey.<domain>`; Resend signs with
//!   the selector `resend`, an SMTP server with `email.dkim_selector`.
//! - DMARC: a TXT record at `_dmarc.<domain>`; when the sender is a
//!   subdomain without one, receivers apply the parent domain's policy, so
//!   the parents are read too (up to a two-label name: without the public
//!   suffix list that is the organisational domain's usual shape).
//!
//! Invariants:
//! - A DNS failure (SERVFAIL, REFUSED, timeout, unreachable server) is never
//!   a pass and never "missing": it fails as "could not check", distinct
//!   from a record that is not there (NXDOMAIN or no TXT records).
//! - Every lookup is bounded by `dns.timeout_ms`, and the three run at the
//!   same time, so the doctor stays inside Slack's 3 s.
//! - The three rows are always reported for email, even when no lookup can
//!   be made (no sender set); they never silently disappear.
//! - Parsing ([`parse_spf`], [`parse_tags`], [`parse_dmarc`], [`dkim_key`])
//!   is pure; [`evaluate`] turns [`Facts`] into rows without any network.

use std::{fmt, time::Duration};

use base64::Engine as _;
use hickory_resolver::{
    Resolver, TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
    proto::rr::{Name, RData},
};

use super::Check;
pub use super::settings::{DnsSettings, Nameserver};
use crate::settings::Settings;

pub const SPF: &str = "SPF record";
pub const DKIM: &str = "DKIM record";
pub const DMARC: &str = "DMARC record";

const CHANNEL: &str = crate::domain::Channel::Email.as_str();
/// Said in every failure hint: why these records are not optional.
const BULK: &str = "Gmail and Yahoo require SPF, DKIM and DMARC from bulk senders";
/// Resend's DKIM selector and the subdomain its Return-Path (and so SPF)
/// lives on.
const RESEND_SELECTOR: &str = "resend";
const RESEND_RETURN_PATH: &str = "send";
/// Longest record quoted in a row.
const QUOTE_MAX: usize = 120;

// ---------------------------------------------------------------------------
// Settings: `super::settings`.

// ---------------------------------------------------------------------------
// Parsing.

/// An SPF qualifier (RFC 7208 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    fn symbol(self) -> char {
        match self {
            Self::Pass => '+',
            Self::Fail => '-',
            Self::SoftFail => '~',
            Self::Neutral => '?',
        }
    }
}

/// What the doctor needs from one SPF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spf {
    /// The qualifier of the `all` mechanism, if there is one.
    pub all: Option<Qualifier>,
    /// A `redirect=` modifier's domain: the policy lives there.
    pub redirect: Option<String>,
}

/// Whether a TXT record is an SPF record: `v=spf1` alone or followed by a
/// space (RFC 7208 §4.5; `v=spf10` is not one).
pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start();
    t.len() >= 6
        && t[..6].eq_ignore_ascii_case("v=spf1")
        && t[6..].chars().next().is_none_or(|c| c == ' ')
}

/// Reads the `all` mechanism and `redirect=` modifier of an SPF record.
pub fn parse_spf(txt: &str) -> Spf {
    let mut spf = Spf {
        all: None,
        redirect: None,
    };
    for term in txt.split_whitespace().skip(1) {
        if let Some((name, value)) = term.split_once('=')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            if name.eq_ignore_ascii_case("redirect") {
                spf.redirect = Some(value.to_string());
            }
            continue;
        }
        let (qualifier, mechanism) = match term.chars().next() {
            Some('+') => (Qualifier::Pass, &term[1..]),
            Some('-') => (Qualifier::Fail, &term[1..]),
            Some('~') => (Qualifier::SoftFail, &term[1..]),
            Some('?') => (Qualifier::Neutral, &term[1..]),
            _ => (Qualifier::Pass, term),
        };
        if mechanism.eq_ignore_ascii_case("all") {
            spf.all = Some(qualifier);
            // Terms after `all` are never reached (RFC 7208 §5.1).
            break;
        }
    }
    spf
}

/// A `tag=value; tag=value` list, as DKIM keys (RFC 6376 §3.2) and DMARC
/// records (RFC 7489 §6.4) write them: names lower-cased, values trimmed.
pub fn parse_tags(txt: &str) -> Vec<(String, String)> {
    txt.split(';')
        .filter_map(|part| {
            let (name, value) = part.split_once('=')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Whether a TXT record at `_dmarc.` is a DMARC record: its first tag is
/// `v=DMARC1` (RFC 7489 §6.4); anything else there is ignored by receivers.
pub fn is_dmarc(txt: &str) -> bool {
    parse_tags(txt)
        .first()
        .is_some_and(|(n, v)| n == "v" && v == "DMARC1")
}

/// The DMARC policy values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    fn parse(v: &str) -> Option<Self> {
        match v.to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "quarantine" => Some(Self::Quarantine),
            "reject" => Some(Self::Reject),
            _ => None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Quarantine => "quarantine",
            Self::Reject => "reject",
        })
    }
}

/// What is wrong with a DMARC record, in words for the row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmarcError {
    #[error("has no p= tag")]
    NoPolicy,
    #[error("has p={0}, which is not none, quarantine or reject")]
    BadPolicy(String),
    #[error("has no rua= tag, so nobody receives the aggregate reports")]
    NoRua,
    #[error("has rua={0}, which names no mailto: address")]
    BadRua(String),
}

/// A DMARC record the doctor accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    pub policy: Policy,
    /// `sp=`: what applies to subdomains, when set and valid.
    pub subdomain_policy: Option<Policy>,
    pub rua: String,
}

/// Reads a DMARC record (one [`is_dmarc`] accepted): a valid `p=` and a
/// `rua=` with a `mailto:` address.
pub fn parse_dmarc(txt: &str) -> Result<Dmarc, DmarcError> {
    let tags = parse_tags(txt);
    let policy = match tag(&tags, "p") {
        None => return Err(DmarcError::NoPolicy),
        Some(p) => Policy::parse(p).ok_or_else(|| DmarcError::BadPolicy(p.to_string()))?,
    };
    let rua = match tag(&tags, "rua") {
        None | Some("") => return Err(DmarcError::NoRua),
        Some(r) if !r.to_ascii_lowercase().contains("mailto:") => {
            return Err(DmarcError::BadRua(r.to_string()));
        }
        Some(r) => r.to_string(),
    };
    Ok(Dmarc {
        policy,
        subdomain_policy: tag(&tags, "sp").and_then(Policy::parse),
        rua,
    })
}

/// What a TXT record at a DKIM selector holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimKey {
    /// A public key (`p=` with base64 in it).
    Key,
    /// `p=` empty: the key was revoked (RFC 6376 §3.6.1).
    Revoked,
    /// `p=` that is not base64, often a long key split badly across strings.
    Garbled,
    /// No `p=` tag: not a key record.
    NotAKey,
}

/// Reads one TXT record at `<selector>._domainkey.<domain>`.
pub fn dkim_key(txt: &str) -> DkimKey {
    let tags = parse_tags(txt);
    let Some(p) = tag(&tags, "p") else {
        return DkimKey::NotAKey;
    };
    // Folding whitespace is allowed inside the base64 (RFC 6376 §3.6.1).
    let p: String = p.chars().filter(|c| !c.is_whitespace()).collect();
    if p.is_empty() {
        DkimKey::Revoked
    } else if base64::engine::general_purpose::STANDARD.decode(&p).is_ok() {
        DkimKey::Key
    } else {
        DkimKey::Garbled
    }
}

/// The domain of a sender `"Name <address>"` or `address`, lower-case
/// ASCII (an internationalised domain in its `xn--` form).
pub fn sender_domain(from: &str) -> Result<String, String> {
    let mailbox: lettre::message::Mailbox = from
        .parse()
        .map_err(|_| format!("WARMLINE_EMAIL_FROM ({from}) is not an address"))?;
    let domain = mailbox.email.domain();
    let name = Name::from_utf8(domain)
        .map_err(|e| format!("the sender domain {domain} is not a DNS name: {e}"))?;
    Ok(name.to_ascii().trim_end_matches('.').to_ascii_lowercase())
}

// ---------------------------------------------------------------------------
// Lookups.

/// The answer to one TXT query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txt {
    /// The TXT records at the name, each one's strings joined (RFC 7208
    /// §3.3, RFC 6376 §3.6.2.2).
    Found(Vec<String>),
    /// NXDOMAIN, or the name has no TXT records.
    Missing,
    /// The question could not be answered: SERVFAIL, REFUSED, timeout, …
    Failed(String),
}

/// One TXT query and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The name asked about, without the trailing dot.
    pub name: String,
    pub txt: Txt,
}

/// A resolver with the configured server and a bound on every lookup.
pub struct Dns {
    resolver: TokioResolver,
    timeout: Duration,
}

impl Dns {
    /// The configured nameserver over UDP (TCP when an answer is truncated),
    /// else the system configuration.
    pub fn new(settings: &DnsSettings) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match settings.nameserver {
            Some(Nameserver(addr)) => {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                let server = NameServerConfig::new(addr.ip(), true, connections);
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    provider,
                )
            }
            None => Resolver::builder(provider)
                .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?,
        };
        let timeout = settings.timeout();
        let opts = builder.options_mut();
        opts.timeout = timeout;
        // One try: the outer bound below is what the doctor promises.
        opts.attempts = 1;
        let resolver = builder
            .build()
            .map_err(|e| format!("cannot build a DNS resolver: {e}"))?;
        Ok(Self { resolver, timeout })
    }

    /// The TXT records at `name` (a domain name without trailing dot).
    pub async fn txt(&self, name: &str) -> Probe {
        let txt = self.lookup(name).await;
        if let Txt::Failed(e) = &txt {
            tracing::debug!(name, error = %e, "doctor: TXT lookup failed");
        }
        Probe {
            name: name.to_string(),
            txt,
        }
    }

    async fn lookup(&self, name: &str) -> Txt {
        // Fully qualified: the search domains of resolv.conf never apply.
        let fqdn = match Name::from_ascii(format!("{name}.")) {
            Ok(n) => n,
            Err(e) => return Txt::Failed(format!("{name} is not a DNS name: {e}")),
        };
        match tokio::time::timeout(self.timeout, self.resolver.txt_lookup(fqdn)).await {
            Err(_) => Txt::Failed(format!("no answer within {} ms", self.timeout.as_millis())),
            Ok(Err(e)) if e.is_no_records_found() => Txt::Missing,
            Ok(Err(e)) => Txt::Failed(e.to_string()),
            Ok(Ok(lookup)) => {
                let records: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    Txt::Missing
                } else {
                    Txt::Found(records)
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Facts and rows.

/// Which DKIM selector the provider signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Resend always signs with `resend`.
    Resend,
    /// `email.dkim_selector`.
    Configured(String),
    /// SMTP (or another provider) without `email.dkim_selector`.
    Unset,
    /// `email.dkim_selector` is not a DNS label.
    Invalid(String),
}

impl Selector {
    pub fn for_provider(provider: &str, configured: Option<&str>) -> Self {
        if provider == "resend" {
            return Self::Resend;
        }
        match configured.map(str::trim) {
            None | Some("") => Self::Unset,
            Some(s)
                if s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                }) =>
            {
                Self::Configured(s.to_ascii_lowercase())
            }
            Some(s) => Self::Invalid(s.to_string()),
        }
    }

    fn label(&self) -> Option<&str> {
        match self {
            Self::Resend => Some(RESEND_SELECTOR),
            Self::Configured(s) => Some(s),
            Self::Unset | Self::Invalid(_) => None,
        }
    }
}

/// Everything read from DNS about the sender domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub domain: String,
    /// The provider that carries email (`resend`, `smtp`, …).
    pub provider: String,
    pub spf: Probe,
    pub selector: Selector,
    /// `None` when there is no selector to look up.
    pub dkim: Option<Probe>,
    /// `_dmarc.<domain>`, then its parents while each is missing.
    pub dmarc: Vec<Probe>,
}

/// The three rows for the settings and the provider that carries email.
pub async fn run(settings: &Settings, provider: &str) -> Vec<Check> {
    let domain = match settings.email.from.as_deref().map(str::trim) {
        None | Some("") => {
            return unchecked(
                "WARMLINE_EMAIL_FROM is not set, so there is no sender domain to check",
            );
        }
        Some(from) => match sender_domain(from) {
            Ok(d) => d,
            Err(e) => return unchecked(&e),
        },
    };
    let dns = match Dns::new(&settings.dns) {
        Ok(d) => d,
        Err(e) => return unchecked(&format!("could not check {domain}: {e}")),
    };
    let selector = Selector::for_provider(provider, settings.email.dkim_selector.as_deref());
    let facts = gather(&dns, &domain, provider, selector).await;
    evaluate(&facts)
}

/// The same failing reason on all three rows.
fn unchecked(reason: &str) -> Vec<Check> {
    [SPF, DKIM, DMARC]
        .into_iter()
        .map(|item| Check::new(CHANNEL, item, false, reason))
        .collect()
}

/// Asks the three questions at once.
pub async fn gather(dns: &Dns, domain: &str, provider: &str, selector: Selector) -> Facts {
    let spf_name = if provider == "resend" {
        format!("{RESEND_RETURN_PATH}.{domain}")
    } else {
        domain.to_string()
    };
    let dkim_name = selector.label().map(|s| format!("{s}._domainkey.{domain}"));
    let (spf, dkim, dmarc) = tokio::join!(
        dns.txt(&spf_name),
        async {
            match &dkim_name {
                Some(name) => Some(dns.txt(name).await),
                None => None,
            }
        },
        dmarc_chain(dns, domain),
    );
    Facts {
        domain: domain.to_string(),
        provider: provider.to_string(),
        spf,
        selector,
        dkim,
        dmarc,
    }
}

/// `_dmarc.<domain>`, then `_dmarc.<parent>` while the answer is "missing"
/// and the parent has at least two labels.
async fn dmarc_chain(dns: &Dns, domain: &str) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut at = domain;
    loop {
        let probe = dns.txt(&format!("_dmarc.{at}")).await;
        let missing = probe.txt == Txt::Missing;
        probes.push(probe);
        match at.split_once('.') {
            Some((_, parent)) if missing && parent.contains('.') => at = parent,
            _ => return probes,
        }
    }
}

/// The SPF, DKIM and DMARC rows.
pub fn evaluate(f: &Facts) -> Vec<Check> {
    vec![spf(f), dkim(f), dmarc(f)]
}

fn could_not_check(item: &'static str, probe: &Probe, error: &str) -> Check {
    Check::new(
        CHANNEL,
        item,
        false,
        format!(
            "could not check {}: {error}. This is a DNS failure, not a missing record; check [dns] nameserver or run the doctor again",
            probe.name
        ),
    )
}

fn quote(record: &str) -> String {
    let mut chars = record.chars();
    let head: String = chars.by_ref().take(QUOTE_MAX).collect();
    if chars.next().is_some() {
        format!("`{head}…`")
    } else {
        format!("`{head}`")
    }
}

pub fn spf(f: &Facts) -> Check {
    let p = &f.spf;
    let fail = |reason: String| Check::new(CHANNEL, SPF, false, reason);
    let where_ = if f.provider == "resend" {
        format!(
            "Resend's Return-Path subdomain {}; copy the SPF record from the Resend domain page",
            p.name
        )
    } else {
        format!(
            "{}, e.g. `v=spf1 include:<your mail server's SPF domain> -all`",
            p.name
        )
    };
    let records = match &p.txt {
        Txt::Failed(e) => return could_not_check(SPF, p, e),
        Txt::Missing => Vec::new(),
        Txt::Found(all) => all.iter().filter(|t| is_spf(t)).collect(),
    };
    match records.as_slice() {
        [] => fail(format!(
            "no SPF record (TXT `v=spf1 …`) at {}: publish one at {where_}. {BULK}",
            p.name
        )),
        [record] => {
            let spf = parse_spf(record);
            let shown = quote(record);
            match (spf.all, &spf.redirect) {
                (Some(Qualifier::Pass), _) => fail(format!(
                    "{} ends in +all, which lets any server on the internet send as {}: end it with -all or ~all. {shown}",
                    p.name, f.domain
                )),
                (Some(Qualifier::Neutral), _) => Check::warn(
                    CHANNEL,
                    SPF,
                    format!(
                        "{} ends in ?all (neutral): mail from servers it does not list is not refused; prefer ~all or -all. {shown}",
                        p.name
                    ),
                ),
                (Some(q), _) => Check::new(
                    CHANNEL,
                    SPF,
                    true,
                    format!(
                        "one SPF record at {} ending in {}all: {shown}",
                        p.name,
                        q.symbol()
                    ),
                ),
                (None, Some(target)) => Check::new(
                    CHANNEL,
                    SPF,
                    true,
                    format!(
                        "one SPF record at {}, delegating to redirect={target}: {shown}",
                        p.name
                    ),
                ),
                (None, None) => Check::warn(
                    CHANNEL,
                    SPF,
                    format!(
                        "{} has no all mechanism, so mail from servers it does not list gets a neutral result; end it with ~all or -all. {shown}",
                        p.name
                    ),
                ),
            }
        }
        many => fail(format!(
            "{} SPF records at {}: receivers treat more than one as a permanent error (RFC 7208 §4.5), so SPF fails for every message; merge them into one. {BULK}",
            many.len(),
            p.name
        )),
    }
}

pub fn dkim(f: &Facts) -> Check {
    let fail = |reason: String| Check::new(CHANNEL, DKIM, false, reason);
    let p = match (&f.selector, &f.dkim) {
        (Selector::Invalid(s), _) => {
            return fail(format!(
                "email.dkim_selector '{s}' is not a DNS label (letters, digits, - and _)"
            ));
        }
        (Selector::Unset, _) | (_, None) => {
            return fail(format!(
                "{} signs with a DKIM selector the doctor cannot know: set email.dkim_selector (WARMLINE__EMAIL__DKIM_SELECTOR) to the selector your mail server signs {} with, so <selector>._domainkey.{} can be checked",
                f.provider, f.domain, f.domain
            ));
        }
        (_, Some(p)) => p,
    };
    let publish = if f.selector == Selector::Resend {
        "copy the DKIM record from the Resend domain page".to_string()
    } else {
        format!(
            "publish the public key your mail server signs with (selector {})",
            f.selector.label().unwrap_or_default()
        )
    };
    let records = match &p.txt {
        Txt::Failed(e) => return could_not_check(DKIM, p, e),
        Txt::Missing => {
            return fail(format!("no DKIM key at {}: {publish}. {BULK}", p.name));
        }
        Txt::Found(records) => records,
    };
    let keys: Vec<DkimKey> = records.iter().map(|r| dkim_key(r)).collect();
    if keys.contains(&DkimKey::Key) {
        Check::new(
            CHANNEL,
            DKIM,
            true,
            format!("a DKIM public key is published at {}", p.name),
        )
    } else if keys.contains(&DkimKey::Revoked) {
        fail(format!(
            "the DKIM key at {} is revoked (empty p=): mail signed with it fails DKIM; {publish}. {BULK}",
            p.name
        ))
    } else if keys.contains(&DkimKey::Garbled) {
        fail(format!(
            "the DKIM key at {} is not valid base64 (a long key split badly across TXT strings?); {publish}",
            p.name
        ))
    } else {
        fail(format!(
            "the TXT record at {} is not a DKIM key (no p= tag); {publish}. {BULK}",
            p.name
        ))
    }
}

pub fn dmarc(f: &Facts) -> Check {
    let fail = |reason: String| Check::new(CHANNEL, DMARC, false, reason);
    let own = format!("_dmarc.{}", f.domain);
    let example = format!(
        "publish a TXT record at {own} such as `v=DMARC1; p=none; rua=mailto:dmarc-reports@{}`",
        f.domain
    );
    // The last probe is the one that decided: found, failed, or the last
    // parent tried.
    let Some(p) = f.dmarc.last() else {
        return fail(format!("no DMARC record at {own}: {example}. {BULK}"));
    };
    let records: Vec<&String> = match &p.txt {
        Txt::Failed(e) => return could_not_check(DMARC, p, e),
        Txt::Missing => Vec::new(),
        Txt::Found(all) => all.iter().filter(|t| is_dmarc(t)).collect(),
    };
    let inherited = p.name != own;
    match records.as_slice() {
        [] => fail(format!(
            "no DMARC record (TXT `v=DMARC1; …`) at {own}{}: {example}. {BULK}",
            if inherited {
                format!(" nor at {}", p.name)
            } else {
                String::new()
            }
        )),
        [record] => match parse_dmarc(record) {
            Ok(d) => {
                let policy = if inherited {
                    d.subdomain_policy.unwrap_or(d.policy)
                } else {
                    d.policy
                };
                Check::new(
                    CHANNEL,
                    DMARC,
                    true,
                    format!(
                        "{}p={policy}, reports to {}{}",
                        if inherited {
                            format!("{} inherits the policy of {}: ", f.domain, p.name)
                        } else {
                            format!("{}: ", p.name)
                        },
                        d.rua,
                        if policy == Policy::None {
                            " (p=none only monitors; move to quarantine or reject once the reports are clean)"
                        } else {
                            ""
                        }
                    ),
                )
            }
            Err(e) => fail(format!(
                "the DMARC record at {} {e}: {} {BULK}, with a p= policy and an rua= address for reports",
                p.name,
                quote(record)
            )),
        },
        many => fail(format!(
            "{} DMARC records at {}: receivers then apply none (RFC 7489 §6.6.3); keep one. {BULK}",
            many.len(),
            p.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_spf_record_is_v_spf1_alone_or_followed_by_a_space() {
        assert!(is_spf("v=spf1 include:_spf.google.com ~all"));
        assert!(is_spf("V=SPF1 -all"));
        assert!(is_spf("v=spf1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("google-site-verification=abc"));
        assert!(!is_spf("v=DMARC1; p=none"));
    }

    #[test]
    fn spf_all_qualifiers_are_read() {
        assert_eq!(parse_spf("v=spf1 -all").all, Some(Qualifier::Fail));
        assert_eq!(
            parse_spf("v=spf1 include:x ~all").all,
            Some(Qualifier::SoftFail)
        );
        assert_eq!(parse_spf("v=spf1 ?all").all, Some(Qualifier::Neutral));
        assert_eq!(parse_spf("v=spf1 +all").all, Some(Qualifier::Pass));
        assert_eq!(parse_spf("v=spf1 a mx all").all, Some(Qualifier::Pass));
        assert_eq!(parse_spf("v=spf1 ALL").all, Some(Qualifier::Pass));
        assert_eq!(parse_spf("v=spf1 include:x").all, None);
    }

    #[test]
    fn spf_modifiers_are_not_mechanisms() {
        let spf = parse_spf("v=spf1 redirect=_spf.example.com");
        assert_eq!(spf.all, None);
        assert_eq!(spf.redirect.as_deref(), Some("_spf.example.com"));
        // `exp=` is a modifier; an `include:` with an `=` in its macro is not.
        assert_eq!(parse_spf("v=spf1 exp=all.example.com").all, None);
        assert_eq!(parse_spf("v=spf1 -all exp=x").all, Some(Qualifier::Fail));
    }

    #[test]
    fn tags_are_split_on_semicolons_and_trimmed() {
        assert_eq!(
            parse_tags(" v=DMARC1 ;P=reject; rua = mailto:a@b.c ;"),
            vec![
                ("v".into(), "DMARC1".into()),
                ("p".into(), "reject".into()),
                ("rua".into(), "mailto:a@b.c".into()),
            ]
        );
        assert!(parse_tags("").is_empty());
    }

    #[test]
    fn a_dmarc_record_starts_with_v_dmarc1() {
        assert!(is_dmarc("v=DMARC1; p=none"));
        assert!(is_dmarc("v = DMARC1;p=none"));
        assert!(!is_dmarc("p=none; v=DMARC1"));
        assert!(!is_dmarc("v=spf1 -all"));
    }

    #[test]
    fn dmarc_needs_a_known_policy_and_a_mailto_rua() {
        let d = parse_dmarc("v=DMARC1; p=quarantine; sp=reject; rua=mailto:d@example.com").unwrap();
        assert_eq!(d.policy, Policy::Quarantine);
        assert_eq!(d.subdomain_policy, Some(Policy::Reject));
        assert_eq!(d.rua, "mailto:d@example.com");
        assert_eq!(
            parse_dmarc("v=DMARC1; rua=mailto:d@example.com"),
            Err(DmarcError::NoPolicy)
        );
        assert_eq!(
            parse_dmarc("v=DMARC1; p=block; rua=mailto:d@example.com"),
            Err(DmarcError::BadPolicy("block".into()))
        );
        assert_eq!(parse_dmarc("v=DMARC1; p=reject"), Err(DmarcError::NoRua));
        assert_eq!(
            parse_dmarc("v=DMARC1; p=reject; rua="),
            Err(DmarcError::NoRua)
        );
        assert_eq!(
            parse_dmarc("v=DMARC1; p=reject; rua=https://x"),
            Err(DmarcError::BadRua("https://x".into()))
        );
    }

    #[test]
    fn dkim_keys_are_present_revoked_or_garbled() {
        assert_eq!(
            dkim_key("v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEB"),
            DkimKey::Key
        );
        assert_eq!(dkim_key("p=MIGfMA0G CSqGSIb3 DQEB"), DkimKey::Key);
        assert_eq!(dkim_key("v=DKIM1; p="), DkimKey::Revoked);
        assert_eq!(dkim_key("v=DKIM1; p= ;"), DkimKey::Revoked);
        assert_eq!(dkim_key("v=DKIM1; p=not base64!"), DkimKey::Garbled);
        assert_eq!(dkim_key("v=DKIM1; k=rsa"), DkimKey::NotAKey);
    }

    #[test]
    fn the_sender_domain_comes_from_name_and_address_alike() {
        assert_eq!(
            sender_domain("Team <team@Mail.Example.com>").unwrap(),
            "mail.example.com"
        );
        assert_eq!(sender_domain("a@example.org").unwrap(), "example.org");
        assert_eq!(
            sender_domain("a@bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert!(sender_domain("not an address").is_err());
    }

    #[test]
    fn nameservers_take_an_optional_port() {
        assert_eq!(
            "127.0.0.1:5353".parse::<Nameserver>().unwrap().0,
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            "10.0.0.2".parse::<Nameserver>().unwrap().0,
            "10.0.0.2:53".parse().unwrap()
        );
        assert_eq!("[::1]:53".parse::<Nameserver>().unwrap().0.port(), 53);
        assert!("dns.example.com".parse::<Nameserver>().is_err());
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, crate::settings::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        let mut env: std::collections::BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("WARMLINE_CONFIG".into(), empty.to_string_lossy().into());
        Settings::load_from(&env, crate::settings::Requirements::Offline)
    }

    #[test]
    fn the_dns_settings_come_from_the_environment() {
        // Arrange / Act
        let s = load(&[
            ("WARMLINE__DNS__NAMESERVER", "127.0.0.1:5353"),
            ("WARMLINE__DNS__TIMEOUT_MS", "750"),
            ("WARMLINE__EMAIL__DKIM_SELECTOR", "mail"),
        ])
        .unwrap();

        // Assert
        assert_eq!(
            s.dns.nameserver,
            Some(Nameserver("127.0.0.1:5353".parse().unwrap()))
        );
        assert_eq!(s.dns.timeout(), Duration::from_millis(750));
        assert_eq!(s.email.dkim_selector.as_deref(), Some("mail"));
        let defaults = load(&[]).unwrap();
        assert_eq!(defaults.dns.nameserver, None);
        assert_eq!(defaults.dns.timeout(), Duration::from_secs(2));
    }

    #[test]
    fn a_bad_nameserver_or_a_zero_timeout_is_refused_naming_the_setting() {
        let err = load(&[("WARMLINE__DNS__NAMESERVER", "dns.example.com")]).unwrap_err();
        assert!(err.to_string().contains("dns.nameserver"), "{err}");
        let err = load(&[("WARMLINE__DNS__TIMEOUT_MS", "0")]).unwrap_err();
        assert!(err.to_string().contains("dns.timeout_ms"), "{err}");
    }

    #[test]
    fn resend_signs_with_its_own_selector_and_smtp_needs_one_set() {
        assert_eq!(Selector::for_provider("resend", None), Selector::Resend);
        assert_eq!(
            Selector::for_provider("resend", Some("s1")),
            Selector::Resend
        );
        assert_eq!(Selector::for_provider("smtp", None), Selector::Unset);
        assert_eq!(Selector::for_provider("smtp", Some(" ")), Selector::Unset);
        assert_eq!(
            Selector::for_provider("smtp", Some("Mail2024")),
            Selector::Configured("mail2024".into())
        );
        assert!(matches!(
            Selector::for_provider("smtp", Some("bad selector")),
            Selector::Invalid(_)
        ));
    }

    fn found(name: &str, records: &[&str]) -> Probe {
        Probe {
            name: name.into(),
            txt: Txt::Found(records.iter().map(|r| r.to_string()).collect()),
        }
    }

    fn missing(name: &str) -> Probe {
        Probe {
            name: name.into(),
            txt: Txt::Missing,
        }
    }

    /// A domain sending over SMTP with every record right.
    fn good() -> Facts {
        Facts {
            domain: "example.com".into(),
            provider: "smtp".into(),
            spf: found(
                "example.com",
                &["google-site-verification=x", "v=spf1 mx -all"],
            ),
            selector: Selector::Configured("s1".into()),
            dkim: Some(found(
                "s1._domainkey.example.com",
                &["v=DKIM1; k=rsa; p=MIGfMA0G"],
            )),
            dmarc: vec![found(
                "_dmarc.example.com",
                &["v=DMARC1; p=reject; rua=mailto:d@example.com"],
            )],
        }
    }

    #[test]
    fn good_records_pass_all_three_rows() {
        let checks = evaluate(&good());
        assert_eq!(checks.len(), 3);
        assert!(checks.iter().all(|c| c.passed && !c.warning), "{checks:#?}");
        assert_eq!(checks[0].item, SPF);
        assert!(checks[0].reason.contains("ending in -all"), "{checks:?}");
        assert!(checks[2].reason.contains("p=reject"), "{checks:?}");
    }

    #[test]
    fn spf_neutral_or_without_all_warns_and_plus_all_fails() {
        let mut f = good();
        f.spf = found("example.com", &["v=spf1 mx ?all"]);
        let c = spf(&f);
        assert!(c.passed && c.warning && c.reason.contains("?all"), "{c:?}");
        f.spf = found("example.com", &["v=spf1 mx"]);
        let c = spf(&f);
        assert!(
            c.passed && c.warning && c.reason.contains("no all"),
            "{c:?}"
        );
        f.spf = found("example.com", &["v=spf1 redirect=_spf.example.net"]);
        let c = spf(&f);
        assert!(c.passed && !c.warning, "{c:?}");
        f.spf = found("example.com", &["v=spf1 +all"]);
        let c = spf(&f);
        assert!(!c.passed && c.reason.contains("+all"), "{c:?}");
    }

    #[test]
    fn resend_spf_is_read_on_its_return_path_subdomain() {
        let mut f = good();
        f.provider = "resend".into();
        f.spf = missing("send.example.com");
        let c = spf(&f);
        assert!(!c.passed, "{c:?}");
        assert!(c.reason.contains("send.example.com"), "{c:?}");
        assert!(c.reason.contains("Resend domain page"), "{c:?}");
        assert!(c.reason.contains(BULK), "{c:?}");
    }

    #[test]
    fn smtp_without_a_selector_names_the_setting() {
        let mut f = good();
        f.selector = Selector::Unset;
        f.dkim = None;
        let c = dkim(&f);
        assert!(
            !c.passed && c.reason.contains("email.dkim_selector"),
            "{c:?}"
        );
    }

    #[test]
    fn a_malformed_selector_is_named_not_looked_up() {
        let mut f = good();
        f.selector = Selector::Invalid("bad selector".into());
        f.dkim = None;
        let c = dkim(&f);
        assert!(
            !c.passed && c.reason.contains("'bad selector' is not a DNS label"),
            "{c:?}"
        );
    }

    #[test]
    fn a_txt_record_that_is_not_a_key_fails_dkim() {
        let mut f = good();
        f.dkim = Some(found("s1._domainkey.example.com", &["hello"]));
        let c = dkim(&f);
        assert!(!c.passed && c.reason.contains("not a DKIM key"), "{c:?}");
    }

    #[test]
    fn a_subdomain_inherits_the_parent_dmarc_policy() {
        let mut f = good();
        f.domain = "news.example.com".into();
        f.dmarc = vec![
            missing("_dmarc.news.example.com"),
            found(
                "_dmarc.example.com",
                &["v=DMARC1; p=none; sp=quarantine; rua=mailto:d@example.com"],
            ),
        ];
        let c = dmarc(&f);
        assert!(c.passed, "{c:?}");
        assert!(
            c.reason.contains(
                "news.example.com inherits the policy of _dmarc.example.com: p=quarantine"
            ),
            "{c:?}"
        );
    }

    #[test]
    fn two_dmarc_records_fail() {
        let mut f = good();
        f.dmarc = vec![found(
            "_dmarc.example.com",
            &[
                "v=DMARC1; p=none; rua=mailto:a@example.com",
                "v=DMARC1; p=reject; rua=mailto:b@example.com",
            ],
        )];
        let c = dmarc(&f);
        assert!(
            !c.passed && c.reason.starts_with("2 DMARC records"),
            "{c:?}"
        );
    }

    #[test]
    fn a_failed_lookup_is_could_not_check_never_missing() {
        let mut f = good();
        let failed = |name: &str| Probe {
            name: name.into(),
            txt: Txt::Failed("request timed out".into()),
        };
        f.spf = failed("example.com");
        f.dkim = Some(failed("s1._domainkey.example.com"));
        f.dmarc = vec![failed("_dmarc.example.com")];
        for c in evaluate(&f) {
            assert!(!c.passed, "{c:?}");
            assert!(c.reason.starts_with("could not check"), "{c:?}");
            assert!(!c.reason.contains("publish"), "{c:?}");
        }
    }

    #[test]
    fn long_records_are_quoted_shortened() {
        let long = "v=spf1 ".to_string() + &"ip4:192.0.2.1 ".repeat(20) + "-all";
        let q = quote(&long);
        assert!(
            q.ends_with("…`") && q.chars().count() == QUOTE_MAX + 3,
            "{q}"
        );
        assert_eq!(quote("v=spf1 -all"), "`v=spf1 -all`");
    }
}
