//! Parsing configuration descriptors, strictly or leniently.

use std::num::NonZeroU8;

use super::iter::{checked, le16, Descriptors, RawDescriptor};
use super::{
    Anomaly, ConfigurationDescriptor, DescriptorError, EndpointDescriptor, InterfaceAssociation,
    InterfaceDescriptor, InterfaceSettings, RawOwned, SsEndpointCompanion, CONFIGURATION, ENDPOINT,
    INTERFACE, INTERFACE_ASSOCIATION, SS_ENDPOINT_COMPANION,
};

impl ConfigurationDescriptor {
    /// Read `wTotalLength` from a configuration descriptor header: how many bytes to request
    /// to get the whole configuration.
    ///
    /// # Errors
    /// As [`parse`](Self::parse) for the 9-byte header.
    pub fn total_length(header: &[u8]) -> Result<u16, DescriptorError> {
        let (_, b) = checked::<9>(header, CONFIGURATION)?;
        Ok(le16(b[2], b[3]))
    }

    /// Parse a whole configuration descriptor (the `wTotalLength` bytes that
    /// `GET_DESCRIPTOR(CONFIGURATION)` returns).
    ///
    /// Structure: an interface descriptor starts an alternate setting (grouped by
    /// `bInterfaceNumber` into [`InterfaceSettings`]); endpoint descriptors belong to the
    /// interface descriptor before them; a SuperSpeed companion belongs to the endpoint before
    /// it; any other descriptor is kept raw with what precedes it (after an endpoint: the
    /// endpoint's `extra`; after an interface: its `class_specific`; before any interface: the
    /// configuration's `extra`).
    ///
    /// Leniency (recorded in [`anomalies`](Self::anomalies), not errors): a `bNumInterfaces` or
    /// `bNumEndpoints` that does not match what follows; an endpoint before any interface (kept
    /// raw in `extra`); a companion not directly owned by an endpoint (kept raw). Bytes after
    /// `wTotalLength` are ignored (they may be the next configuration). A header `bLength`
    /// above 9 is accepted and its extra bytes ignored (likewise for interface, IAD and
    /// companion descriptors).
    ///
    /// # Errors
    /// - [`DescriptorError::WrongType`], [`DescriptorError::BadLength`],
    ///   [`DescriptorError::Truncated`]: the header is not a configuration descriptor of at
    ///   least 9 bytes.
    /// - [`DescriptorError::TotalLengthMismatch`]: `wTotalLength` is larger than `buf` (only
    ///   the header was read?).
    /// - [`DescriptorError::BadTotalLength`]: `wTotalLength` is smaller than the header.
    /// - From inside: a `bLength` of 0 or 1, a descriptor running past `wTotalLength`, or an
    ///   interface, endpoint, IAD or companion descriptor shorter than its type's size.
    ///
    /// ```
    /// use usbdf::descriptor::{ConfigurationDescriptor, TransferType};
    ///
    /// let bytes = [
    ///     9, 2, 32, 0, 1, 1, 0, 0x80, 50, // configuration 1, 100 mA
    ///     9, 4, 0, 0, 2, 0xFF, 0, 0, 0, // interface 0: vendor class, 2 endpoints
    ///     7, 5, 0x81, 2, 0x00, 0x02, 0, // bulk IN 1, 512 bytes
    ///     7, 5, 0x01, 2, 0x00, 0x02, 0, // bulk OUT 1, 512 bytes
    /// ];
    /// let config = ConfigurationDescriptor::parse(&bytes)?;
    /// assert_eq!(config.max_power_ma(), 100);
    /// let setting = config.setting(0, 0).unwrap();
    /// assert_eq!(setting.endpoints[1].transfer_type(), TransferType::Bulk);
    /// assert_eq!(config.to_bytes(), bytes);
    /// # Ok::<(), usbdf::descriptor::DescriptorError>(())
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        Self::parse_with(buf, Mode::Strict)
    }

    /// Parse as much of a damaged configuration descriptor as can be read, as Linux does.
    ///
    /// Like [`parse`](Self::parse), but instead of failing it records an [`Anomaly`] and goes
    /// on: a `wTotalLength` larger than `buf` ([`Anomaly::ShortData`]: parse what is there);
    /// bad framing inside ([`Anomaly::StoppedEarly`]: keep what came before); an interface,
    /// endpoint, IAD or companion descriptor too short for its type
    /// ([`Anomaly::SkippedDescriptor`]: kept raw where it appeared). On well-formed input it
    /// returns the same value as `parse`.
    ///
    /// # Errors
    /// Only for a header that is not a configuration descriptor of at least 9 bytes, or a
    /// `wTotalLength` smaller than it ([`DescriptorError::BadTotalLength`]).
    ///
    /// ```
    /// use usbdf::descriptor::{Anomaly, ConfigurationDescriptor};
    ///
    /// // wTotalLength says 32 but the endpoints were cut off.
    /// let bytes = [9, 2, 32, 0, 1, 1, 0, 0x80, 50, 9, 4, 0, 0, 2, 0xFF, 0, 0, 0];
    /// assert!(ConfigurationDescriptor::parse(&bytes).is_err());
    /// let config = ConfigurationDescriptor::parse_lenient(&bytes)?;
    /// assert!(config.setting(0, 0).is_some());
    /// assert!(config.anomalies.contains(&Anomaly::ShortData { declared: 32, available: 18 }));
    /// # Ok::<(), usbdf::descriptor::DescriptorError>(())
    /// ```
    pub fn parse_lenient(buf: &[u8]) -> Result<Self, DescriptorError> {
        Self::parse_with(buf, Mode::Lenient)
    }

    fn parse_with(buf: &[u8], mode: Mode) -> Result<Self, DescriptorError> {
        let (header, b) = checked::<9>(buf, CONFIGURATION)?;
        let header_len = header.as_bytes().len();
        let declared = usize::from(le16(b[2], b[3]));
        if declared < header_len {
            return Err(DescriptorError::BadTotalLength {
                declared,
                minimum: header_len,
            });
        }
        let mut config = ConfigurationDescriptor {
            value: b[5],
            string_index: NonZeroU8::new(b[6]),
            attributes: b[7],
            max_power: b[8],
            interfaces: Vec::new(),
            associations: Vec::new(),
            extra: Vec::new(),
            anomalies: Vec::new(),
        };
        let data = match (buf.get(..declared), mode) {
            (Some(data), _) => data,
            (None, Mode::Lenient) => {
                config.anomalies.push(Anomaly::ShortData {
                    declared,
                    available: buf.len(),
                });
                buf
            }
            (None, Mode::Strict) => {
                return Err(DescriptorError::TotalLengthMismatch {
                    declared,
                    available: buf.len(),
                })
            }
        };

        let mut walker = Walker {
            current: None,
            after_endpoint: false,
        };
        for item in Descriptors::starting_at(data, header_len) {
            let raw = match (item, mode) {
                (Ok(raw), _) => raw,
                (Err(error), Mode::Lenient) => {
                    config.anomalies.push(Anomaly::StoppedEarly { error });
                    break;
                }
                (Err(error), Mode::Strict) => return Err(error),
            };
            match (walker.structural(&mut config, &raw), mode) {
                (Ok(true), _) => continue,
                (Ok(false), _) => {}
                (Err(error), Mode::Lenient) => {
                    config.anomalies.push(Anomaly::SkippedDescriptor { error });
                }
                (Err(error), Mode::Strict) => return Err(error),
            }
            walker.keep_raw(&mut config, raw.to_raw_owned());
        }
        if let Some(done) = walker.current.take() {
            config.finish_setting(done);
        }
        config.order_associations();
        if usize::from(b[4]) != config.interfaces.len() {
            config.anomalies.push(Anomaly::InterfaceCountMismatch {
                declared: b[4],
                found: config.interfaces.len(),
            });
        }
        Ok(config)
    }

    /// File a finished alternate setting under its interface number.
    fn finish_setting(&mut self, (setting, declared_endpoints): (InterfaceDescriptor, u8)) {
        if usize::from(declared_endpoints) != setting.endpoints.len() {
            self.anomalies.push(Anomaly::EndpointCountMismatch {
                interface: setting.number,
                alternate_setting: setting.alternate_setting,
                declared: declared_endpoints,
                found: setting.endpoints.len(),
            });
        }
        match self
            .interfaces
            .iter_mut()
            .find(|i| i.number == setting.number)
        {
            Some(group) => group.alt_settings.push(setting),
            None => self.interfaces.push(InterfaceSettings {
                number: setting.number,
                alt_settings: vec![setting],
            }),
        }
    }
}

/// Whether a parse stops at the first problem or records it and goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Lenient,
}

/// Where the configuration parser is: the setting being filled (with its `bNumEndpoints`),
/// and whether the last structural descriptor was one of its endpoints.
struct Walker {
    current: Option<(InterfaceDescriptor, u8)>,
    after_endpoint: bool,
}

impl Walker {
    /// Take a structural descriptor (interface, endpoint, IAD, companion) into `config`.
    /// Returns `Ok(false)` if `raw` is to be kept raw instead.
    fn structural(
        &mut self,
        config: &mut ConfigurationDescriptor,
        raw: &RawDescriptor<'_>,
    ) -> Result<bool, DescriptorError> {
        match raw.descriptor_type() {
            INTERFACE => {
                let setting = InterfaceDescriptor::from_raw(raw)?;
                if let Some(done) = self.current.replace(setting) {
                    config.finish_setting(done);
                }
                self.after_endpoint = false;
            }
            ENDPOINT => {
                let ep = EndpointDescriptor::from_raw(raw)?;
                let Some((setting, _)) = self.current.as_mut() else {
                    config.anomalies.push(Anomaly::EndpointOutsideInterface {
                        offset: raw.offset(),
                    });
                    return Ok(false);
                };
                setting.endpoints.push(ep);
                self.after_endpoint = true;
            }
            INTERFACE_ASSOCIATION => {
                config
                    .associations
                    .push(InterfaceAssociation::from_raw(raw)?);
            }
            SS_ENDPOINT_COMPANION => {
                let companion = SsEndpointCompanion::from_raw(raw)?;
                let owner = self
                    .current
                    .as_mut()
                    .filter(|_| self.after_endpoint)
                    .and_then(|(setting, _)| setting.endpoints.last_mut())
                    .filter(|ep| ep.companion.is_none());
                let Some(ep) = owner else {
                    config.anomalies.push(Anomaly::MisplacedCompanion {
                        offset: raw.offset(),
                    });
                    return Ok(false);
                };
                ep.companion = Some(companion);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Keep a descriptor raw with what precedes it: the last endpoint, else the current
    /// setting, else the configuration.
    fn keep_raw(&mut self, config: &mut ConfigurationDescriptor, owned: RawOwned) {
        match self.current.as_mut() {
            Some((setting, _)) => match setting.endpoints.last_mut() {
                Some(ep) if self.after_endpoint => ep.extra.push(owned),
                _ => setting.class_specific.push(owned),
            },
            None => config.extra.push(owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::fixtures::*;

    #[test]
    fn every_prefix_never_panics() {
        for fixture in ALL_CONFIGS {
            for n in 0..fixture.len() {
                // wTotalLength is always larger than a strict prefix: must be an error.
                assert!(
                    ConfigurationDescriptor::parse(&fixture[..n]).is_err(),
                    "prefix {n}"
                );
            }
        }
    }

    #[test]
    fn header_only_reports_total_length() {
        assert_eq!(
            ConfigurationDescriptor::total_length(&CONFIG_CDC_ACM[..9]),
            Ok(75)
        );
        assert_eq!(
            ConfigurationDescriptor::parse(&CONFIG_CDC_ACM[..9]),
            Err(DescriptorError::TotalLengthMismatch {
                declared: 75,
                available: 9
            })
        );
    }

    #[test]
    fn total_length_smaller_than_data_parses_declared_part() {
        // Declare only header + interface; the endpoints after are ignored.
        let mut b = CONFIG_SOURCESINK.to_vec();
        b[2] = 18;
        let c = ConfigurationDescriptor::parse(&b).unwrap();
        assert!(c.setting(0, 0).unwrap().endpoints.is_empty());
        assert!(c.anomalies.contains(&Anomaly::EndpointCountMismatch {
            interface: 0,
            alternate_setting: 0,
            declared: 2,
            found: 0
        }));
        // Trailing bytes after a correct wTotalLength (e.g. the next configuration) are ignored.
        let mut b = CONFIG_SOURCESINK.to_vec();
        b.extend_from_slice(CONFIG_HID_MOUSE);
        assert_eq!(
            ConfigurationDescriptor::parse(&b).unwrap().to_bytes(),
            CONFIG_SOURCESINK
        );
    }

    #[test]
    fn total_length_errors() {
        let mut b = CONFIG_SOURCESINK.to_vec();
        b[2] = 33;
        assert_eq!(
            ConfigurationDescriptor::parse(&b),
            Err(DescriptorError::TotalLengthMismatch {
                declared: 33,
                available: 32
            })
        );
        b[2] = 0xFF;
        b[3] = 0xFF; // huge
        assert_eq!(
            ConfigurationDescriptor::parse(&b),
            Err(DescriptorError::TotalLengthMismatch {
                declared: 65535,
                available: 32
            })
        );
        b[2] = 8;
        b[3] = 0;
        assert_eq!(
            ConfigurationDescriptor::parse(&b),
            Err(DescriptorError::BadTotalLength {
                declared: 8,
                minimum: 9
            })
        );
    }

    #[test]
    fn zero_and_one_blength_inside_are_errors() {
        for bad in [0u8, 1] {
            let mut b = CONFIG_SOURCESINK.to_vec();
            b[18] = bad; // first endpoint
            assert_eq!(
                ConfigurationDescriptor::parse(&b),
                Err(DescriptorError::BadLength {
                    offset: 18,
                    b_length: bad,
                    minimum: 2
                })
            );
        }
    }

    #[test]
    fn short_typed_descriptors_are_errors() {
        let mut b = CONFIG_SOURCESINK.to_vec();
        b[18] = 6; // endpoint with bLength 6: framing then continues at a bogus offset
        assert!(matches!(
            ConfigurationDescriptor::parse(&b),
            Err(DescriptorError::BadLength {
                offset: 18,
                b_length: 6,
                minimum: 7
            })
        ));
    }

    #[test]
    fn endpoint_before_interface_is_kept_raw() {
        let mut b = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
        b.extend([7, 5, 0x81, 2, 0x40, 0, 0]);
        b.extend([9, 4, 0, 0, 0, 0xFF, 0, 0, 0]);
        b[2] = b.len() as u8;
        let c = ConfigurationDescriptor::parse(&b).unwrap();
        assert_eq!(
            c.anomalies,
            vec![Anomaly::EndpointOutsideInterface { offset: 9 }]
        );
        assert_eq!(c.extra, vec![RawOwned::new(5, [0x81, 2, 0x40, 0, 0])]);
        assert!(c.find_endpoint(0x81).is_none());
        assert_eq!(c.to_bytes(), b);
    }

    #[test]
    fn count_mismatches_are_recorded() {
        let mut b = CONFIG_SOURCESINK.to_vec();
        b[4] = 3; // bNumInterfaces
        b[13] = 1; // bNumEndpoints
        let c = ConfigurationDescriptor::parse(&b).unwrap();
        assert_eq!(
            c.anomalies,
            vec![
                Anomaly::EndpointCountMismatch {
                    interface: 0,
                    alternate_setting: 0,
                    declared: 1,
                    found: 2
                },
                Anomaly::InterfaceCountMismatch {
                    declared: 3,
                    found: 1
                },
            ]
        );
        // to_bytes writes the true counts.
        assert_eq!(c.to_bytes(), CONFIG_SOURCESINK);
    }

    #[test]
    fn misplaced_companion() {
        let mut b = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
        b.extend([9, 4, 0, 0, 1, 0xFF, 0, 0, 0]);
        b.extend([6, 0x30, 0, 0, 0, 0]); // before any endpoint
        b.extend([7, 5, 0x81, 2, 0x00, 4, 0]);
        b.extend([6, 0x30, 3, 0, 0, 0]);
        b.extend([6, 0x30, 4, 0, 0, 0]); // second companion
        b[2] = b.len() as u8;
        let c = ConfigurationDescriptor::parse(&b).unwrap();
        assert_eq!(
            c.anomalies,
            vec![
                Anomaly::MisplacedCompanion { offset: 18 },
                Anomaly::MisplacedCompanion { offset: 37 }
            ]
        );
        let s = c.setting(0, 0).unwrap();
        assert_eq!(s.class_specific.len(), 1);
        assert_eq!(s.endpoints[0].companion.map(|c| c.max_burst), Some(3));
        assert_eq!(s.endpoints[0].extra.len(), 1);
        assert_eq!(c.to_bytes(), b);
    }

    #[test]
    fn lenient_equals_strict_on_good_input() {
        for fixture in ALL_CONFIGS {
            assert_eq!(
                ConfigurationDescriptor::parse_lenient(fixture),
                ConfigurationDescriptor::parse(fixture)
            );
        }
    }

    #[test]
    fn lenient_short_data() {
        // Cut cleanly after the ACM functional descriptor.
        let c = ConfigurationDescriptor::parse_lenient(&CONFIG_CDC_ACM[..40]).unwrap();
        assert_eq!(c.setting(0, 0).unwrap().class_specific.len(), 3);
        assert!(c.anomalies.contains(&Anomaly::ShortData {
            declared: 75,
            available: 40
        }));
        // Cut in the middle of a descriptor.
        let c = ConfigurationDescriptor::parse_lenient(&CONFIG_CDC_ACM[..38]).unwrap();
        assert!(c.anomalies.contains(&Anomaly::StoppedEarly {
            error: DescriptorError::Truncated {
                offset: 36,
                needed: 4,
                available: 2
            }
        }));
        for n in 0..CONFIG_CDC_ACM.len() {
            let lenient = ConfigurationDescriptor::parse_lenient(&CONFIG_CDC_ACM[..n]);
            assert_eq!(lenient.is_ok(), n >= 9, "prefix {n}");
        }
    }

    #[test]
    fn lenient_zero_length_and_short_endpoint() {
        let mut b = CONFIG_SOURCESINK.to_vec();
        b[25] = 0; // second endpoint's bLength
        let c = ConfigurationDescriptor::parse_lenient(&b).unwrap();
        assert_eq!(c.setting(0, 0).unwrap().endpoints.len(), 1);
        assert!(c.anomalies.contains(&Anomaly::StoppedEarly {
            error: DescriptorError::BadLength {
                offset: 25,
                b_length: 0,
                minimum: 2
            }
        }));

        let mut b = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 50];
        b.extend([9, 4, 0, 0, 2, 0xFF, 0, 0, 0]);
        b.extend([6, 5, 0x81, 2, 0x40, 0]); // endpoint one byte short
        b.extend([7, 5, 0x01, 2, 0x40, 0, 0]);
        b[2] = b.len() as u8;
        assert!(ConfigurationDescriptor::parse(&b).is_err());
        let c = ConfigurationDescriptor::parse_lenient(&b).unwrap();
        let s = c.setting(0, 0).unwrap();
        assert_eq!(s.endpoints, vec![EndpointDescriptor::bulk(0x01, 64)]);
        assert_eq!(s.class_specific, vec![RawOwned::new(5, [0x81, 2, 0x40, 0])]);
        assert!(matches!(
            c.anomalies.first(),
            Some(Anomaly::SkippedDescriptor {
                error: DescriptorError::BadLength { offset: 18, .. }
            })
        ));
    }

    #[test]
    fn wrong_type_and_short_header() {
        assert!(matches!(
            ConfigurationDescriptor::parse(CONFIG_CDC_ACM.get(9..).unwrap()),
            Err(DescriptorError::WrongType {
                expected: 2,
                found: 0x0B,
                ..
            })
        ));
        assert!(matches!(
            ConfigurationDescriptor::parse(&[8, 2, 8, 0, 0, 1, 0, 0x80]),
            Err(DescriptorError::BadLength {
                b_length: 8,
                minimum: 9,
                ..
            })
        ));
    }
}
