//! Errors for descriptors that cannot be read, and anomalies for those read leniently.

use thiserror::Error;

/// Why a descriptor could not be parsed.
///
/// Offsets are in bytes from the start of the slice handed to the parser (for a configuration
/// descriptor: from its first byte).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// The data ends before the descriptor does: fewer than the 2 header bytes remain, or fewer
    /// than the descriptor's `bLength` (or its type's fixed size).
    #[error(
        "descriptor at offset {offset} is truncated: needs {needed} bytes, {available} available"
    )]
    Truncated {
        /// Where the descriptor starts.
        offset: usize,
        /// Bytes the descriptor needs.
        needed: usize,
        /// Bytes left in the data from `offset`.
        available: usize,
    },

    /// `bLength` is 0 or 1 (it cannot cover its own header, so the descriptors after it cannot
    /// be found), or smaller than the minimum size of the descriptor's type.
    #[error("descriptor at offset {offset} has bLength {b_length}, minimum is {minimum}")]
    BadLength {
        /// Where the descriptor starts.
        offset: usize,
        /// The `bLength` found.
        b_length: u8,
        /// The smallest `bLength` valid here.
        minimum: u8,
    },

    /// `bDescriptorType` is not the type the parser was asked for.
    #[error("descriptor at offset {offset} has type {found:#04x}, expected {expected:#04x}")]
    WrongType {
        /// Where the descriptor starts.
        offset: usize,
        /// The type the parser reads.
        expected: u8,
        /// The `bDescriptorType` found.
        found: u8,
    },

    /// `wTotalLength` (of a configuration or BOS descriptor) is larger than the data.
    ///
    /// This usually means only the header was read (read `wTotalLength` bytes and parse again).
    /// A `wTotalLength` smaller than the data is not an error: the bytes after it are ignored.
    #[error("wTotalLength is {declared} but only {available} bytes are available")]
    TotalLengthMismatch {
        /// The `wTotalLength` field.
        declared: usize,
        /// Bytes in the data.
        available: usize,
    },

    /// `wTotalLength` is smaller than the header descriptor that contains it.
    #[error("wTotalLength is {declared}, smaller than the {minimum}-byte header")]
    BadTotalLength {
        /// The `wTotalLength` field.
        declared: usize,
        /// The header's `bLength`.
        minimum: usize,
    },

    /// A string descriptor (or LANGID list) has an odd `bLength`, so it is not a whole number
    /// of UTF-16 code units.
    #[error("string descriptor at offset {offset} has odd bLength {b_length}")]
    BadString {
        /// Where the descriptor starts.
        offset: usize,
        /// The `bLength` found.
        b_length: u8,
    },
}

/// Something wrong in descriptor bytes that the parser tolerated.
///
/// Real devices get counts wrong and put descriptors in odd places; rejecting them would make
/// the device unusable, so the parsers keep going and record what they saw here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Anomaly {
    /// `bNumInterfaces` differs from the number of distinct interface numbers found.
    InterfaceCountMismatch {
        /// The `bNumInterfaces` field.
        declared: u8,
        /// Distinct interface numbers found.
        found: usize,
    },
    /// `bNumEndpoints` of one alternate setting differs from the endpoints that follow it.
    EndpointCountMismatch {
        /// `bInterfaceNumber` of the setting.
        interface: u8,
        /// `bAlternateSetting` of the setting.
        alternate_setting: u8,
        /// The `bNumEndpoints` field.
        declared: u8,
        /// Endpoint descriptors found.
        found: usize,
    },
    /// An endpoint descriptor came before any interface descriptor; it is kept raw in the
    /// configuration's `extra`.
    EndpointOutsideInterface {
        /// Where the endpoint descriptor starts.
        offset: usize,
    },
    /// A SuperSpeed endpoint companion did not follow an endpoint (or followed one that already
    /// had one); it is kept raw where it appeared.
    MisplacedCompanion {
        /// Where the companion descriptor starts.
        offset: usize,
    },
    /// `wTotalLength` was larger than the data; what was there was parsed (lenient parse
    /// only; a strict parse fails with [`DescriptorError::TotalLengthMismatch`]).
    ShortData {
        /// The `wTotalLength` field.
        declared: usize,
        /// Bytes in the data.
        available: usize,
    },
    /// Bad framing (a `bLength` of 0 or 1, or a descriptor running past the end) stopped the
    /// parse; the descriptors before it were kept (lenient parse only).
    StoppedEarly {
        /// The framing error.
        error: DescriptorError,
    },
    /// A descriptor too short for its type was kept raw instead of parsed (lenient parse
    /// only).
    SkippedDescriptor {
        /// Why it could not be parsed.
        error: DescriptorError,
    },
    /// `bNumDeviceCaps` of a BOS descriptor differs from the capabilities found.
    CapabilityCountMismatch {
        /// The `bNumDeviceCaps` field.
        declared: u8,
        /// Device capability descriptors found.
        found: usize,
    },
    /// A BOS descriptor held a descriptor that is not a device capability; it was skipped.
    UnexpectedDescriptor {
        /// Where the descriptor starts.
        offset: usize,
        /// Its `bDescriptorType`.
        descriptor_type: u8,
    },
}
