//! CDC functional descriptors and the finder that turns a configuration into an
//! [`AcmInfo`]: which interfaces and endpoints make up the ACM function.
//!
//! Pure code: bytes or parsed descriptors in, typed values out. Nothing here panics on
//! device bytes (every field is read through a checked length; see the fuzz target
//! `cdc_functional`).

use usbdf::descriptor::{
    class, ConfigurationDescriptor, DescriptorError, Descriptors, Direction, InterfaceDescriptor,
    RawOwned, TransferType, CS_INTERFACE,
};

/// `bDescriptorSubtype` of the header functional descriptor.
pub const SUBTYPE_HEADER: u8 = 0x00;
/// `bDescriptorSubtype` of the call management functional descriptor.
pub const SUBTYPE_CALL_MANAGEMENT: u8 = 0x01;
/// `bDescriptorSubtype` of the abstract control management (ACM) functional descriptor.
pub const SUBTYPE_ACM: u8 = 0x02;
/// `bDescriptorSubtype` of the union functional descriptor.
pub const SUBTYPE_UNION: u8 = 0x06;

/// `bInterfaceSubClass` of an abstract control model communication interface.
pub const SUBCLASS_ACM: u8 = 0x02;

/// The ACM functional descriptor's `bmCapabilities` (CDC PSTN 1.2, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AcmCapabilities(pub u8);

impl AcmCapabilities {
    /// D0: `SET_COMM_FEATURE` and friends.
    pub const COMM_FEATURE: u8 = 0x01;
    /// D1: `SET_LINE_CODING`, `GET_LINE_CODING`, `SET_CONTROL_LINE_STATE` and the
    /// `SERIAL_STATE` notification.
    pub const LINE: u8 = 0x02;
    /// D2: `SEND_BREAK`.
    pub const SEND_BREAK: u8 = 0x04;
    /// D3: the `NETWORK_CONNECTION` notification.
    pub const NETWORK_CONNECTION: u8 = 0x08;

    /// Whether the device says it supports line coding, control lines and serial state.
    pub fn line(self) -> bool {
        self.0 & Self::LINE != 0
    }

    /// Whether the device says it supports `SEND_BREAK`.
    pub fn send_break(self) -> bool {
        self.0 & Self::SEND_BREAK != 0
    }
}

/// The call management functional descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallManagement {
    /// `bmCapabilities`: D0 the device handles call management itself, D1 over the data
    /// interface.
    pub capabilities: u8,
    /// `bDataInterface`: the data interface call management uses.
    pub data_interface: u8,
}

/// The union functional descriptor: the communication interface and the interfaces it
/// controls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Union {
    /// `bControlInterface` (CDC 1.2: `bMasterInterface`).
    pub control_interface: u8,
    /// `bSubordinateInterface0..N`: never empty (the parser requires one).
    pub subordinate_interfaces: Vec<u8>,
}

impl Union {
    /// The first subordinate interface: for ACM, the data interface.
    pub fn data_interface(&self) -> u8 {
        self.subordinate_interfaces.first().copied().unwrap_or(0)
    }
}

/// The CDC functional descriptors of a communication interface, parsed.
///
/// The first descriptor of each known subtype wins; later duplicates and unknown subtypes
/// are ignored. Header and union are required, call management and ACM are optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CdcFunctional {
    /// `bcdCDC` from the header functional descriptor.
    pub cdc_version: u16,
    /// The call management functional descriptor, if present.
    pub call_management: Option<CallManagement>,
    /// `bmCapabilities` of the ACM functional descriptor, if present.
    pub acm: Option<AcmCapabilities>,
    /// The union functional descriptor.
    pub union: Union,
}

/// Why CDC functional descriptors could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FunctionalError {
    /// The raw bytes are not a run of descriptors.
    #[error("class-specific descriptors are malformed")]
    Framing(#[from] DescriptorError),
    /// A `CS_INTERFACE` descriptor with no `bDescriptorSubtype` byte.
    #[error("a class-specific interface descriptor has no subtype byte")]
    NoSubtype,
    /// A known functional descriptor shorter than its fields.
    #[error("functional descriptor {subtype:#04x} has bLength {length}, minimum is {minimum}")]
    Truncated {
        /// `bDescriptorSubtype`.
        subtype: u8,
        /// Its `bLength`.
        length: usize,
        /// The smallest valid `bLength`.
        minimum: usize,
    },
    /// No header functional descriptor.
    #[error("no CDC header functional descriptor")]
    MissingHeader,
    /// No union functional descriptor: the data interface is unknown.
    #[error("no CDC union functional descriptor")]
    MissingUnion,
}

impl CdcFunctional {
    /// Parse the class-specific descriptors of an interface (as the configuration parser
    /// kept them in [`InterfaceDescriptor::class_specific`]). Descriptors of other types
    /// than `CS_INTERFACE` (0x24) are skipped.
    ///
    /// # Errors
    /// [`FunctionalError`]: a known descriptor too short, or header/union missing.
    pub fn parse(descriptors: &[RawOwned]) -> Result<CdcFunctional, FunctionalError> {
        Self::from_bodies(
            descriptors
                .iter()
                .filter(|d| d.descriptor_type == CS_INTERFACE)
                .map(|d| Ok(d.body.as_slice())),
        )
    }

    /// Parse a run of raw descriptors (header included), e.g. the bytes between an
    /// interface descriptor and its first endpoint.
    ///
    /// # Errors
    /// [`FunctionalError::Framing`] when the bytes are not a run of descriptors; otherwise
    /// as [`parse`](Self::parse).
    pub fn parse_bytes(bytes: &[u8]) -> Result<CdcFunctional, FunctionalError> {
        Self::from_bodies(Descriptors::new(bytes).filter_map(|d| match d {
            Ok(d) if d.descriptor_type() == CS_INTERFACE => Some(Ok(d.body())),
            Ok(_) => None,
            Err(e) => Some(Err(FunctionalError::from(e))),
        }))
    }

    fn from_bodies<'a>(
        bodies: impl Iterator<Item = Result<&'a [u8], FunctionalError>>,
    ) -> Result<CdcFunctional, FunctionalError> {
        let mut cdc_version = None;
        let mut call_management = None;
        let mut acm = None;
        let mut union = None;
        for body in bodies {
            let body = body?;
            let &subtype = body.first().ok_or(FunctionalError::NoSubtype)?;
            let need = |minimum_body: usize| {
                if body.len() < minimum_body {
                    Err(FunctionalError::Truncated {
                        subtype,
                        length: body.len() + 2,
                        minimum: minimum_body + 2,
                    })
                } else {
                    Ok(())
                }
            };
            match subtype {
                SUBTYPE_HEADER if cdc_version.is_none() => {
                    need(3)?;
                    cdc_version = Some(u16::from_le_bytes([body[1], body[2]]));
                }
                SUBTYPE_CALL_MANAGEMENT if call_management.is_none() => {
                    need(3)?;
                    call_management = Some(CallManagement {
                        capabilities: body[1],
                        data_interface: body[2],
                    });
                }
                SUBTYPE_ACM if acm.is_none() => {
                    need(2)?;
                    acm = Some(AcmCapabilities(body[1]));
                }
                SUBTYPE_UNION if union.is_none() => {
                    need(3)?;
                    union = Some(Union {
                        control_interface: body[1],
                        subordinate_interfaces: body[2..].to_vec(),
                    });
                }
                _ => {}
            }
        }
        Ok(CdcFunctional {
            cdc_version: cdc_version.ok_or(FunctionalError::MissingHeader)?,
            call_management,
            acm,
            union: union.ok_or(FunctionalError::MissingUnion)?,
        })
    }
}

/// An endpoint the driver uses: address and max packet size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndpointInfo {
    /// `bEndpointAddress`.
    pub address: u8,
    /// `wMaxPacketSize` (bytes per packet).
    pub max_packet_size: usize,
}

/// Where an ACM function lives in a configuration: what [`find_cdc_acm`] found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcmInfo {
    /// The communication interface (class 2, subclass 2).
    pub comm_interface: u8,
    /// The data interface named by the union descriptor.
    pub data_interface: u8,
    /// The data interface's alternate setting that has the bulk endpoints (normally 0).
    pub data_alt_setting: u8,
    /// The interrupt IN notification endpoint of the communication interface, if it has one.
    pub notify_in: Option<EndpointInfo>,
    /// Bulk IN (device to host) data endpoint.
    pub data_in: EndpointInfo,
    /// Bulk OUT (host to device) data endpoint.
    pub data_out: EndpointInfo,
    /// The functional descriptors.
    pub functional: CdcFunctional,
}

/// Why [`find_cdc_acm`] found no usable ACM function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FindError {
    /// No interface with this number (alternate setting 0).
    #[error("no interface {0}")]
    NoSuchInterface(u8),
    /// The interface is not a CDC abstract control model interface (class 2, subclass 2).
    #[error("interface {interface} is class {class:#04x}/{subclass:#04x}, not CDC-ACM 0x02/0x02")]
    NotAcm {
        /// Interface number.
        interface: u8,
        /// `bInterfaceClass`.
        class: u8,
        /// `bInterfaceSubClass`.
        subclass: u8,
    },
    /// The configuration has no CDC-ACM communication interface at all.
    #[error("no CDC-ACM communication interface in the configuration")]
    NoAcmInterface,
    /// The functional descriptors are missing or malformed.
    #[error("interface {interface}: bad CDC functional descriptors")]
    Functional {
        /// The communication interface.
        interface: u8,
        /// What was wrong.
        #[source]
        source: FunctionalError,
    },
    /// The union names a data interface the configuration does not have.
    #[error("the union names data interface {0}, which does not exist")]
    NoDataInterface(u8),
    /// No alternate setting of the data interface has a bulk IN and a bulk OUT endpoint.
    #[error("data interface {0} has no bulk IN + bulk OUT pair")]
    NoDataEndpoints(u8),
}

/// Find the ACM function whose communication interface is `comm_interface`.
///
/// The union descriptor names the data interface; its first alternate setting with a bulk
/// IN and a bulk OUT endpoint supplies the data pipes. The notification endpoint is the
/// first interrupt IN endpoint of the communication interface (optional).
///
/// # Errors
/// A [`FindError`] saying what is missing.
pub fn find_cdc_acm_at(
    config: &ConfigurationDescriptor,
    comm_interface: u8,
) -> Result<AcmInfo, FindError> {
    let comm = config
        .setting(comm_interface, 0)
        .ok_or(FindError::NoSuchInterface(comm_interface))?;
    if comm.class != class::CDC || comm.subclass != SUBCLASS_ACM {
        return Err(FindError::NotAcm {
            interface: comm_interface,
            class: comm.class,
            subclass: comm.subclass,
        });
    }
    let functional =
        CdcFunctional::parse(&comm.class_specific).map_err(|source| FindError::Functional {
            interface: comm_interface,
            source,
        })?;
    let data_interface = functional.union.data_interface();
    let data = config
        .interface(data_interface)
        .ok_or(FindError::NoDataInterface(data_interface))?;
    let (data_alt_setting, data_in, data_out) = data
        .alt_settings
        .iter()
        .find_map(|s| {
            let data_in = bulk(s, Direction::In)?;
            let data_out = bulk(s, Direction::Out)?;
            Some((s.alternate_setting, data_in, data_out))
        })
        .ok_or(FindError::NoDataEndpoints(data_interface))?;
    let notify_in = comm
        .endpoints
        .iter()
        .find(|e| e.transfer_type() == TransferType::Interrupt && e.direction() == Direction::In)
        .map(|e| EndpointInfo {
            address: e.address,
            max_packet_size: usize::from(e.max_packet_size),
        });
    Ok(AcmInfo {
        comm_interface,
        data_interface,
        data_alt_setting,
        notify_in,
        data_in,
        data_out,
        functional,
    })
}

/// Find the first ACM function of a configuration (the first class 2/2 interface).
///
/// # Errors
/// [`FindError::NoAcmInterface`], or what [`find_cdc_acm_at`] says about the first one.
pub fn find_cdc_acm(config: &ConfigurationDescriptor) -> Result<AcmInfo, FindError> {
    let comm = config
        .settings()
        .find(|s| s.alternate_setting == 0 && s.class == class::CDC && s.subclass == SUBCLASS_ACM)
        .ok_or(FindError::NoAcmInterface)?;
    find_cdc_acm_at(config, comm.number)
}

fn bulk(setting: &InterfaceDescriptor, direction: Direction) -> Option<EndpointInfo> {
    setting
        .endpoints
        .iter()
        .find(|e| e.transfer_type() == TransferType::Bulk && e.direction() == direction)
        .map(|e| EndpointInfo {
            address: e.address,
            max_packet_size: usize::from(e.max_packet_size),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// f_acm's functional descriptors (Linux 6.1, interface 0, data interface 1).
    const F_ACM: &[u8] = &[
        5, 0x24, 0x00, 0x10, 0x01, // header, CDC 1.10
        5, 0x24, 0x01, 0x00, 0x01, // call management: data interface 1
        4, 0x24, 0x02, 0x02, // ACM: line coding + serial state
        5, 0x24, 0x06, 0x00, 0x01, // union: master 0, slave 1
    ];

    fn raw(bytes: &[u8]) -> Vec<RawOwned> {
        Descriptors::new(bytes)
            .map(|d| d.unwrap().to_raw_owned())
            .collect()
    }

    #[test]
    fn f_acm_vector() {
        let f = CdcFunctional::parse_bytes(F_ACM).unwrap();
        assert_eq!(f.cdc_version, 0x0110);
        assert_eq!(
            f.call_management,
            Some(CallManagement {
                capabilities: 0,
                data_interface: 1
            })
        );
        assert_eq!(f.acm, Some(AcmCapabilities(0x02)));
        assert!(f.acm.unwrap().line() && !f.acm.unwrap().send_break());
        assert_eq!(f.union.control_interface, 0);
        assert_eq!(f.union.data_interface(), 1);
        assert_eq!(CdcFunctional::parse(&raw(F_ACM)).unwrap(), f);
    }

    #[test]
    fn union_with_several_slaves_and_other_descriptors() {
        let bytes = [
            9, 0x21, 0, 0, 0, 0, 0, 0, 0, // not CS_INTERFACE: skipped
            5, 0x24, 0x00, 0x20, 0x01, // header 1.20
            6, 0x24, 0x06, 3, 4, 5, // union 3 -> 4, 5
            3, 0x24, 0x7f, // unknown subtype: skipped
            5, 0x24, 0x06, 9, 9, // a second union: ignored
        ];
        let f = CdcFunctional::parse_bytes(&bytes).unwrap();
        assert_eq!(f.union.subordinate_interfaces, vec![4, 5]);
        assert_eq!(f.union.data_interface(), 4);
        assert_eq!((f.call_management, f.acm), (None, None));
    }

    #[test]
    fn missing_union_and_header_are_typed() {
        let no_union = &F_ACM[..14];
        assert_eq!(
            CdcFunctional::parse_bytes(no_union),
            Err(FunctionalError::MissingUnion)
        );
        assert_eq!(
            CdcFunctional::parse_bytes(&F_ACM[5..]),
            Err(FunctionalError::MissingHeader)
        );
        assert_eq!(
            CdcFunctional::parse(&[]),
            Err(FunctionalError::MissingHeader)
        );
    }

    #[test]
    fn short_known_descriptors_are_typed() {
        let bytes = [5, 0x24, 0x00, 0x10, 0x01, 4, 0x24, 0x06, 0x00];
        assert_eq!(
            CdcFunctional::parse_bytes(&bytes),
            Err(FunctionalError::Truncated {
                subtype: SUBTYPE_UNION,
                length: 4,
                minimum: 5
            })
        );
        assert_eq!(
            CdcFunctional::parse(&[RawOwned::new(CS_INTERFACE, [])]),
            Err(FunctionalError::NoSubtype)
        );
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        for n in 0..F_ACM.len() {
            let r = CdcFunctional::parse_bytes(&F_ACM[..n]);
            assert!(r.is_err(), "prefix of {n} bytes parsed: {r:?}");
        }
        // Shortening any one descriptor's body (bLength adjusted) is a typed error too.
        let mut offset = 0;
        while offset < F_ACM.len() {
            let len = usize::from(F_ACM[offset]);
            for cut in 1..len - 2 {
                let mut b = F_ACM.to_vec();
                b.drain(offset + len - cut..offset + len);
                b[offset] = (len - cut) as u8;
                assert!(
                    CdcFunctional::parse_bytes(&b).is_err(),
                    "descriptor at {offset} cut by {cut}"
                );
            }
            offset += len;
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = CdcFunctional::parse_bytes(&bytes);
        }

        #[test]
        fn random_functional_bodies_never_panic(
            bodies in proptest::collection::vec(
                (prop_oneof![Just(0x24u8), any::<u8>()],
                 proptest::collection::vec(prop_oneof![0u8..8, any::<u8>()], 0..8)),
                0..8)
        ) {
            let raws: Vec<RawOwned> =
                bodies.into_iter().map(|(t, b)| RawOwned::new(t, b)).collect();
            if let Ok(f) = CdcFunctional::parse(&raws) {
                prop_assert!(!f.union.subordinate_interfaces.is_empty());
            }
        }

        #[test]
        fn valid_descriptors_round_trip(
            version in any::<u16>(), caps in any::<u8>(), master in any::<u8>(),
            slaves in proptest::collection::vec(any::<u8>(), 1..4),
        ) {
            let [lo, hi] = version.to_le_bytes();
            let mut b = vec![5, 0x24, 0, lo, hi, 4, 0x24, 2, caps];
            b.extend([4 + slaves.len() as u8, 0x24, 6, master]);
            b.extend(&slaves);
            let f = CdcFunctional::parse_bytes(&b).unwrap();
            prop_assert_eq!(f.cdc_version, version);
            prop_assert_eq!(f.acm, Some(AcmCapabilities(caps)));
            prop_assert_eq!(f.union.control_interface, master);
            prop_assert_eq!(f.union.subordinate_interfaces, slaves);
        }
    }

    fn acm_config(functional: &[u8]) -> ConfigurationDescriptor {
        use usbdf::descriptor::{ConfigBuilder, EndpointDescriptor};
        let mut b = ConfigBuilder::new(1).interface(0, class::CDC, 2, 1);
        for d in Descriptors::new(functional) {
            let d = d.unwrap();
            b = b.class_specific(d.descriptor_type(), d.body().to_vec());
        }
        b.endpoint(EndpointDescriptor::interrupt(0x83, 16, 9))
            .interface(1, class::CDC_DATA, 0, 0)
            .endpoint(EndpointDescriptor::bulk(0x82, 512))
            .endpoint(EndpointDescriptor::bulk(0x02, 512))
            .build()
    }

    #[test]
    fn finder_on_f_acm_layout() {
        let config = acm_config(F_ACM);
        let info = find_cdc_acm(&config).unwrap();
        assert_eq!((info.comm_interface, info.data_interface), (0, 1));
        assert_eq!(info.notify_in.map(|e| e.address), Some(0x83));
        assert_eq!((info.data_in.address, info.data_out.address), (0x82, 0x02));
        assert_eq!(info.data_in.max_packet_size, 512);
        assert_eq!(find_cdc_acm_at(&config, 0), Ok(info));
        assert!(matches!(
            find_cdc_acm_at(&config, 1),
            Err(FindError::NotAcm { interface: 1, .. })
        ));
        assert_eq!(
            find_cdc_acm_at(&config, 7),
            Err(FindError::NoSuchInterface(7))
        );
    }

    #[test]
    fn finder_errors() {
        let no_union = acm_config(&F_ACM[..14]);
        assert_eq!(
            find_cdc_acm(&no_union),
            Err(FindError::Functional {
                interface: 0,
                source: FunctionalError::MissingUnion
            })
        );
        let mut wrong = F_ACM.to_vec();
        *wrong.last_mut().unwrap() = 5;
        assert_eq!(
            find_cdc_acm(&acm_config(&wrong)),
            Err(FindError::NoDataInterface(5))
        );
        let mut to_comm = F_ACM.to_vec();
        *to_comm.last_mut().unwrap() = 0; // the union names the comm interface itself
        assert_eq!(
            find_cdc_acm(&acm_config(&to_comm)),
            Err(FindError::NoDataEndpoints(0))
        );
        let empty = usbdf::descriptor::ConfigBuilder::new(1)
            .interface(0, 0xff, 0, 0)
            .build();
        assert_eq!(find_cdc_acm(&empty), Err(FindError::NoAcmInterface));
    }
}
