//! A bounded reader for the definite-length CBOR (RFC 8949) subset Nitro documents use: every
//! length is checked against the bytes left before anything is sliced, nesting is limited.

use super::AttestationError;

/// Deepest nesting [`Reader::skip`] follows; Nitro documents nest three levels.
pub(crate) const MAX_DEPTH: u8 = 16;

const fn err(reason: &'static str) -> AttestationError {
    AttestationError::Cbor(reason)
}

/// CBOR major types.
pub(crate) const UINT: u8 = 0;
pub(crate) const NINT: u8 = 1;
pub(crate) const BYTES: u8 = 2;
pub(crate) const TEXT: u8 = 3;
pub(crate) const ARRAY: u8 = 4;
pub(crate) const MAP: u8 = 5;
pub(crate) const TAG: u8 = 6;

/// The encoding of `null`.
pub(crate) const NULL: u8 = 0xf6;

/// A cursor over one CBOR buffer.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next byte, not consumed.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn byte(&mut self) -> Result<u8, AttestationError> {
        let b = self.peek().ok_or(err("truncated"))?;
        self.pos = self.pos.saturating_add(1);
        Ok(b)
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], AttestationError> {
        // Checked against what is left before slicing, so a huge declared length costs nothing.
        let len = usize::try_from(len).map_err(|_| err("length larger than the document"))?;
        if len > self.remaining() {
            return Err(err("length larger than the bytes left"));
        }
        let end = self.pos.saturating_add(len);
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(err("length larger than the bytes left"))?;
        self.pos = end;
        Ok(out)
    }

    /// One item head: its major type and argument. Indefinite lengths and reserved additional
    /// information values are refused (the NSM emits neither).
    pub(crate) fn head(&mut self) -> Result<(u8, u64), AttestationError> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25..=27 => {
                let n = 1u64 << (info - 24);
                let mut v = 0u64;
                for b in self.take(n)? {
                    v = (v << 8) | u64::from(*b);
                }
                v
            }
            31 => return Err(err("indefinite length")),
            _ => return Err(err("reserved additional information")),
        };
        Ok((major, arg))
    }

    fn expect(&mut self, major: u8, what: &'static str) -> Result<u64, AttestationError> {
        let (m, arg) = self.head()?;
        if m == major { Ok(arg) } else { Err(err(what)) }
    }

    /// An unsigned integer.
    pub(crate) fn uint(&mut self) -> Result<u64, AttestationError> {
        self.expect(UINT, "expected an unsigned integer")
    }

    /// A byte string.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], AttestationError> {
        let len = self.expect(BYTES, "expected a byte string")?;
        self.take(len)
    }

    /// A text string (UTF-8 checked).
    pub(crate) fn text(&mut self) -> Result<&'a str, AttestationError> {
        let len = self.expect(TEXT, "expected a text string")?;
        core::str::from_utf8(self.take(len)?).map_err(|_| err("text string is not UTF-8"))
    }

    /// An array head; its count is at most the bytes left (each item takes one byte or more).
    pub(crate) fn array(&mut self) -> Result<usize, AttestationError> {
        let n = self.expect(ARRAY, "expected an array")?;
        self.count(n, 1)
    }

    /// A map head; its count is at most half the bytes left.
    pub(crate) fn map(&mut self) -> Result<usize, AttestationError> {
        let n = self.expect(MAP, "expected a map")?;
        self.count(n, 2)
    }

    fn count(&self, n: u64, per: u64) -> Result<usize, AttestationError> {
        let need = n
            .checked_mul(per)
            .ok_or(err("count larger than the document"))?;
        if need > self.remaining() as u64 {
            return Err(err("count larger than the bytes left"));
        }
        usize::try_from(n).map_err(|_| err("count larger than the document"))
    }

    /// `null` or a byte string.
    pub(crate) fn optional_bytes(&mut self) -> Result<Option<&'a [u8]>, AttestationError> {
        if self.peek() == Some(NULL) {
            self.pos = self.pos.saturating_add(1);
            return Ok(None);
        }
        self.bytes().map(Some)
    }

    /// An integer label (COSE header keys): `Ok(n)` as i128 so both signs fit.
    pub(crate) fn int(&mut self) -> Result<i128, AttestationError> {
        match self.head()? {
            (UINT, v) => Ok(i128::from(v)),
            (NINT, v) => Ok(-1 - i128::from(v)),
            _ => Err(err("expected an integer")),
        }
    }

    /// Skips one item of any type, following at most [`MAX_DEPTH`] levels of nesting. Work is
    /// bounded by the bytes left: every item consumes at least one byte.
    pub(crate) fn skip(&mut self, depth: u8) -> Result<(), AttestationError> {
        if depth >= MAX_DEPTH {
            return Err(err("nesting too deep"));
        }
        let (major, arg) = self.head()?;
        match major {
            BYTES | TEXT => self.take(arg).map(|_| ()),
            ARRAY => {
                let n = self.count(arg, 1)?;
                (0..n).try_for_each(|_| self.skip(depth.saturating_add(1)))
            }
            MAP => {
                let n = self.count(arg, 2)?;
                (0..n.saturating_mul(2)).try_for_each(|_| self.skip(depth.saturating_add(1)))
            }
            TAG => self.skip(depth.saturating_add(1)),
            // Integers and simple values/floats are complete after their head.
            _ => Ok(()),
        }
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), AttestationError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(err("trailing bytes"))
        }
    }
}

/// Appends a head for `major` with argument `arg` in the shortest form (as COSE's
/// Sig_structure must be encoded deterministically).
pub(crate) fn write_head(out: &mut alloc::vec::Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= 0xff {
        out.push(m | 24);
        out.push(arg as u8);
    } else if arg <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}
