//! Bits ↔ values: extraction and insertion, sign extension, decoding a
//! report into field values and encoding values into a report.

use super::model::{Field, Report, ReportDescriptor, ReportKind, Usage};

/// One decoded element of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldValue {
    /// The field's index in [`Report::fields`].
    pub field: usize,
    /// The element's index within the field.
    pub index: u32,
    /// Variable field: the element's usage. Array field: the usage the
    /// value selects. `None` when the field lists no usage.
    pub usage: Option<Usage>,
    /// The logical value (sign-extended when the logical minimum is
    /// negative). For an array element: the array index value.
    pub value: i64,
}

/// Why a report could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Empty data where a report ID byte was expected.
    #[error("empty report")]
    Empty,
    /// No report of this kind with this ID in the descriptor.
    #[error("no {kind:?} report with ID {id}")]
    UnknownReport {
        /// The kind looked for.
        kind: ReportKind,
        /// The ID on the wire (0: the descriptor uses none).
        id: u8,
    },
    /// Fewer data bytes than the report's layout needs.
    #[error("report {id} has {got} data bytes, its layout needs {needed}")]
    TooShort {
        /// The report ID.
        id: u8,
        /// Bytes needed.
        needed: usize,
        /// Bytes received.
        got: usize,
    },
}

/// Why values could not be encoded into a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// No such field or element in the report.
    #[error("report has no element {index} in field {field}")]
    NoSuchElement {
        /// The field index.
        field: usize,
        /// The element index.
        index: u32,
    },
    /// No data field of the report lists this usage (or every element
    /// with it is already set).
    #[error("no free element for {0:?} in the report")]
    NoSuchUsage(Usage),
    /// The value does not fit the field's bit size and signedness.
    #[error("value {value} does not fit field {field} ({bits} bits)")]
    OutOfRange {
        /// The field index.
        field: usize,
        /// Its bit size.
        bits: u32,
        /// The value.
        value: i64,
    },
}

/// The bits `offset..offset + bits` of `data`, least significant bit
/// first (HID order). Only the low 64 bits of wider elements are kept;
/// bits past the end of `data` read as 0.
pub fn extract_bits(data: &[u8], offset: u64, bits: u32) -> u64 {
    let n = bits.min(64);
    let mut value = 0u64;
    let mut got = 0u32;
    let mut pos = offset;
    while got < n {
        let byte = usize::try_from(pos / 8)
            .ok()
            .and_then(|i| data.get(i))
            .copied()
            .unwrap_or(0);
        let shift = (pos % 8) as u32;
        let take = (8 - shift).min(n - got);
        let chunk = (u64::from(byte) >> shift) & ((1u64 << take) - 1);
        value |= chunk << got;
        got += take;
        pos += u64::from(take);
    }
    value
}

/// Write the low `bits` bits of `value` at `offset` of `data` (least
/// significant bit first). Bits past 64 are written as 0; bits past the
/// end of `data` are dropped.
pub fn insert_bits(data: &mut [u8], offset: u64, bits: u32, value: u64) {
    let mut done = 0u32;
    let mut pos = offset;
    while done < bits {
        let shift = (pos % 8) as u32;
        let take = (8 - shift).min(bits - done);
        let chunk = if done >= 64 { 0 } else { value >> done };
        let mask = (((1u16 << take) - 1) as u8) << shift;
        if let Some(byte) = usize::try_from(pos / 8).ok().and_then(|i| data.get_mut(i)) {
            *byte = (*byte & !mask) | (((chunk as u8) << shift) & mask);
        }
        done += take;
        pos += u64::from(take);
    }
}

/// Sign-extend the low `bits` bits of `raw` (bits ≥ 64: unchanged).
pub fn sign_extend(raw: u64, bits: u32) -> i64 {
    if bits == 0 {
        return 0;
    }
    if bits >= 64 {
        return raw as i64;
    }
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

impl Field {
    /// The element `index`'s value from report data (no ID byte).
    pub fn read(&self, data: &[u8], index: u32) -> i64 {
        let offset = u64::from(self.bit_offset) + u64::from(index) * u64::from(self.bit_size);
        let raw = extract_bits(data, offset, self.bit_size);
        if self.is_signed() {
            sign_extend(raw, self.bit_size)
        } else {
            raw as i64
        }
    }

    /// Whether `value` fits the field's bit size and signedness.
    pub fn fits(&self, value: i64) -> bool {
        let bits = self.bit_size;
        if bits >= 64 {
            return true;
        }
        if self.is_signed() {
            let half = 1i64 << (bits - 1);
            (-half..half).contains(&value)
        } else {
            value >= 0 && (value as u64) < (1u64 << bits)
        }
    }

    fn write(&self, data: &mut [u8], index: u32, value: i64) {
        let offset = u64::from(self.bit_offset) + u64::from(index) * u64::from(self.bit_size);
        insert_bits(data, offset, self.bit_size, value as u64);
    }
}

impl Report {
    /// Decode report data (the report ID byte removed) into values: every
    /// element of every variable data field, and every element of an
    /// array field that selects a usage. Constant (padding) fields are
    /// skipped. Extra bytes are ignored.
    ///
    /// # Errors
    /// [`DecodeError::TooShort`] when `data` is shorter than the layout.
    pub fn decode(&self, data: &[u8]) -> Result<Vec<FieldValue>, DecodeError> {
        if data.len() < self.data_len() {
            return Err(DecodeError::TooShort {
                id: self.id,
                needed: self.data_len(),
                got: data.len(),
            });
        }
        let mut out = Vec::new();
        for (fi, field) in self.fields.iter().enumerate() {
            if field.flags.is_constant() {
                continue;
            }
            if field.flags.is_variable() {
                for index in 0..field.count {
                    out.push(FieldValue {
                        field: fi,
                        index,
                        usage: field.element_usage(index),
                        value: field.read(data, index),
                    });
                }
            } else {
                for index in 0..field.count {
                    let value = field.read(data, index);
                    if let Some(usage) = field.array_usage(value) {
                        out.push(FieldValue {
                            field: fi,
                            index,
                            usage: Some(usage),
                            value,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Encode values into report data (no ID byte; [`data_len`](Self::data_len)
    /// bytes, unset bits 0): each value goes to its `field` and `index`.
    /// The inverse of [`decode`](Self::decode).
    ///
    /// # Errors
    /// [`EncodeError::NoSuchElement`], [`EncodeError::OutOfRange`].
    pub fn encode(&self, values: &[FieldValue]) -> Result<Vec<u8>, EncodeError> {
        let mut data = vec![0; self.data_len()];
        for v in values {
            let field = self
                .fields
                .get(v.field)
                .filter(|f| v.index < f.count)
                .ok_or(EncodeError::NoSuchElement {
                    field: v.field,
                    index: v.index,
                })?;
            if !field.fits(v.value) {
                return Err(EncodeError::OutOfRange {
                    field: v.field,
                    bits: field.bit_size,
                    value: v.value,
                });
            }
            field.write(&mut data, v.index, v.value);
        }
        Ok(data)
    }

    /// Encode values by usage (no ID byte): for each `(usage, value)` in
    /// order, a variable field's next unset element with that usage takes
    /// `value`; for an array field listing the usage, a non-zero `value`
    /// puts the usage's index in the next free slot (a pressed key).
    ///
    /// ```
    /// use usbdf_hid::{generic_desktop, ReportDescriptor};
    /// # let rd = ReportDescriptor::parse(&[
    /// #     0x05, 0x01, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x30, 0x09, 0x31, 0x15, 0x81,
    /// #     0x25, 0x7f, 0x75, 0x08, 0x95, 0x02, 0x81, 0x06, 0xc0,
    /// # ])?;
    /// let input = rd.input(0).unwrap();
    /// let data = input.encode_usages(&[(generic_desktop::X, -3), (generic_desktop::Y, 5)])?;
    /// assert_eq!(data, [0xfd, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`EncodeError::NoSuchUsage`] when no free element has the usage,
    /// [`EncodeError::OutOfRange`].
    pub fn encode_usages(&self, values: &[(Usage, i64)]) -> Result<Vec<u8>, EncodeError> {
        let mut data = vec![0; self.data_len()];
        // Next free element per field.
        let mut used: Vec<Vec<bool>> = vec![Vec::new(); self.fields.len()];
        for &(usage, value) in values {
            let mut placed = false;
            for (fi, field) in self.fields.iter().enumerate() {
                if field.flags.is_constant() || !field.has_usage(usage) {
                    continue;
                }
                let slots = &mut used[fi];
                if slots.is_empty() {
                    slots.resize(field.count as usize, false);
                }
                let (index, stored) = if field.flags.is_variable() {
                    let free = (0..field.count)
                        .find(|&i| !slots[i as usize] && field.element_usage(i) == Some(usage));
                    (free, value)
                } else {
                    if value == 0 {
                        placed = true;
                        break;
                    }
                    let free = (0..field.count).find(|&i| !slots[i as usize]);
                    (free, field.array_value(usage).unwrap_or(0))
                };
                let Some(index) = index else { continue };
                if !field.fits(stored) {
                    return Err(EncodeError::OutOfRange {
                        field: fi,
                        bits: field.bit_size,
                        value: stored,
                    });
                }
                field.write(&mut data, index, stored);
                slots[index as usize] = true;
                placed = true;
                break;
            }
            if !placed {
                return Err(EncodeError::NoSuchUsage(usage));
            }
        }
        Ok(data)
    }
}

/// An input report as it arrived, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputReport {
    /// The report ID (0 when the descriptor uses none).
    pub id: u8,
    /// The decoded values (empty when `error` is set).
    pub fields: Vec<FieldValue>,
    /// The bytes received, report ID first when the descriptor uses IDs.
    pub raw: Vec<u8>,
    /// Why it could not be decoded (unknown ID, too short), if so.
    pub error: Option<DecodeError>,
}

impl InputReport {
    /// The value of the first element with `usage`.
    pub fn get(&self, usage: Usage) -> Option<i64> {
        self.values(usage).next()
    }

    /// The values of every element with `usage`, in order.
    pub fn values(&self, usage: Usage) -> impl Iterator<Item = i64> + '_ {
        self.fields
            .iter()
            .filter(move |v| v.usage == Some(usage))
            .map(|v| v.value)
    }

    /// The report data without the report ID byte.
    pub fn data(&self) -> &[u8] {
        if self.id != 0 {
            self.raw.get(1..).unwrap_or(&[])
        } else {
            &self.raw
        }
    }
}

impl ReportDescriptor {
    /// Split a report as sent on the wire into its ID and data.
    ///
    /// # Errors
    /// [`DecodeError::Empty`] for an empty report when IDs are used.
    pub fn split_id<'a>(&self, wire: &'a [u8]) -> Result<(u8, &'a [u8]), DecodeError> {
        if self.uses_report_ids {
            match wire.split_first() {
                Some((&id, data)) => Ok((id, data)),
                None => Err(DecodeError::Empty),
            }
        } else {
            Ok((0, wire))
        }
    }

    /// Decode a report of `kind` as sent on the wire (report ID first when
    /// the descriptor uses IDs).
    ///
    /// # Errors
    /// [`DecodeError`]: empty, unknown ID, too short.
    pub fn decode(
        &self,
        kind: ReportKind,
        wire: &[u8],
    ) -> Result<(u8, Vec<FieldValue>), DecodeError> {
        let (id, data) = self.split_id(wire)?;
        let report = self
            .report(kind, id)
            .ok_or(DecodeError::UnknownReport { kind, id })?;
        Ok((id, report.decode(data)?))
    }

    /// Decode an input report as received; a report that cannot be
    /// decoded comes back with `error` set and no fields.
    pub fn decode_input(&self, wire: &[u8]) -> InputReport {
        let id = self.split_id(wire).map(|(id, _)| id).unwrap_or(0);
        match self.decode(ReportKind::Input, wire) {
            Ok((id, fields)) => InputReport {
                id,
                fields,
                raw: wire.to_vec(),
                error: None,
            },
            Err(e) => InputReport {
                id,
                fields: Vec::new(),
                raw: wire.to_vec(),
                error: Some(e),
            },
        }
    }
}
