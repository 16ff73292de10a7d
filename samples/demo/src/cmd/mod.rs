//! One module per subcommand; `tour` is what runs with no arguments.

pub mod hid;
pub mod list;
pub mod loopback;
pub mod serial;
pub mod tour;

use usbdf::Device;

use crate::error::{DemoError, Result};

/// A `vid:pid` pair from the command line, in hex (`0525:a4a7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VidPid {
    /// `idVendor`.
    pub vendor_id: u16,
    /// `idProduct`.
    pub product_id: u16,
}

impl std::str::FromStr for VidPid {
    type Err = DemoError;

    fn from_str(s: &str) -> Result<VidPid> {
        let bad = || DemoError::Argument(format!("{s:?} is not vid:pid in hex (e.g. 0525:a4a7)"));
        let (v, p) = s.split_once(':').ok_or_else(bad)?;
        Ok(VidPid {
            vendor_id: u16::from_str_radix(v, 16).map_err(|_| bad())?,
            product_id: u16::from_str_radix(p, 16).map_err(|_| bad())?,
        })
    }
}

impl std::fmt::Display for VidPid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor_id, self.product_id)
    }
}

impl VidPid {
    /// Whether `device` has these IDs.
    pub fn is(&self, device: &Device) -> bool {
        let d = device.device_descriptor();
        (d.vendor_id, d.product_id) == (self.vendor_id, self.product_id)
    }
}

/// Parse hex bytes (`de:ad:be:ef`, `deadbeef` or `de ad be ef`).
///
/// # Errors
/// [`DemoError::Argument`] for anything else.
pub fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let digits: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-' | '_'))
        .collect();
    let bad = || DemoError::Argument(format!("{s:?} is not hex bytes (e.g. de:ad:be:ef)"));
    if digits.len() % 2 != 0 {
        return Err(bad());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// Bytes as `de ad be ef`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vid_pid_and_hex_parse() {
        let v: VidPid = "0525:A4A7".parse().unwrap();
        assert_eq!((v.vendor_id, v.product_id), (0x0525, 0xa4a7));
        assert_eq!(v.to_string(), "0525:a4a7");
        assert!("0525".parse::<VidPid>().is_err());
        assert!("0525:xyz".parse::<VidPid>().is_err());
        assert_eq!(parse_hex("de:ad BE-ef").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert_eq!(hex(&[1, 0xab]), "01 ab");
    }
}
