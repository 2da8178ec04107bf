//! A reader and a writer over body octets, so that no parser or emitter indexes a slice.

use super::{EmitError, Error, Field};

/// Reads fields off the front of a body. Every read names the field it is for, so that running
/// out of octets says which field overran.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Reader { rest: body }
    }

    /// The next `len` octets, which belong to `field`.
    pub(crate) fn take(&mut self, len: usize, field: Field) -> Result<&'a [u8], Error> {
        let (head, tail) = self
            .rest
            .split_at_checked(len)
            .ok_or(Error::Overrun(field))?;
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` octets as an array, for fixed fields.
    pub(crate) fn array<const N: usize>(&mut self, field: Field) -> Result<&'a [u8; N], Error> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(Error::Overrun(field))?;
        self.rest = tail;
        Ok(head)
    }

    /// The octets not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Succeeds only if every octet was read: the lengths of the fields add up to the body
    /// (RFC 8907 §4.5).
    pub(crate) fn finish(self) -> Result<(), Error> {
        match self.rest.len() {
            0 => Ok(()),
            extra => Err(Error::TrailingOctets { extra }),
        }
    }
}

/// Appends fields to a caller buffer.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    rest: &'a mut [u8],
    written: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buffer: &'a mut [u8]) -> Self {
        Writer {
            rest: buffer,
            written: 0,
        }
    }

    /// Appends `octets`.
    pub(crate) fn put(&mut self, octets: &[u8]) -> Result<(), EmitError> {
        let rest = core::mem::take(&mut self.rest);
        let available = self.written + rest.len();
        let (head, tail) =
            rest.split_at_mut_checked(octets.len())
                .ok_or(EmitError::BufferTooSmall {
                    needed: self.written + octets.len(),
                    available,
                })?;
        head.copy_from_slice(octets);
        self.rest = tail;
        self.written += octets.len();
        Ok(())
    }

    /// Appends one octet.
    pub(crate) fn u8(&mut self, value: u8) -> Result<(), EmitError> {
        self.put(&[value])
    }

    /// Appends a two-octet value in network byte order.
    pub(crate) fn u16(&mut self, value: u16) -> Result<(), EmitError> {
        self.put(&value.to_be_bytes())
    }

    /// Octets written so far.
    pub(crate) fn written(&self) -> usize {
        self.written
    }
}

/// Shows octets as an escaped string in `Debug` output.
pub(crate) struct Text<'a>(pub(crate) &'a [u8]);

impl core::fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// The one-octet length of `value`, or [`EmitError::FieldTooLong`].
pub(crate) fn len_u8(value: &[u8], field: Field) -> Result<u8, EmitError> {
    u8::try_from(value.len()).map_err(|_| EmitError::FieldTooLong(field))
}

/// The two-octet length of `value`, or [`EmitError::FieldTooLong`].
pub(crate) fn len_u16(value: &[u8], field: Field) -> Result<u16, EmitError> {
    u16::try_from(value.len()).map_err(|_| EmitError::FieldTooLong(field))
}

/// Fails with [`EmitError::BufferTooSmall`] unless `buffer` holds `needed` octets.
pub(crate) fn ensure_room(buffer: &[u8], needed: usize) -> Result<(), EmitError> {
    if buffer.len() < needed {
        return Err(EmitError::BufferTooSmall {
            needed,
            available: buffer.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_names_the_field_that_overran() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.array::<2>(Field::Fixed), Ok(&[1, 2]));
        assert_eq!(r.take(2, Field::User), Err(Error::Overrun(Field::User)));
        assert_eq!(r.rest(), &[3]);
        assert_eq!(r.take(1, Field::Port), Ok(&[3][..]));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn reader_finish_counts_trailing_octets() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.take(1, Field::Data).unwrap();
        assert_eq!(r.finish(), Err(Error::TrailingOctets { extra: 2 }));
    }

    #[test]
    fn writer_appends_and_refuses_overflow() {
        let mut buf = [0xa5u8; 4];
        let mut w = Writer::new(&mut buf);
        w.u8(1).unwrap();
        w.u16(0x0203).unwrap();
        assert_eq!(w.written(), 3);
        assert_eq!(
            w.put(&[4, 5]),
            Err(EmitError::BufferTooSmall {
                needed: 5,
                available: 4,
            })
        );
        assert_eq!(buf, [1, 2, 3, 0xa5]);
    }

    #[test]
    fn text_escapes() {
        assert_eq!(std::format!("{:?}", Text(b"a\"\x01")), r#""a\"\x01""#);
    }

    #[test]
    fn lengths_refuse_what_does_not_fit() {
        assert_eq!(len_u8(&[0; 255], Field::User), Ok(255));
        assert_eq!(
            len_u8(&[0; 256], Field::User),
            Err(EmitError::FieldTooLong(Field::User))
        );
        assert_eq!(len_u16(&[0; 300], Field::Data), Ok(300));
        assert_eq!(
            len_u16(&[0; 65536], Field::Data),
            Err(EmitError::FieldTooLong(Field::Data))
        );
    }
}
