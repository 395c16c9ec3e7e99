//! The types settings become at load: each knows how to read itself from its text in a
//! properties file, what text it expects, and how to write itself back.

use super::secret_setting::SecretSetting;
use crate::secrets::StoreChoice;
use crate::secrets::tpm::{PcrSelection, TpmDevice};
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A type a setting's text becomes.
pub trait SettingValue: Sized {
    /// What a valid text looks like, for messages and the settings table.
    const EXPECTED: &'static str;
    /// Whether the value is a secret, shown only as `***`.
    const SECRET: bool = false;
    /// Reads the value; the error says what was expected or what is wrong.
    fn parse(text: &str) -> Result<Self, String>;
    /// Writes the value so that `parse` reads it back (secrets as `***`, or empty when unset).
    fn render(&self) -> String;
    /// The value as a number, for settings that have bounds.
    fn magnitude(&self) -> Option<u64> {
        None
    }
    /// The value as a secret setting, for the settings that are secrets (the open pass, sealing).
    fn as_secret(&self) -> Option<&SecretSetting> {
        None
    }
    /// The value as a secret setting to open or seal in place.
    fn as_secret_mut(&mut self) -> Option<&mut SecretSetting> {
        None
    }
}

fn expected<T: SettingValue>() -> String {
    format!("expected {}", T::EXPECTED)
}

impl SettingValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(expected::<Self>()),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for u32 {
    const EXPECTED: &'static str = "a whole number";
    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| expected::<Self>())
    }
    fn render(&self) -> String {
        self.to_string()
    }
    fn magnitude(&self) -> Option<u64> {
        Some(u64::from(*self))
    }
}

/// A TCP or UDP port; 0 lets the system pick a free one (tests), the log then names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl SettingValue for Port {
    const EXPECTED: &'static str = "a port number from 0 to 65535";
    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map(Port).map_err(|_| expected::<Self>())
    }
    fn render(&self) -> String {
        self.0.to_string()
    }
}

impl SettingValue for IpAddr {
    const EXPECTED: &'static str = "an IPv4 or IPv6 address";
    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| expected::<Self>())
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for Option<IpAddr> {
    const EXPECTED: &'static str = "an IPv4 or IPv6 address (empty: none)";
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Ok(None),
            address => address.parse().map(Some).map_err(|_| expected::<Self>()),
        }
    }
    fn render(&self) -> String {
        self.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// A span of whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl SettingValue for Seconds {
    const EXPECTED: &'static str = "a whole number of seconds";
    fn parse(text: &str) -> Result<Self, String> {
        let secs: u64 = text.trim().parse().map_err(|_| expected::<Self>())?;
        Ok(Seconds(Duration::from_secs(secs)))
    }
    fn render(&self) -> String {
        self.0.as_secs().to_string()
    }
    fn magnitude(&self) -> Option<u64> {
        Some(self.0.as_secs())
    }
}

impl SettingValue for PathBuf {
    const EXPECTED: &'static str = "a directory path";
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Err(expected::<Self>()),
            path => Ok(PathBuf::from(path)),
        }
    }
    fn render(&self) -> String {
        self.display().to_string()
    }
}

impl SettingValue for Option<PathBuf> {
    const EXPECTED: &'static str = "a file path (empty: none)";
    fn parse(text: &str) -> Result<Self, String> {
        Ok(Some(text.trim()).filter(|path| !path.is_empty()).map(PathBuf::from))
    }
    fn render(&self) -> String {
        self.as_ref().map(|path| path.display().to_string()).unwrap_or_default()
    }
}

/// How hash tokens are made (`tokenHashFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHashFormat {
    /// `base64(hmac_sha256(streamId + role + expireDate, tokenHashSecret))`, with an expiry.
    HmacSha256,
    /// Ant Media Server's legacy `hex(sha256(streamId + role + tokenHashSecret))`, without expiry.
    AmsSha256,
}

impl SettingValue for TokenHashFormat {
    const EXPECTED: &'static str = "hmac-sha256 or ams-sha256";
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "hmac-sha256" => Ok(TokenHashFormat::HmacSha256),
            "ams-sha256" => Ok(TokenHashFormat::AmsSha256),
            _ => Err(expected::<Self>()),
        }
    }
    fn render(&self) -> String {
        match self {
            TokenHashFormat::HmacSha256 => "hmac-sha256",
            TokenHashFormat::AmsSha256 => "ams-sha256",
        }
        .to_string()
    }
}

impl SettingValue for StoreChoice {
    const EXPECTED: &'static str = "auto, tpm or file";
    fn parse(text: &str) -> Result<Self, String> {
        StoreChoice::parse(text)
    }
    fn render(&self) -> String {
        self.name().to_string()
    }
}

impl SettingValue for TpmDevice {
    const EXPECTED: &'static str = "a TPM device path such as /dev/tpmrm0, or swtpm:HOST:PORT";
    fn parse(text: &str) -> Result<Self, String> {
        TpmDevice::parse(text)
    }
    fn render(&self) -> String {
        TpmDevice::render(self)
    }
}

impl SettingValue for Option<PcrSelection> {
    const EXPECTED: &'static str = "PCRs of the SHA-256 bank such as sha256:7 or sha256:0,7 (empty: none)";
    fn parse(text: &str) -> Result<Self, String> {
        PcrSelection::parse(text)
    }
    fn render(&self) -> String {
        self.as_ref().map(PcrSelection::render).unwrap_or_default()
    }
}

/// A comma-separated list of networks; a bare address is a single host (`/32` or `/128`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CidrList(pub Vec<IpNet>);

impl SettingValue for CidrList {
    const EXPECTED: &'static str = "comma-separated CIDRs such as 192.168.1.0/24,10.0.0.5";
    fn parse(text: &str) -> Result<Self, String> {
        let items = text.split(',').map(str::trim).filter(|item| !item.is_empty());
        let nets = items.map(parse_net).collect::<Result<Vec<_>, _>>()?;
        Ok(CidrList(nets))
    }
    fn render(&self) -> String {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|net| if net.prefix_len() == net.max_prefix_len() { net.addr().to_string() } else { net.to_string() })
            .collect();
        items.join(",")
    }
}

fn parse_net(item: &str) -> Result<IpNet, String> {
    // Host bits are dropped, as Ant Media Server does: 192.168.1.5/24 means 192.168.1.0/24.
    let net = item.parse::<IpNet>().map(|net| net.trunc());
    net.or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("\"{item}\" is not a CIDR ({})", CidrList::EXPECTED))
}

/// Web origins (`scheme://host[:port]`) besides the box's own whose pages may call the panel and
/// REST API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginList(pub Vec<String>);

impl OriginList {
    /// Whether `origin` (an `Origin` header's value) is listed; scheme and host in any case.
    pub fn contains(&self, origin: &str) -> bool {
        self.0.iter().any(|listed| listed.eq_ignore_ascii_case(origin))
    }
}

impl SettingValue for OriginList {
    const EXPECTED: &'static str = "comma-separated origins such as https://studio.example.com,http://10.0.0.5:8080";
    fn parse(text: &str) -> Result<Self, String> {
        let items = text.split(',').map(str::trim).filter(|item| !item.is_empty());
        let origins = items.map(parse_origin).collect::<Result<Vec<_>, _>>()?;
        Ok(OriginList(origins))
    }
    fn render(&self) -> String {
        self.0.join(",")
    }
}

fn parse_origin(item: &str) -> Result<String, String> {
    let wrong = || format!("\"{item}\" is not an origin ({})", OriginList::EXPECTED);
    let uri: http::Uri = item.parse().map_err(|_| wrong())?;
    let (Some(scheme @ ("http" | "https")), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(wrong());
    };
    if uri.path() != "/" || item.ends_with('/') || uri.query().is_some() || authority.as_str().contains('@') {
        return Err(wrong());
    }
    Ok(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()))
}

/// An absolute `http://` or `https://` URL with a host. Displayed (and debug-printed) as its
/// scheme, host, port and path only: a webhook's or a JWKS URL's query (or user part) often
/// carries an API key, which must not reach the logs. The settings files keep it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl(pub http::Uri);

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.scheme_str().unwrap_or_default();
        write!(f, "{scheme}://{}", self.0.host().unwrap_or_default())?;
        if let Some(port) = self.0.port_u16() {
            write!(f, ":{port}")?;
        }
        f.write_str(self.0.path())
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpUrl({self})")
    }
}

impl SettingValue for Option<HttpUrl> {
    const EXPECTED: &'static str = "an http:// or https:// URL (empty: off)";
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let uri: http::Uri = text.parse().map_err(|_| expected::<Self>())?;
        let web = matches!(uri.scheme_str(), Some("http" | "https"));
        if !web || uri.host().is_none_or(str::is_empty) {
            return Err(expected::<Self>());
        }
        Ok(Some(HttpUrl(uri)))
    }
    fn render(&self) -> String {
        self.as_ref().map(|url| url.0.to_string()).unwrap_or_default()
    }
}

/// Text that goes out as an HTTP header value: printable, one line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderText(pub String);

impl SettingValue for HeaderText {
    const EXPECTED: &'static str = "one line of printable text (an HTTP header value)";
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        http::HeaderValue::from_str(text).map_err(|_| expected::<Self>())?;
        Ok(HeaderText(text.to_string()))
    }
    fn render(&self) -> String {
        self.0.clone()
    }
}

/// The log level, with Ant Media Server's (logback's) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLevel(pub log::LevelFilter);

impl SettingValue for LogLevel {
    const EXPECTED: &'static str = "one of OFF, ERROR, WARN, INFO, DEBUG, TRACE, ALL";
    fn parse(text: &str) -> Result<Self, String> {
        let level = match text.trim().to_ascii_uppercase().as_str() {
            "ALL" => log::LevelFilter::Trace,
            other => other.parse().map_err(|_| expected::<Self>())?,
        };
        Ok(LogLevel(level))
    }
    fn render(&self) -> String {
        self.0.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: SettingValue + PartialEq + fmt::Debug>(text: &str) {
        let value = T::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(T::parse(&value.render()), Ok(value), "{text}");
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        round_trip::<OriginList>("https://studio.example.com,http://10.0.0.5:8080");
        let list = OriginList::parse(" HTTPS://Studio.Example.com , ").unwrap();
        assert_eq!(list.render(), "https://studio.example.com");
        for bad in [
            "studio.example.com",
            "ftp://a.example",
            "https://a.example/",
            "https://a.example/x",
            "https://u@a.example",
            "null",
        ] {
            assert!(OriginList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_read_back_what_they_write() {
        round_trip::<bool>("TRUE");
        round_trip::<u32>(" 42 ");
        round_trip::<Port>("1935");
        round_trip::<IpAddr>("::1");
        round_trip::<Seconds>("300");
        round_trip::<PathBuf>("/var/lib/rampart");
        round_trip::<CidrList>("10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::1");
        round_trip::<CidrList>("");
        round_trip::<Option<HttpUrl>>("https://auth.example.com:8443/check?x=1");
        round_trip::<Option<HttpUrl>>("");
        round_trip::<HeaderText>("default-src 'self'");
        round_trip::<LogLevel>("warn");
        round_trip::<Option<PathBuf>>("/etc/ssl/private-ca.pem");
        round_trip::<Option<PathBuf>>("");
        round_trip::<TokenHashFormat>("ams-sha256");
    }

    #[test]
    fn cidr_list_reads_bare_addresses_as_hosts() {
        let list = CidrList::parse("127.0.0.1").unwrap();
        assert_eq!(list.0, vec!["127.0.0.1/32".parse::<IpNet>().unwrap()]);
        assert_eq!(list.render(), "127.0.0.1");
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        assert_eq!(bool::parse("yes"), Err("expected true or false".into()));
        assert_eq!(Port::parse("70000"), Err("expected a port number from 0 to 65535".into()));
        assert_eq!(
            CidrList::parse("10.0.0.0/8,10.1.2.300"),
            Err("\"10.1.2.300\" is not a CIDR (comma-separated CIDRs such as 192.168.1.0/24,10.0.0.5)".into())
        );
        assert_eq!(CidrList::parse("10.1.2.3/8").unwrap().render(), "10.0.0.0/8");
        let url_err = Err("expected an http:// or https:// URL (empty: off)".into());
        assert_eq!(Option::<HttpUrl>::parse("ftp://x/y"), url_err);
        assert_eq!(Option::<HttpUrl>::parse("/relative"), url_err);
        assert_eq!(
            LogLevel::parse("LOUD").map(|l| l.0),
            Err("expected one of OFF, ERROR, WARN, INFO, DEBUG, TRACE, ALL".into())
        );
    }

    #[test]
    fn urls_display_without_their_query_or_user_part() {
        let url = |text: &str| Option::<HttpUrl>::parse(text).unwrap().unwrap();
        let hook = url("https://hook:pw@auth.example.com:8443/check/publish?apiKey=s3cr3t&x=1");
        assert_eq!(hook.to_string(), "https://auth.example.com:8443/check/publish");
        assert_eq!(format!("{hook:?}"), "HttpUrl(https://auth.example.com:8443/check/publish)");
        assert_eq!(url("http://[::1]:9000/jwks.json?key=k").to_string(), "http://[::1]:9000/jwks.json");
        assert_eq!(url("https://keys.example.com?token=t").to_string(), "https://keys.example.com/");
        let whole = "https://hook:pw@auth.example.com:8443/check/publish?apiKey=s3cr3t&x=1";
        assert_eq!(Some(hook).render(), whole, "the settings files keep the whole URL");
    }

    #[test]
    fn secrets_render_redacted() {
        assert_eq!(SecretSetting::parse("s3cr3t").unwrap().render(), "***");
        assert_eq!(SecretSetting::parse("").unwrap().render(), "");
    }
}
