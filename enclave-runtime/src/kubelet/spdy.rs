//! The part of SPDY/3.1 (the framing of kube's `httpstream`, `moby/spdystream`) that the
//! stream translator needs as a client of a kubelet: frame heads, SYN_STREAM with its header
//! block, data frames and PING. Header blocks are one zlib stream per connection (SPDY/3 §2.6.10.1);
//! ours are written as stored (uncompressed) deflate blocks, which any inflater reads, so no
//! compressor is needed. The kubelet's own header blocks (its SYN_REPLYs) are never inflated:
//! nothing in them is needed, and skipping them keeps an inflater and its dictionary out of the
//! enclave.

/// The SPDY version of every control frame.
const VERSION: u16 = 3;

pub(crate) const SYN_STREAM: u16 = 1;
pub(crate) const SYN_REPLY: u16 = 2;
pub(crate) const RST_STREAM: u16 = 3;
pub(crate) const PING: u16 = 6;
pub(crate) const GOAWAY: u16 = 7;

/// FLAG_FIN of data frames, SYN_STREAM and SYN_REPLY: the sender's half of the stream ends.
pub(crate) const FLAG_FIN: u8 = 0x01;

/// The largest payload a frame can announce (24-bit length).
pub(crate) const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;

/// A frame's 8-byte head; its payload (`len` bytes) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    Control { kind: u16, flags: u8, len: u32 },
    Data { stream: u32, flags: u8, len: u32 },
}

/// Why a kubelet's frame cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A control frame of another SPDY version.
    Version(u16),
    /// A control frame whose payload is shorter than its kind needs.
    Short { kind: u16, len: u32 },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Version(v) => write!(f, "unsupported SPDY version {v}"),
            Self::Short { kind, len } => write!(f, "control frame {kind} too short ({len} bytes)"),
        }
    }
}

impl Head {
    pub(crate) fn parse(bytes: [u8; 8]) -> Result<Self, FrameError> {
        let [b0, b1, b2, b3, flags, l0, l1, l2] = bytes;
        let len = u32::from_be_bytes([0, l0, l1, l2]);
        if b0 & 0x80 == 0 {
            let stream = u32::from_be_bytes([b0, b1, b2, b3]);
            return Ok(Self::Data { stream, flags, len });
        }
        let version = u16::from_be_bytes([b0 & 0x7f, b1]);
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = u16::from_be_bytes([b2, b3]);
        // The fixed fields read from the payload (stream ids, ping ids).
        let least = match kind {
            SYN_REPLY | PING => 4,
            RST_STREAM | GOAWAY => 8,
            _ => 0,
        };
        if len < least {
            return Err(FrameError::Short { kind, len });
        }
        Ok(Self::Control { kind, flags, len })
    }
}

/// A control frame's head.
fn control_head(kind: u16, flags: u8, len: usize) -> [u8; 8] {
    let [v0, v1] = VERSION.to_be_bytes();
    let [k0, k1] = kind.to_be_bytes();
    let [_, l0, l1, l2] = u32::try_from(len.min(MAX_FRAME_PAYLOAD))
        .unwrap_or(0)
        .to_be_bytes();
    [0x80 | v0, v1, k0, k1, flags, l0, l1, l2]
}

/// A data frame's head for `len` payload bytes (at most [`MAX_FRAME_PAYLOAD`]).
pub(crate) fn data_head(stream: u32, fin: bool, len: usize) -> [u8; 8] {
    let [s0, s1, s2, s3] = (stream & 0x7fff_ffff).to_be_bytes();
    let [_, l0, l1, l2] = u32::try_from(len.min(MAX_FRAME_PAYLOAD))
        .unwrap_or(0)
        .to_be_bytes();
    [s0, s1, s2, s3, u8::from(fin), l0, l1, l2]
}

/// A PING frame (echoed back to the kubelet when it pings).
pub(crate) fn ping(id: u32) -> Vec<u8> {
    let mut out = control_head(PING, 0, 4).to_vec();
    out.extend_from_slice(&id.to_be_bytes());
    out
}

/// The connection's header-block stream: one zlib stream whose blocks are stored (BTYPE 00),
/// each frame's ending with an empty stored block, zlib's sync flush: an inflater hands a
/// stored block's bytes out only when the next block starts (Go's `compress/flate` does so), and
/// the next frame's bytes are not there yet.
#[derive(Debug, Default)]
pub(crate) struct HeaderBlocks {
    started: bool,
}

impl HeaderBlocks {
    /// The compressed header block of `headers` (names lowercase, as SPDY/3 requires).
    pub(crate) fn block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = Vec::new();
        let count = u32::try_from(headers.len()).unwrap_or(u32::MAX);
        plain.extend_from_slice(&count.to_be_bytes());
        for (name, value) in headers {
            for text in [name.to_ascii_lowercase().as_str(), value] {
                let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
                plain.extend_from_slice(&len.to_be_bytes());
                plain.extend_from_slice(text.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 16);
        if !self.started {
            // CMF 0x78 (deflate, 32 KiB window), FLG 0x01: no preset dictionary is used, so
            // none is announced; (0x78 << 8 | 0x01) % 31 == 0 as RFC 1950 asks.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in plain.chunks(usize::from(u16::MAX)) {
            let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
            // BFINAL 0, BTYPE 00, padded to the byte; LEN and its complement, little-endian.
            out.push(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&SYNC_FLUSH);
        out
    }
}

/// zlib's sync flush: an empty stored block.
const SYNC_FLUSH: [u8; 5] = [0, 0, 0, 0xff, 0xff];

/// A SYN_STREAM opening client stream `stream` (odd, increasing) with header `block`.
pub(crate) fn syn_stream(stream: u32, block: &[u8]) -> Vec<u8> {
    let mut out = control_head(SYN_STREAM, 0, 10 + block.len()).to_vec();
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    // Associated-To-Stream-ID 0, priority 0, slot 0.
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(block);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_both_kinds_and_refuse_other_versions_and_short_frames() {
        assert_eq!(
            Head::parse(data_head(5, true, 70_000)),
            Ok(Head::Data {
                stream: 5,
                flags: FLAG_FIN,
                len: 70_000
            })
        );
        let ping = ping(2);
        let mut head = [0u8; 8];
        head.copy_from_slice(&ping[..8]);
        assert_eq!(
            Head::parse(head),
            Ok(Head::Control {
                kind: PING,
                flags: 0,
                len: 4
            })
        );
        assert_eq!(&ping[8..], [0, 0, 0, 2]);
        let mut v2 = head;
        v2[1] = 2;
        assert_eq!(Head::parse(v2), Err(FrameError::Version(2)));
        let short = control_head(RST_STREAM, 0, 4);
        assert_eq!(
            Head::parse(short),
            Err(FrameError::Short {
                kind: RST_STREAM,
                len: 4
            })
        );
    }

    #[test]
    fn header_blocks_are_one_zlib_stream_of_stored_blocks() {
        let mut blocks = HeaderBlocks::default();
        let first = blocks.block(&[("streamType", "error")]);
        // zlib header, then one stored block of the plain header block.
        let mut plain = vec![0, 0, 0, 1, 0, 0, 0, 10];
        plain.extend_from_slice(b"streamtype");
        plain.extend_from_slice(&[0, 0, 0, 5]);
        plain.extend_from_slice(b"error");
        let mut want = vec![
            0x78,
            0x01,
            0,
            plain.len() as u8,
            0,
            !(plain.len() as u8),
            0xff,
        ];
        want.extend_from_slice(&plain);
        want.extend_from_slice(&SYNC_FLUSH);
        assert_eq!(first, want);
        // The next block continues the stream: no second zlib header.
        let second = blocks.block(&[("streamType", "stdout")]);
        assert_eq!(second[0], 0);
        let frame = syn_stream(3, &second);
        let mut head = [0u8; 8];
        head.copy_from_slice(&frame[..8]);
        assert_eq!(
            Head::parse(head),
            Ok(Head::Control {
                kind: SYN_STREAM,
                flags: 0,
                len: (10 + second.len()) as u32
            })
        );
        assert_eq!(&frame[8..12], [0, 0, 0, 3]);
        // A block past 64 KiB is split into several stored blocks.
        let long = "x".repeat(70_000);
        let big = HeaderBlocks::default().block(&[("a", &long)]);
        assert_eq!(
            big.len(),
            2 + 5 + 65535 + 5 + (4 + 4 + 1 + 4 + 70_000 - 65535) + 5
        );
    }
}
