//! Value types of the serial line: [`LineCoding`], [`ControlLines`], [`SerialState`].
//!
//! Pure: wire bytes in and out, checked, never panicking.

use std::fmt;

/// Stop bits (`bCharFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StopBits {
    /// 1 stop bit (0).
    #[default]
    One,
    /// 1.5 stop bits (1).
    OnePointFive,
    /// 2 stop bits (2).
    Two,
    /// A value CDC does not define, as the device reported it.
    Other(u8),
}

/// Parity (`bParityType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Parity {
    /// None (0).
    #[default]
    None,
    /// Odd (1).
    Odd,
    /// Even (2).
    Even,
    /// Mark (3).
    Mark,
    /// Space (4).
    Space,
    /// A value CDC does not define, as the device reported it.
    Other(u8),
}

/// Data bits per character (`bDataBits`): CDC defines 5, 6, 7, 8 and 16; any other value
/// is kept as the device reported it ([`is_valid`](Self::is_valid) tells).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataBits(pub u8);

impl DataBits {
    /// 5 data bits.
    pub const FIVE: DataBits = DataBits(5);
    /// 6 data bits.
    pub const SIX: DataBits = DataBits(6);
    /// 7 data bits.
    pub const SEVEN: DataBits = DataBits(7);
    /// 8 data bits.
    pub const EIGHT: DataBits = DataBits(8);
    /// 16 data bits.
    pub const SIXTEEN: DataBits = DataBits(16);

    /// The value, if it is one CDC allows.
    pub const fn new(bits: u8) -> Option<DataBits> {
        match bits {
            5..=8 | 16 => Some(DataBits(bits)),
            _ => None,
        }
    }

    /// Whether CDC defines this value.
    pub const fn is_valid(self) -> bool {
        matches!(self.0, 5..=8 | 16)
    }

    /// The number of bits.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for DataBits {
    fn default() -> Self {
        DataBits::EIGHT
    }
}

/// The 7-byte line coding of `SET_LINE_CODING` / `GET_LINE_CODING` (CDC PSTN 1.2, 6.3.11).
///
/// The default is 9600 8N1. Parsing is lossless: values CDC does not define are kept
/// (`Other`, a raw [`DataBits`]) so that what a device reports can be shown and sent back
/// unchanged; [`is_valid`](Self::is_valid) checks them. (Linux's `f_acm` reports all
/// zeros until the host's first `SET_LINE_CODING`.)
///
/// ```
/// use usbdf_cdc_acm::{LineCoding, Parity};
/// let lc = LineCoding { rate: 115_200, parity: Parity::Even, ..LineCoding::default() };
/// assert_eq!(LineCoding::from_bytes(&lc.to_bytes()), Ok(lc));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineCoding {
    /// `dwDTERate`: bits per second.
    pub rate: u32,
    /// `bCharFormat`.
    pub stop_bits: StopBits,
    /// `bParityType`.
    pub parity: Parity,
    /// `bDataBits`.
    pub data_bits: DataBits,
}

impl Default for LineCoding {
    fn default() -> Self {
        LineCoding {
            rate: 9600,
            stop_bits: StopBits::One,
            parity: Parity::None,
            data_bits: DataBits::EIGHT,
        }
    }
}

/// Why line coding bytes from a device could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum LineCodingError {
    /// Fewer than 7 bytes.
    #[error("line coding needs 7 bytes, got {0}")]
    Truncated(usize),
}

impl LineCoding {
    /// Length on the wire.
    pub const LEN: usize = 7;

    /// The wire form: `dwDTERate` (LE), `bCharFormat`, `bParityType`, `bDataBits`.
    pub fn to_bytes(&self) -> [u8; 7] {
        let [r0, r1, r2, r3] = self.rate.to_le_bytes();
        let stop = match self.stop_bits {
            StopBits::One => 0,
            StopBits::OnePointFive => 1,
            StopBits::Two => 2,
            StopBits::Other(v) => v,
        };
        let parity = match self.parity {
            Parity::None => 0,
            Parity::Odd => 1,
            Parity::Even => 2,
            Parity::Mark => 3,
            Parity::Space => 4,
            Parity::Other(v) => v,
        };
        [r0, r1, r2, r3, stop, parity, self.data_bits.get()]
    }

    /// Parse the wire form (bytes past the 7th are ignored). Every 7 bytes parse, and
    /// [`to_bytes`](Self::to_bytes) gives them back.
    ///
    /// # Errors
    /// [`LineCodingError::Truncated`] for fewer than 7 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<LineCoding, LineCodingError> {
        let &[r0, r1, r2, r3, stop, parity, data] = bytes
            .first_chunk::<7>()
            .ok_or(LineCodingError::Truncated(bytes.len()))?;
        Ok(LineCoding {
            rate: u32::from_le_bytes([r0, r1, r2, r3]),
            stop_bits: match stop {
                0 => StopBits::One,
                1 => StopBits::OnePointFive,
                2 => StopBits::Two,
                other => StopBits::Other(other),
            },
            parity: match parity {
                0 => Parity::None,
                1 => Parity::Odd,
                2 => Parity::Even,
                3 => Parity::Mark,
                4 => Parity::Space,
                other => Parity::Other(other),
            },
            data_bits: DataBits(data),
        })
    }

    /// Whether every field holds a value CDC defines (stop bits 0..=2, parity 0..=4, data
    /// bits 5..=8 or 16).
    pub fn is_valid(&self) -> bool {
        !matches!(self.stop_bits, StopBits::Other(_))
            && !matches!(self.parity, Parity::Other(_))
            && self.data_bits.is_valid()
    }
}

/// The control line state of `SET_CONTROL_LINE_STATE` (`wValue`): DTR and RTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ControlLines {
    /// Data terminal ready (bit 0).
    pub dtr: bool,
    /// Request to send (bit 1; "activate carrier" for half duplex).
    pub rts: bool,
}

impl ControlLines {
    /// DTR and RTS both set: what a terminal program asserts when it opens the port.
    pub const ASSERTED: ControlLines = ControlLines {
        dtr: true,
        rts: true,
    };

    /// The `wValue` bits.
    pub const fn bits(self) -> u16 {
        (self.dtr as u16) | ((self.rts as u16) << 1)
    }

    /// From `wValue` bits (others ignored).
    pub const fn from_bits(bits: u16) -> ControlLines {
        ControlLines {
            dtr: bits & 1 != 0,
            rts: bits & 2 != 0,
        }
    }
}

/// The UART state bitmap of a `SERIAL_STATE` notification (CDC PSTN 1.2, 6.5.4).
///
/// DCD and DSR are states; break, ring and the three errors are events the device
/// reports once (the bit is set in one notification and cleared in a later one).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SerialState(pub u16);

impl SerialState {
    /// bRxCarrier: data carrier detect (DCD).
    pub const DCD: u16 = 1 << 0;
    /// bTxCarrier: data set ready (DSR).
    pub const DSR: u16 = 1 << 1;
    /// bBreak: a break was detected.
    pub const BREAK: u16 = 1 << 2;
    /// bRingSignal: ring indicator.
    pub const RING: u16 = 1 << 3;
    /// bFraming: a framing error.
    pub const FRAMING: u16 = 1 << 4;
    /// bParity: a parity error.
    pub const PARITY: u16 = 1 << 5;
    /// bOverRun: received data was lost.
    pub const OVERRUN: u16 = 1 << 6;

    /// DCD.
    pub const fn dcd(self) -> bool {
        self.0 & Self::DCD != 0
    }
    /// DSR.
    pub const fn dsr(self) -> bool {
        self.0 & Self::DSR != 0
    }
    /// Break detected.
    pub const fn break_detected(self) -> bool {
        self.0 & Self::BREAK != 0
    }
    /// Ring.
    pub const fn ring(self) -> bool {
        self.0 & Self::RING != 0
    }
    /// Framing error.
    pub const fn framing_error(self) -> bool {
        self.0 & Self::FRAMING != 0
    }
    /// Parity error.
    pub const fn parity_error(self) -> bool {
        self.0 & Self::PARITY != 0
    }
    /// Overrun.
    pub const fn overrun(self) -> bool {
        self.0 & Self::OVERRUN != 0
    }
}

impl fmt::Debug for SerialState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 7] = [
            "DCD", "DSR", "BREAK", "RING", "FRAMING", "PARITY", "OVERRUN",
        ];
        write!(f, "SerialState({:#06x}", self.0)?;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                write!(f, " {name}")?;
            }
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vector() {
        // 115200 7E1 as Linux's cdc-acm sends it.
        let bytes = [0x00, 0xc2, 0x01, 0x00, 0, 2, 7];
        let lc = LineCoding::from_bytes(&bytes).unwrap();
        assert_eq!(
            lc,
            LineCoding {
                rate: 115_200,
                stop_bits: StopBits::One,
                parity: Parity::Even,
                data_bits: DataBits::SEVEN
            }
        );
        assert_eq!(lc.to_bytes(), bytes);
        assert_eq!(
            LineCoding::default().to_bytes(),
            [0x80, 0x25, 0, 0, 0, 0, 8]
        );
    }

    #[test]
    fn short_bytes_are_typed_and_odd_values_kept() {
        for n in 0..7 {
            assert_eq!(
                LineCoding::from_bytes(&[0; 7][..n]),
                Err(LineCodingError::Truncated(n))
            );
        }
        // f_acm before the first SET_LINE_CODING.
        let zeros = LineCoding::from_bytes(&[0; 7]).unwrap();
        assert_eq!(zeros.data_bits, DataBits(0));
        assert!(!zeros.is_valid());
        let odd = LineCoding::from_bytes(&[0, 0, 0, 0, 3, 5, 9]).unwrap();
        assert_eq!(
            (odd.stop_bits, odd.parity, odd.data_bits),
            (StopBits::Other(3), Parity::Other(5), DataBits(9))
        );
        assert_eq!(odd.to_bytes(), [0, 0, 0, 0, 3, 5, 9]);
        assert!(LineCoding::default().is_valid());
    }

    #[test]
    fn control_lines_bits() {
        assert_eq!(ControlLines::ASSERTED.bits(), 3);
        assert_eq!(
            ControlLines::from_bits(1),
            ControlLines {
                dtr: true,
                rts: false
            }
        );
        assert_eq!(ControlLines::default().bits(), 0);
    }

    #[test]
    fn serial_state_debug_names_bits() {
        let s = SerialState(SerialState::DCD | SerialState::OVERRUN);
        assert!(s.dcd() && s.overrun() && !s.dsr());
        assert_eq!(format!("{s:?}"), "SerialState(0x0041 DCD OVERRUN)");
    }

    fn line_coding() -> impl Strategy<Value = LineCoding> {
        (
            any::<u32>(),
            prop_oneof![
                Just(StopBits::One),
                Just(StopBits::OnePointFive),
                Just(StopBits::Two)
            ],
            prop_oneof![
                Just(Parity::None),
                Just(Parity::Odd),
                Just(Parity::Even),
                Just(Parity::Mark),
                Just(Parity::Space)
            ],
            prop_oneof![5u8..=8, Just(16u8)],
        )
            .prop_map(|(rate, stop_bits, parity, bits)| LineCoding {
                rate,
                stop_bits,
                parity,
                data_bits: DataBits::new(bits).unwrap(),
            })
    }

    proptest! {
        #[test]
        fn round_trip(lc in line_coding()) {
            prop_assert!(lc.is_valid());
            prop_assert_eq!(LineCoding::from_bytes(&lc.to_bytes()), Ok(lc));
        }

        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
            match LineCoding::from_bytes(&bytes) {
                Ok(lc) => prop_assert_eq!(&lc.to_bytes()[..], &bytes[..7]),
                Err(e) => prop_assert_eq!(e, LineCodingError::Truncated(bytes.len())),
            }
        }

        #[test]
        fn control_lines_round_trip(bits in 0u16..4) {
            prop_assert_eq!(ControlLines::from_bits(bits).bits(), bits);
        }
    }
}
