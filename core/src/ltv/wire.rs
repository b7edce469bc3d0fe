//! Little-endian byte strings for the states that cross process boundaries in a parallel read
//! (PostgreSQL passes them as bytea). Every read is bounds-checked: bytes from elsewhere are
//! never trusted to be well formed.

pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Writer(Vec::with_capacity(n))
    }
    pub fn tag(&mut self, tag: &[u8; 4]) {
        self.0.extend_from_slice(tag);
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, v: &str) {
        self.u64(v.len() as u64);
        self.0.extend_from_slice(v.as_bytes());
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.bytes.len() < N {
            return Err("truncated state".into());
        }
        let (head, rest) = self.bytes.split_at(N);
        self.bytes = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }

    pub fn tag(&mut self, tag: &[u8; 4]) -> Result<(), String> {
        if &self.take::<4>()? != tag {
            return Err("not a state of this kind".into());
        }
        Ok(())
    }
    pub fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.take()?))
    }
    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    pub fn str(&mut self) -> Result<String, String> {
        let n = self.len(1)?;
        let (text, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    /// A count of items of `item_size` bytes each, checked against the bytes left so that a
    /// corrupt count cannot make the caller allocate wildly.
    pub fn len(&mut self, item_size: usize) -> Result<usize, String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "bad length".to_string())?;
        if n.checked_mul(item_size)
            .is_none_or(|b| b > self.bytes.len())
        {
            return Err("truncated state".into());
        }
        Ok(n)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub fn end(&self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err("trailing bytes in state".into())
        }
    }
}
