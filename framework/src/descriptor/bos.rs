//! Binary device object store (BOS, type 0x0F) and its device capability descriptors (0x10).

use super::iter::{checked, le16, write_descriptor, Descriptors, RawDescriptor};
use super::{Anomaly, DescriptorError, BOS, DEVICE_CAPABILITY};

/// `bDevCapabilityType` of the USB 2.0 extension (LPM support).
pub const CAPABILITY_USB2_EXTENSION: u8 = 0x02;
/// `bDevCapabilityType` of the SuperSpeed USB capability.
pub const CAPABILITY_SUPERSPEED: u8 = 0x03;
/// `bDevCapabilityType` of the container ID.
pub const CAPABILITY_CONTAINER_ID: u8 = 0x04;
/// `bDevCapabilityType` of a platform capability (WebUSB, Microsoft OS 2.0, …).
pub const CAPABILITY_PLATFORM: u8 = 0x05;
/// `bDevCapabilityType` of the SuperSpeedPlus capability (kept as [`DeviceCapability::Unknown`]).
pub const CAPABILITY_SUPERSPEED_PLUS: u8 = 0x0A;

/// USB 2.0 extension capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Usb2Extension {
    /// `bmAttributes` (32 bits): bit 1 LPM, bit 2 BESL and alternate HIRD, …
    pub attributes: u32,
}

impl Usb2Extension {
    /// Whether link power management is supported (bit 1).
    pub fn lpm(&self) -> bool {
        self.attributes & 0x02 != 0
    }
}

/// SuperSpeed USB device capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SuperSpeedCapability {
    /// `bmAttributes`: bit 1 latency tolerance messages (LTM) capable.
    pub attributes: u8,
    /// `wSpeedsSupported`: bit 0 low, 1 full, 2 high, 3 SuperSpeed (5 Gb/s).
    pub speeds_supported: u16,
    /// `bFunctionalitySupport`: lowest speed at which all functionality is available.
    pub functionality_support: u8,
    /// `bU1DevExitLat`, in µs.
    pub u1_exit_latency: u8,
    /// `wU2DevExitLat`, in µs.
    pub u2_exit_latency: u16,
}

impl SuperSpeedCapability {
    /// Whether the device can generate latency tolerance messages (bit 1 of `bmAttributes`).
    pub fn ltm_capable(&self) -> bool {
        self.attributes & 0x02 != 0
    }
}

/// A platform capability: a UUID naming the platform, then its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlatformCapability {
    /// `PlatformCapabilityUUID`, bytes as on the wire.
    pub uuid: [u8; 16],
    /// `CapabilityData`.
    pub data: Vec<u8>,
}

/// One device capability descriptor from a BOS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeviceCapability {
    /// USB 2.0 extension (type 2).
    Usb2Extension(Usb2Extension),
    /// SuperSpeed USB (type 3).
    SuperSpeed(SuperSpeedCapability),
    /// Container ID (type 4): a UUID unique to the device instance, bytes as on the wire.
    ContainerId([u8; 16]),
    /// Platform (type 5).
    Platform(PlatformCapability),
    /// Any other capability type, kept raw.
    Unknown {
        /// `bDevCapabilityType`.
        capability_type: u8,
        /// The bytes after `bDevCapabilityType`.
        data: Vec<u8>,
    },
}

impl DeviceCapability {
    /// Parse one device capability descriptor (type 0x10).
    ///
    /// Known capabilities shorter than their size are errors; bytes past their size are
    /// ignored (reserved bytes are not kept; they are written as 0).
    fn from_raw(raw: &RawDescriptor<'_>) -> Result<Self, DescriptorError> {
        let &[_, _, capability_type] = raw.fields::<3>(DEVICE_CAPABILITY)?;
        Ok(match capability_type {
            CAPABILITY_USB2_EXTENSION => {
                let b = raw.fields::<7>(DEVICE_CAPABILITY)?;
                DeviceCapability::Usb2Extension(Usb2Extension {
                    attributes: u32::from_le_bytes([b[3], b[4], b[5], b[6]]),
                })
            }
            CAPABILITY_SUPERSPEED => {
                let b = raw.fields::<10>(DEVICE_CAPABILITY)?;
                DeviceCapability::SuperSpeed(SuperSpeedCapability {
                    attributes: b[3],
                    speeds_supported: le16(b[4], b[5]),
                    functionality_support: b[6],
                    u1_exit_latency: b[7],
                    u2_exit_latency: le16(b[8], b[9]),
                })
            }
            CAPABILITY_CONTAINER_ID => DeviceCapability::ContainerId(uuid_at_4(raw)?),
            CAPABILITY_PLATFORM => DeviceCapability::Platform(PlatformCapability {
                uuid: uuid_at_4(raw)?,
                data: raw.as_bytes().get(20..).unwrap_or(&[]).to_vec(),
            }),
            _ => DeviceCapability::Unknown {
                capability_type,
                data: raw.as_bytes().get(3..).unwrap_or(&[]).to_vec(),
            },
        })
    }

    /// `bDevCapabilityType`.
    pub fn capability_type(&self) -> u8 {
        match self {
            DeviceCapability::Usb2Extension(_) => CAPABILITY_USB2_EXTENSION,
            DeviceCapability::SuperSpeed(_) => CAPABILITY_SUPERSPEED,
            DeviceCapability::ContainerId(_) => CAPABILITY_CONTAINER_ID,
            DeviceCapability::Platform(_) => CAPABILITY_PLATFORM,
            DeviceCapability::Unknown {
                capability_type, ..
            } => *capability_type,
        }
    }

    /// Append the capability descriptor to `out`.
    ///
    /// # Panics
    /// If platform or unknown data exceed what a `bLength` can hold. Parsed values never do.
    fn write_to(&self, out: &mut Vec<u8>) {
        let mut body = vec![self.capability_type()];
        match self {
            DeviceCapability::Usb2Extension(c) => body.extend(c.attributes.to_le_bytes()),
            DeviceCapability::SuperSpeed(c) => {
                body.push(c.attributes);
                body.extend(c.speeds_supported.to_le_bytes());
                body.push(c.functionality_support);
                body.push(c.u1_exit_latency);
                body.extend(c.u2_exit_latency.to_le_bytes());
            }
            DeviceCapability::ContainerId(uuid) => {
                body.push(0);
                body.extend(uuid);
            }
            DeviceCapability::Platform(p) => {
                body.push(0);
                body.extend(p.uuid);
                body.extend(&p.data);
            }
            DeviceCapability::Unknown { data, .. } => body.extend(data),
        }
        write_descriptor(out, DEVICE_CAPABILITY, &body);
    }
}

fn uuid_at_4(raw: &RawDescriptor<'_>) -> Result<[u8; 16], DescriptorError> {
    let b = raw.fields::<20>(DEVICE_CAPABILITY)?;
    let mut uuid = [0; 16];
    if let Some(src) = b.get(4..20) {
        uuid.copy_from_slice(src);
    }
    Ok(uuid)
}

/// A parsed BOS descriptor: the device's capabilities.
///
/// ```
/// use usbdf::descriptor::{BosDescriptor, DeviceCapability};
///
/// let bytes = [
///     5, 0x0F, 12, 0, 1, // BOS: 12 bytes, 1 capability
///     7, 0x10, 0x02, 0x02, 0, 0, 0, // USB 2.0 extension: LPM
/// ];
/// let bos = BosDescriptor::parse(&bytes)?;
/// assert!(bos.usb2_extension().is_some_and(|e| e.lpm()));
/// assert_eq!(bos.to_bytes(), bytes);
/// # Ok::<(), usbdf::descriptor::DescriptorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BosDescriptor {
    /// The capabilities, in order. `bNumDeviceCaps` is `capabilities.len()` when written.
    pub capabilities: Vec<DeviceCapability>,
    /// What the parser tolerated.
    pub anomalies: Vec<Anomaly>,
}

impl BosDescriptor {
    /// Size of the BOS header.
    pub const HEADER_LEN: usize = 5;

    /// Read `wTotalLength` from a BOS header: how many bytes to request.
    ///
    /// # Errors
    /// As [`parse`](Self::parse) for the 5-byte header.
    pub fn total_length(header: &[u8]) -> Result<u16, DescriptorError> {
        let (_, b) = checked::<5>(header, BOS)?;
        Ok(le16(b[2], b[3]))
    }

    /// Parse a whole BOS descriptor (`wTotalLength` bytes).
    ///
    /// Leniency (recorded in [`anomalies`](Self::anomalies)): a `bNumDeviceCaps` that does not
    /// match; descriptors other than device capabilities (skipped). Bytes after `wTotalLength`
    /// are ignored.
    ///
    /// # Errors
    /// Header errors as for a configuration ([`DescriptorError::WrongType`],
    /// [`DescriptorError::BadLength`] below 5 bytes, [`DescriptorError::Truncated`]),
    /// [`DescriptorError::TotalLengthMismatch`] if `wTotalLength` exceeds `buf`,
    /// [`DescriptorError::BadTotalLength`] if it is smaller than the header; inside, bad
    /// framing or a known capability shorter than its size.
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        let (header, b) = checked::<5>(buf, BOS)?;
        let header_len = header.as_bytes().len();
        let declared = usize::from(le16(b[2], b[3]));
        if declared < header_len {
            return Err(DescriptorError::BadTotalLength {
                declared,
                minimum: header_len,
            });
        }
        let data = buf
            .get(..declared)
            .ok_or(DescriptorError::TotalLengthMismatch {
                declared,
                available: buf.len(),
            })?;
        let mut bos = BosDescriptor {
            capabilities: Vec::new(),
            anomalies: Vec::new(),
        };
        for item in Descriptors::starting_at(data, header_len) {
            let raw = item?;
            if raw.descriptor_type() == DEVICE_CAPABILITY {
                bos.capabilities.push(DeviceCapability::from_raw(&raw)?);
            } else {
                bos.anomalies.push(Anomaly::UnexpectedDescriptor {
                    offset: raw.offset(),
                    descriptor_type: raw.descriptor_type(),
                });
            }
        }
        if usize::from(b[4]) != bos.capabilities.len() {
            bos.anomalies.push(Anomaly::CapabilityCountMismatch {
                declared: b[4],
                found: bos.capabilities.len(),
            });
        }
        Ok(bos)
    }

    /// The descriptor bytes, with `wTotalLength` and `bNumDeviceCaps` computed.
    ///
    /// # Panics
    /// If the result would exceed 65535 bytes or a capability 255 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let count = u8::try_from(self.capabilities.len()).unwrap_or(u8::MAX);
        let mut out = vec![5, BOS, 0, 0, count];
        for c in &self.capabilities {
            c.write_to(&mut out);
        }
        let total = u16::try_from(out.len())
            .unwrap_or_else(|_| panic!("BOS of {} bytes exceeds wTotalLength", out.len()));
        if let Some(field) = out.get_mut(2..4) {
            field.copy_from_slice(&total.to_le_bytes());
        }
        out
    }

    /// The USB 2.0 extension capability, if present.
    pub fn usb2_extension(&self) -> Option<&Usb2Extension> {
        self.capabilities.iter().find_map(|c| match c {
            DeviceCapability::Usb2Extension(e) => Some(e),
            _ => None,
        })
    }

    /// The SuperSpeed USB capability, if present.
    pub fn superspeed(&self) -> Option<&SuperSpeedCapability> {
        self.capabilities.iter().find_map(|c| match c {
            DeviceCapability::SuperSpeed(s) => Some(s),
            _ => None,
        })
    }

    /// The container ID, if present.
    pub fn container_id(&self) -> Option<&[u8; 16]> {
        self.capabilities.iter().find_map(|c| match c {
            DeviceCapability::ContainerId(id) => Some(id),
            _ => None,
        })
    }

    /// The platform capabilities with the given UUID (wire byte order).
    pub fn platform(&self, uuid: &[u8; 16]) -> impl Iterator<Item = &PlatformCapability> {
        let uuid = *uuid;
        self.capabilities.iter().filter_map(move |c| match c {
            DeviceCapability::Platform(p) if p.uuid == uuid => Some(p),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::fixtures::{BOS_FULL, BOS_SS, WEBUSB_UUID};

    #[test]
    fn usb2_and_superspeed() {
        let bos = BosDescriptor::parse(BOS_SS).unwrap();
        assert!(bos.anomalies.is_empty());
        assert!(bos.usb2_extension().unwrap().lpm());
        let ss = bos.superspeed().unwrap();
        assert_eq!(ss.speeds_supported, 0x000E);
        assert_eq!(
            (
                ss.functionality_support,
                ss.u1_exit_latency,
                ss.u2_exit_latency
            ),
            (1, 0x0A, 0x07FF)
        );
        assert!(!ss.ltm_capable());
        assert_eq!(bos.to_bytes(), BOS_SS);
    }

    #[test]
    fn container_platform_unknown() {
        let bos = BosDescriptor::parse(BOS_FULL).unwrap();
        assert!(bos.anomalies.is_empty(), "{:?}", bos.anomalies);
        assert_eq!(bos.capabilities.len(), 4);
        assert_eq!(bos.container_id().map(|id| id[0]), Some(0xA0));
        let webusb: Vec<_> = bos.platform(&WEBUSB_UUID).collect();
        assert_eq!(webusb.len(), 1);
        assert_eq!(webusb[0].data, vec![0x00, 0x01, 0x01, 0x01]);
        assert_eq!(
            bos.capabilities[3],
            DeviceCapability::Unknown {
                capability_type: 0x0A,
                data: vec![0, 0, 0, 0]
            }
        );
        assert_eq!(bos.to_bytes(), BOS_FULL);
    }

    #[test]
    fn prefixes_and_lengths() {
        for n in 0..BOS_FULL.len() {
            assert!(BosDescriptor::parse(&BOS_FULL[..n]).is_err());
        }
        let mut b = BOS_SS.to_vec();
        b[2] = 0xFF;
        assert!(matches!(
            BosDescriptor::parse(&b),
            Err(DescriptorError::TotalLengthMismatch { .. })
        ));
        b[2] = 4;
        b[3] = 0;
        assert!(matches!(
            BosDescriptor::parse(&b),
            Err(DescriptorError::BadTotalLength { .. })
        ));
        assert_eq!(BosDescriptor::total_length(BOS_SS), Ok(22));
    }

    #[test]
    fn lenient_count_and_stray_descriptor() {
        let mut b = BOS_SS.to_vec();
        b[4] = 5;
        b.extend([4, 0x24, 0, 0]);
        b[2] = b.len() as u8;
        let bos = BosDescriptor::parse(&b).unwrap();
        assert_eq!(
            bos.anomalies,
            vec![
                Anomaly::UnexpectedDescriptor {
                    offset: 22,
                    descriptor_type: 0x24
                },
                Anomaly::CapabilityCountMismatch {
                    declared: 5,
                    found: 2
                },
            ]
        );
    }

    #[test]
    fn short_known_capability_is_error() {
        let b = [5, 0x0F, 11, 0, 1, 6, 0x10, 0x02, 0x02, 0, 0];
        assert!(matches!(
            BosDescriptor::parse(&b),
            Err(DescriptorError::BadLength {
                offset: 5,
                b_length: 6,
                minimum: 7
            })
        ));
        let b = [5, 0x0F, 7, 0, 1, 2, 0x10];
        assert!(matches!(
            BosDescriptor::parse(&b),
            Err(DescriptorError::BadLength { minimum: 3, .. })
        ));
    }
}
