//! A big-endian reader over one complete handshake message, and the
//! 16-bit lists such a message holds. Every parser here reads through it,
//! so the rule that a vector must fit its parent exactly lives in one place.

use super::TlsError;
pub(super) fn u16s(bytes: &[u8]) -> impl Iterator<Item = u16> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
}

/// Big-endian reader over one complete message: running out of bytes is a
/// malformed message, not an incomplete one.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if self.0.len() < n {
            return Err(TlsError::Malformed("field runs past its container"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, TlsError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, TlsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn vector8(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u8()?;
        self.take(usize::from(len))
    }

    pub(super) fn vector16(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    pub(super) fn u24(&mut self) -> Result<usize, TlsError> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    }

    pub(super) fn vector24(&mut self) -> Result<&'a [u8], TlsError> {
        let len = self.u24()?;
        self.take(len)
    }

    /// SSL 3.0 to TLS 1.3 (0x0300..=0x0304).
    pub(super) fn version(&mut self) -> Result<u16, TlsError> {
        let version = self.u16()?;
        if !(0x0300..=0x0304).contains(&version) {
            return Err(TlsError::Malformed("unknown protocol version"));
        }
        Ok(version)
    }

    pub(super) fn session_id(&mut self) -> Result<(), TlsError> {
        if self.vector8()?.len() > 32 {
            return Err(TlsError::Malformed("session id longer than 32 bytes"));
        }
        Ok(())
    }

    pub(super) fn finish(&self) -> Result<(), TlsError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(TlsError::Malformed("bytes left after the last field"))
        }
    }
}
