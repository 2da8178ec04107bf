//! Argument-value pairs of authorization and accounting bodies (RFC 8907 §6.1, §6.2, §7.1).

use core::fmt;

use super::{
    EmitError, Error, Field,
    codec::{Reader, Writer},
};

/// Separates the name of a mandatory argument from its value (RFC 8907 §6.1).
const MANDATORY: u8 = b'=';
/// Separates the name of an optional argument from its value (RFC 8907 §6.1).
const OPTIONAL: u8 = b'*';

/// One argument: `name=value` (mandatory) or `name*value` (optional) (RFC 8907 §6.1). The name
/// ends at the first `=` or `*`; the value may hold either.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arg<'a> {
    name: &'a [u8],
    value: &'a [u8],
    mandatory: bool,
}

impl<'a> Arg<'a> {
    /// A mandatory argument, `name=value`.
    pub const fn mandatory(name: &'a [u8], value: &'a [u8]) -> Arg<'a> {
        Arg {
            name,
            value,
            mandatory: true,
        }
    }

    /// An optional argument, `name*value`.
    pub const fn optional(name: &'a [u8], value: &'a [u8]) -> Arg<'a> {
        Arg {
            name,
            value,
            mandatory: false,
        }
    }

    /// Splits one encoded argument at its first `=` or `*`; `None` if it has neither
    /// (RFC 8907 §6.1).
    pub fn parse(encoded: &'a [u8]) -> Option<Arg<'a>> {
        let at = encoded
            .iter()
            .position(|&octet| octet == MANDATORY || octet == OPTIONAL)?;
        let (name, rest) = encoded.split_at_checked(at)?;
        let (&separator, value) = rest.split_first()?;
        Some(Arg {
            name,
            value,
            mandatory: separator == MANDATORY,
        })
    }

    /// The attribute name, before the separator.
    pub const fn name(&self) -> &'a [u8] {
        self.name
    }

    /// The value, after the separator.
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Whether the argument is mandatory (`=`) rather than optional (`*`).
    pub const fn is_mandatory(&self) -> bool {
        self.mandatory
    }

    /// The separator octet: `=` or `*`.
    pub const fn separator(&self) -> u8 {
        if self.mandatory { MANDATORY } else { OPTIONAL }
    }

    /// Octets on the wire: name, separator, value.
    pub const fn encoded_len(&self) -> usize {
        self.name.len() + 1 + self.value.len()
    }
}

impl fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}{}{}\"",
            self.name.escape_ascii(),
            char::from(self.separator()),
            self.value.escape_ascii()
        )
    }
}

/// The arguments of a body: a lazy iterator over [`Arg`] that borrows either the received
/// body or a caller's slice. Two `Args` are equal when they yield the same arguments.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    inner: Inner<'a>,
}

#[derive(Clone, Copy)]
enum Inner<'a> {
    /// As received: arg_1_len .. arg_N_len, and the arguments back to back. Every argument
    /// fits and has a separator, checked by [`Args::parse`].
    Wire { lens: &'a [u8], values: &'a [u8] },
    /// Given by the caller.
    List(&'a [Arg<'a>]),
}

impl<'a> Args<'a> {
    /// The arguments of `list`, to emit.
    pub const fn new(list: &'a [Arg<'a>]) -> Args<'a> {
        Args {
            inner: Inner::List(list),
        }
    }

    /// No arguments.
    pub const fn empty() -> Args<'a> {
        Args::new(&[])
    }

    /// arg_cnt: the number of arguments.
    pub const fn len(&self) -> usize {
        match self.inner {
            Inner::Wire { lens, .. } => lens.len(),
            Inner::List(list) => list.len(),
        }
    }

    /// Whether there are no arguments.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arguments in order.
    pub fn iter(&self) -> ArgsIter<'a> {
        ArgsIter {
            inner: match self.inner {
                Inner::Wire { lens, values } => IterInner::Wire {
                    lens: lens.iter(),
                    values,
                },
                Inner::List(list) => IterInner::List(list.iter()),
            },
        }
    }

    /// The first argument named `name`.
    pub fn find(&self, name: &[u8]) -> Option<Arg<'a>> {
        self.iter().find(|arg| arg.name() == name)
    }

    /// Reads the argument values announced by `lens` (arg_1_len .. arg_N_len) off `reader`,
    /// checking each fits the body and has a separator (RFC 8907 §6.1).
    pub(crate) fn parse(lens: &'a [u8], reader: &mut Reader<'a>) -> Result<Args<'a>, Error> {
        let all = reader.rest();
        let mut rest = all;
        for (index, &len) in (0..=u8::MAX).zip(lens) {
            // RFC 8907 §6.1: arg_N_len octets of arg_N follow the other fields.
            let (arg, tail) = rest
                .split_at_checked(usize::from(len))
                .ok_or(Error::Overrun(Field::Arg(index)))?;
            // RFC 8907 §6.1: an argument is name=value or name*value.
            if !arg
                .iter()
                .any(|&octet| octet == MANDATORY || octet == OPTIONAL)
            {
                return Err(Error::ArgSeparator(index));
            }
            rest = tail;
        }
        let values = reader.take(all.len() - rest.len(), Field::ArgLengths)?;
        Ok(Args {
            inner: Inner::Wire { lens, values },
        })
    }

    /// arg_cnt as one octet, after checking every argument can be written: at most 255
    /// arguments of at most 255 octets, with no separator in a name (RFC 8907 §6.1). Also
    /// returns the octets the values take.
    pub(crate) fn check(&self) -> Result<(u8, usize), EmitError> {
        let count =
            u8::try_from(self.len()).map_err(|_| EmitError::FieldTooLong(Field::ArgCount))?;
        let mut values_len = 0;
        for (index, arg) in (0..=u8::MAX).zip(self.iter()) {
            if arg.encoded_len() > usize::from(u8::MAX) {
                return Err(EmitError::FieldTooLong(Field::Arg(index)));
            }
            if arg
                .name
                .iter()
                .any(|&octet| octet == MANDATORY || octet == OPTIONAL)
            {
                return Err(EmitError::ArgName(index));
            }
            values_len += arg.encoded_len();
        }
        Ok((count, values_len))
    }

    /// Writes arg_1_len .. arg_N_len. [`Args::check`] must have passed.
    pub(crate) fn emit_lens(&self, writer: &mut Writer<'_>) -> Result<(), EmitError> {
        for (index, arg) in (0..=u8::MAX).zip(self.iter()) {
            let len = u8::try_from(arg.encoded_len())
                .map_err(|_| EmitError::FieldTooLong(Field::Arg(index)))?;
            writer.u8(len)?;
        }
        Ok(())
    }

    /// Writes the arguments back to back. [`Args::check`] must have passed.
    pub(crate) fn emit_values(&self, writer: &mut Writer<'_>) -> Result<(), EmitError> {
        for arg in self.iter() {
            writer.put(arg.name)?;
            writer.u8(arg.separator())?;
            writer.put(arg.value)?;
        }
        Ok(())
    }
}

impl Default for Args<'_> {
    fn default() -> Self {
        Args::empty()
    }
}

impl PartialEq for Args<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Args<'_> {}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Args<'a> {
    type Item = Arg<'a>;
    type IntoIter = ArgsIter<'a>;

    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Args<'a> {
    type Item = Arg<'a>;
    type IntoIter = ArgsIter<'a>;

    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Args`].
#[derive(Debug, Clone)]
pub struct ArgsIter<'a> {
    inner: IterInner<'a>,
}

#[derive(Debug, Clone)]
enum IterInner<'a> {
    Wire {
        lens: core::slice::Iter<'a, u8>,
        values: &'a [u8],
    },
    List(core::slice::Iter<'a, Arg<'a>>),
}

impl<'a> Iterator for ArgsIter<'a> {
    type Item = Arg<'a>;

    fn next(&mut self) -> Option<Arg<'a>> {
        match &mut self.inner {
            IterInner::Wire { lens, values } => {
                let &len = lens.next()?;
                // Args::parse checked that every argument fits and has a separator, so
                // neither step fails; if one did, the iteration would end early.
                let (encoded, rest) = values.split_at_checked(usize::from(len))?;
                *values = rest;
                Arg::parse(encoded)
            }
            IterInner::List(list) => list.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = match &self.inner {
            IterInner::Wire { lens, .. } => lens.len(),
            IterInner::List(list) => list.len(),
        };
        (len, Some(len))
    }
}

impl ExactSizeIterator for ArgsIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_at_the_first_separator() {
        let arg = Arg::parse(b"service=shell").unwrap();
        assert_eq!(arg.name(), b"service");
        assert_eq!(arg.value(), b"shell");
        assert!(arg.is_mandatory());

        let arg = Arg::parse(b"idletime*30").unwrap();
        assert_eq!(arg.name(), b"idletime");
        assert_eq!(arg.value(), b"30");
        assert!(!arg.is_mandatory());

        let arg = Arg::parse(b"cmd-arg=a*b=c").unwrap();
        assert_eq!((arg.name(), arg.value()), (&b"cmd-arg"[..], &b"a*b=c"[..]));
        assert!(arg.is_mandatory());

        let arg = Arg::parse(b"a*b=c").unwrap();
        assert_eq!((arg.name(), arg.value()), (&b"a"[..], &b"b=c"[..]));
        assert!(!arg.is_mandatory());

        let arg = Arg::parse(b"=").unwrap();
        assert_eq!((arg.name(), arg.value()), (&b""[..], &b""[..]));

        assert_eq!(Arg::parse(b"noseparator"), None);
        assert_eq!(Arg::parse(b""), None);
    }

    #[test]
    fn wire_args_iterate_lazily_and_exactly() {
        let body = b"service=shellpriv-lvl*15xyz";
        let mut reader = Reader::new(body);
        let args = Args::parse(&[13, 11], &mut reader).unwrap();
        assert_eq!(reader.rest(), b"xyz");
        assert_eq!(args.len(), 2);
        let mut iter = args.iter();
        assert_eq!(iter.len(), 2);
        assert_eq!(iter.next(), Some(Arg::mandatory(b"service", b"shell")));
        assert_eq!(iter.next(), Some(Arg::optional(b"priv-lvl", b"15")));
        assert_eq!(iter.next(), None);
        assert_eq!(args.find(b"priv-lvl").map(|a| a.value()), Some(&b"15"[..]));
        assert_eq!(args.find(b"cmd"), None);
        let list = [
            Arg::mandatory(b"service", b"shell"),
            Arg::optional(b"priv-lvl", b"15"),
        ];
        assert_eq!(args, Args::new(&list));
        assert_ne!(args, Args::new(&list[..1]));
    }

    #[test]
    fn parse_names_the_argument_that_overran() {
        let mut reader = Reader::new(b"a=1b=22");
        assert_eq!(
            Args::parse(&[3, 5], &mut reader).err(),
            Some(Error::Overrun(Field::Arg(1)))
        );
        let mut reader = Reader::new(b"a=1b22");
        assert_eq!(
            Args::parse(&[3, 3], &mut reader).err(),
            Some(Error::ArgSeparator(1))
        );
        let mut reader = Reader::new(b"");
        assert_eq!(
            Args::parse(&[0], &mut reader).err(),
            Some(Error::ArgSeparator(0))
        );
    }

    #[test]
    fn check_refuses_what_cannot_be_written() {
        let long = [b'v'; 254];
        let list = [Arg::mandatory(b"a", &long)];
        assert_eq!(
            Args::new(&list).check(),
            Err(EmitError::FieldTooLong(Field::Arg(0)))
        );
        let list = [Arg::mandatory(b"", &long[..253])];
        assert_eq!(Args::new(&list).check(), Ok((1, 254)));
        let list = [Arg::mandatory(b"ok", b""), Arg::optional(b"a=b", b"c")];
        assert_eq!(Args::new(&list).check(), Err(EmitError::ArgName(1)));
        let many = [Arg::mandatory(b"a", b"b"); 256];
        assert_eq!(
            Args::new(&many).check(),
            Err(EmitError::FieldTooLong(Field::ArgCount))
        );
        assert_eq!(Args::new(&many[..255]).check(), Ok((255, 765)));
    }

    #[test]
    fn emit_writes_lengths_and_values() {
        let list = [
            Arg::mandatory(b"service", b"shell"),
            Arg::optional(b"x", b""),
        ];
        let args = Args::new(&list);
        let mut buf = [0xa5u8; 20];
        let mut writer = Writer::new(&mut buf);
        args.emit_lens(&mut writer).unwrap();
        args.emit_values(&mut writer).unwrap();
        assert_eq!(writer.written(), 17);
        assert_eq!(&buf, b"\x0d\x02service=shellx*\xa5\xa5\xa5");
    }

    #[test]
    fn debug_shows_the_encoded_form() {
        let list = [Arg::mandatory(b"a", b"b\n"), Arg::optional(b"c", b"d")];
        assert_eq!(
            std::format!("{:?}", Args::new(&list)),
            r#"["a=b\n", "c*d"]"#
        );
    }
}
