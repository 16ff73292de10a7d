//! Endpoint descriptor (type 5) and SuperSpeed endpoint companion (type 0x30).

use super::iter::{checked, le16, write_descriptor, RawDescriptor};
use super::{DescriptorError, RawOwned, ENDPOINT, SS_ENDPOINT_COMPANION};

/// Direction of an endpoint, from bit 7 of its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host to device (bit 7 clear).
    Out,
    /// Device to host (bit 7 set).
    In,
}

impl Direction {
    /// The direction of endpoint `address`.
    pub fn from_address(address: u8) -> Self {
        if address & 0x80 != 0 {
            Direction::In
        } else {
            Direction::Out
        }
    }
}

impl From<Direction> for nusb::transfer::Direction {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Out => nusb::transfer::Direction::Out,
            Direction::In => nusb::transfer::Direction::In,
        }
    }
}

/// Transfer type of an endpoint, from bits 1..0 of `bmAttributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferType {
    /// Control.
    Control,
    /// Isochronous.
    Isochronous,
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
}

impl TransferType {
    /// The transfer type encoded in `bmAttributes`.
    pub fn from_attributes(attributes: u8) -> Self {
        match attributes & 0x03 {
            0 => TransferType::Control,
            1 => TransferType::Isochronous,
            2 => TransferType::Bulk,
            _ => TransferType::Interrupt,
        }
    }

    /// The `bmAttributes` bits for this transfer type.
    pub fn attribute_bits(self) -> u8 {
        match self {
            TransferType::Control => 0,
            TransferType::Isochronous => 1,
            TransferType::Bulk => 2,
            TransferType::Interrupt => 3,
        }
    }
}

impl From<TransferType> for nusb::descriptors::TransferType {
    fn from(t: TransferType) -> Self {
        match t {
            TransferType::Control => nusb::descriptors::TransferType::Control,
            TransferType::Isochronous => nusb::descriptors::TransferType::Isochronous,
            TransferType::Bulk => nusb::descriptors::TransferType::Bulk,
            TransferType::Interrupt => nusb::descriptors::TransferType::Interrupt,
        }
    }
}

/// A parsed endpoint descriptor, with what follows it in a configuration.
///
/// `wMaxPacketSize` is split into [`max_packet_size`](Self::max_packet_size) (bits 10..0) and
/// [`additional_transactions`](Self::additional_transactions) (bits 12..11); its reserved bits
/// 15..13 are dropped.
///
/// ```
/// use usbdf::descriptor::{Direction, EndpointDescriptor, TransferType};
///
/// let ep = EndpointDescriptor::parse(&[7, 5, 0x81, 0x02, 0x00, 0x02, 0])?;
/// assert_eq!((ep.number(), ep.direction()), (1, Direction::In));
/// assert_eq!((ep.transfer_type(), ep.max_packet_size), (TransferType::Bulk, 512));
/// assert_eq!(ep, EndpointDescriptor::bulk(0x81, 512));
/// # Ok::<(), usbdf::descriptor::DescriptorError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointDescriptor {
    /// `bEndpointAddress`: number in bits 3..0, direction in bit 7.
    pub address: u8,
    /// `bmAttributes`: transfer type in bits 1..0; for isochronous, sync and usage types.
    pub attributes: u8,
    /// Bits 10..0 of `wMaxPacketSize`: the maximum packet size in bytes.
    pub max_packet_size: u16,
    /// Bits 12..11 of `wMaxPacketSize`: extra transactions per microframe for high-speed
    /// isochronous and interrupt endpoints (0 to 2; 3 is reserved but kept as read).
    pub additional_transactions: u8,
    /// `bInterval`: polling interval, in frames or microframes depending on speed and type.
    pub interval: u8,
    /// Bytes of the endpoint descriptor past the standard 7 (audio class 1.0 endpoints put
    /// `bRefresh` and `bSynchAddress` here). Usually empty.
    pub trailing_fields: Vec<u8>,
    /// The SuperSpeed endpoint companion that followed, if any.
    pub companion: Option<SsEndpointCompanion>,
    /// Other descriptors that followed the endpoint, before the next endpoint or interface
    /// (class-specific endpoint descriptors, e.g. `CS_ENDPOINT` for audio).
    pub extra: Vec<RawOwned>,
}

impl EndpointDescriptor {
    /// Size of a standard endpoint descriptor.
    pub const LEN: usize = 7;

    /// An endpoint with the given address, transfer type, packet size (masked to 11 bits) and
    /// interval; no additional transactions, companion or extra descriptors.
    pub fn new(
        address: u8,
        transfer_type: TransferType,
        max_packet_size: u16,
        interval: u8,
    ) -> Self {
        EndpointDescriptor {
            address,
            attributes: transfer_type.attribute_bits(),
            max_packet_size: max_packet_size & 0x07FF,
            additional_transactions: 0,
            interval,
            trailing_fields: Vec::new(),
            companion: None,
            extra: Vec::new(),
        }
    }

    /// A bulk endpoint (`bInterval` 0).
    pub fn bulk(address: u8, max_packet_size: u16) -> Self {
        Self::new(address, TransferType::Bulk, max_packet_size, 0)
    }

    /// An interrupt endpoint.
    pub fn interrupt(address: u8, max_packet_size: u16, interval: u8) -> Self {
        Self::new(address, TransferType::Interrupt, max_packet_size, interval)
    }

    /// An isochronous endpoint (asynchronous sync type and data usage: attribute bits 0).
    pub fn isochronous(address: u8, max_packet_size: u16, interval: u8) -> Self {
        Self::new(
            address,
            TransferType::Isochronous,
            max_packet_size,
            interval,
        )
    }

    /// Parse a standalone endpoint descriptor from the start of `buf` (no companion, no extra).
    ///
    /// # Errors
    /// [`DescriptorError::WrongType`] unless the type is 5, [`DescriptorError::BadLength`] if
    /// `bLength < 7`, [`DescriptorError::Truncated`] if `buf` is shorter than `bLength`.
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        let (raw, _) = checked::<7>(buf, ENDPOINT)?;
        Self::from_raw(&raw)
    }

    /// Parse from a checked view (type must be 5, `bLength >= 7`).
    pub(crate) fn from_raw(raw: &RawDescriptor<'_>) -> Result<Self, DescriptorError> {
        let b = raw.fields::<7>(ENDPOINT)?;
        let w_max_packet_size = le16(b[4], b[5]);
        Ok(EndpointDescriptor {
            address: b[2],
            attributes: b[3],
            max_packet_size: w_max_packet_size & 0x07FF,
            additional_transactions: ((w_max_packet_size >> 11) & 0x03) as u8,
            interval: b[6],
            trailing_fields: raw.as_bytes().get(7..).unwrap_or(&[]).to_vec(),
            companion: None,
            extra: Vec::new(),
        })
    }

    /// The endpoint number (bits 3..0 of the address).
    pub fn number(&self) -> u8 {
        self.address & 0x0F
    }

    /// The direction (bit 7 of the address).
    pub fn direction(&self) -> Direction {
        Direction::from_address(self.address)
    }

    /// The transfer type (bits 1..0 of `bmAttributes`).
    pub fn transfer_type(&self) -> TransferType {
        TransferType::from_attributes(self.attributes)
    }

    /// The `wMaxPacketSize` field as written.
    pub fn max_packet_size_raw(&self) -> u16 {
        (self.max_packet_size & 0x07FF) | (u16::from(self.additional_transactions & 0x03) << 11)
    }

    /// Transactions per microframe for high-speed periodic endpoints: 1 to 3 (4 if the
    /// reserved value 3 was read).
    pub fn packets_per_microframe(&self) -> u8 {
        (self.additional_transactions & 0x03) + 1
    }

    /// Set the companion (for SuperSpeed models), returning the endpoint.
    pub fn with_companion(mut self, companion: SsEndpointCompanion) -> Self {
        self.companion = Some(companion);
        self
    }

    /// Append this endpoint, its companion and its extra descriptors to `out`.
    ///
    /// # Panics
    /// If `trailing_fields` is longer than 248 bytes or an extra descriptor's body longer than
    /// 253 bytes (parsed values never are).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let [lo, hi] = self.max_packet_size_raw().to_le_bytes();
        let mut body = vec![self.address, self.attributes, lo, hi, self.interval];
        body.extend_from_slice(&self.trailing_fields);
        write_descriptor(out, ENDPOINT, &body);
        if let Some(c) = &self.companion {
            out.extend_from_slice(&c.to_bytes());
        }
        for raw in &self.extra {
            write_descriptor(out, raw.descriptor_type, &raw.body);
        }
    }
}

/// A SuperSpeed endpoint companion descriptor (type 0x30): burst and stream capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SsEndpointCompanion {
    /// `bMaxBurst`: packets per burst minus one (0 to 15).
    pub max_burst: u8,
    /// `bmAttributes`: for bulk, max streams in bits 4..0; for isochronous, `Mult` in bits 1..0.
    pub attributes: u8,
    /// `wBytesPerInterval`: for periodic endpoints, bytes moved per service interval.
    pub bytes_per_interval: u16,
}

impl SsEndpointCompanion {
    /// Size of a companion descriptor.
    pub const LEN: usize = 6;

    /// Parse a companion descriptor from the start of `buf`.
    ///
    /// # Errors
    /// As [`EndpointDescriptor::parse`], with type 0x30 and a minimum `bLength` of 6.
    pub fn parse(buf: &[u8]) -> Result<Self, DescriptorError> {
        let (raw, _) = checked::<6>(buf, SS_ENDPOINT_COMPANION)?;
        Self::from_raw(&raw)
    }

    pub(crate) fn from_raw(raw: &RawDescriptor<'_>) -> Result<Self, DescriptorError> {
        let b = raw.fields::<6>(SS_ENDPOINT_COMPANION)?;
        Ok(SsEndpointCompanion {
            max_burst: b[2],
            attributes: b[3],
            bytes_per_interval: le16(b[4], b[5]),
        })
    }

    /// For bulk endpoints: log2 of the number of streams (bits 4..0 of `bmAttributes`).
    pub fn max_streams_exponent(&self) -> u8 {
        self.attributes & 0x1F
    }

    /// For isochronous endpoints: `Mult` (bits 1..0 of `bmAttributes`).
    pub fn mult(&self) -> u8 {
        self.attributes & 0x03
    }

    /// The 6 descriptor bytes.
    pub fn to_bytes(&self) -> [u8; 6] {
        let [lo, hi] = self.bytes_per_interval.to_le_bytes();
        [
            6,
            SS_ENDPOINT_COMPANION,
            self.max_burst,
            self.attributes,
            lo,
            hi,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_in_and_out() {
        let inn = EndpointDescriptor::parse(&[7, 5, 0x81, 2, 0x00, 0x02, 0]).unwrap();
        assert_eq!(inn, EndpointDescriptor::bulk(0x81, 512));
        assert_eq!(
            (inn.number(), inn.direction(), inn.transfer_type()),
            (1, Direction::In, TransferType::Bulk)
        );
        let out = EndpointDescriptor::parse(&[7, 5, 0x01, 2, 0x40, 0x00, 0]).unwrap();
        assert_eq!((out.direction(), out.max_packet_size), (Direction::Out, 64));
    }

    #[test]
    fn high_bandwidth_isochronous() {
        // wMaxPacketSize 0x1400: 1024 bytes, 2 additional transactions.
        let ep = EndpointDescriptor::parse(&[7, 5, 0x83, 0x05, 0x00, 0x14, 1]).unwrap();
        assert_eq!(ep.transfer_type(), TransferType::Isochronous);
        assert_eq!((ep.max_packet_size, ep.additional_transactions), (1024, 2));
        assert_eq!(ep.packets_per_microframe(), 3);
        assert_eq!(ep.max_packet_size_raw(), 0x1400);
    }

    #[test]
    fn reserved_bits_dropped() {
        let ep = EndpointDescriptor::parse(&[7, 5, 0x02, 2, 0x40, 0xE0, 0]).unwrap();
        assert_eq!((ep.max_packet_size, ep.additional_transactions), (64, 0));
    }

    #[test]
    fn audio_endpoint_keeps_trailing_fields() {
        let bytes = [9, 5, 0x01, 0x09, 0xC0, 0x00, 1, 0, 0];
        let ep = EndpointDescriptor::parse(&bytes).unwrap();
        assert_eq!(ep.trailing_fields, vec![0, 0]);
        let mut out = Vec::new();
        ep.write_to(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn transfer_types() {
        for (bits, t) in [
            (0, TransferType::Control),
            (1, TransferType::Isochronous),
            (2, TransferType::Bulk),
            (3, TransferType::Interrupt),
        ] {
            assert_eq!(TransferType::from_attributes(bits | 0xFC), t);
            assert_eq!(t.attribute_bits(), bits);
        }
        assert_eq!(
            nusb::transfer::Direction::from(Direction::In),
            nusb::transfer::Direction::In
        );
        assert_eq!(
            nusb::descriptors::TransferType::from(TransferType::Bulk),
            nusb::descriptors::TransferType::Bulk
        );
    }

    #[test]
    fn malformed() {
        let good = [7u8, 5, 0x81, 2, 0x00, 0x02, 0];
        for n in 0..good.len() {
            assert!(EndpointDescriptor::parse(&good[..n]).is_err());
        }
        assert!(matches!(
            EndpointDescriptor::parse(&[6, 5, 0x81, 2, 0, 2]),
            Err(DescriptorError::BadLength {
                b_length: 6,
                minimum: 7,
                ..
            })
        ));
        assert!(matches!(
            EndpointDescriptor::parse(&[7, 4, 0, 0, 0, 0, 0]),
            Err(DescriptorError::WrongType { .. })
        ));
    }

    #[test]
    fn companion() {
        let bytes = [6, 0x30, 15, 4, 0x00, 0x00];
        let c = SsEndpointCompanion::parse(&bytes).unwrap();
        assert_eq!(
            (c.max_burst, c.max_streams_exponent(), c.bytes_per_interval),
            (15, 4, 0)
        );
        assert_eq!(c.to_bytes(), bytes);
        for n in 0..bytes.len() {
            assert!(SsEndpointCompanion::parse(&bytes[..n]).is_err());
        }
        let ep = EndpointDescriptor::bulk(0x81, 1024).with_companion(c);
        let mut out = Vec::new();
        ep.write_to(&mut out);
        assert_eq!(out, [7, 5, 0x81, 2, 0x00, 0x04, 0, 6, 0x30, 15, 4, 0, 0]);
    }
}
