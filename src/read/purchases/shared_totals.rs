//! The LTV totals of a large run in dynamic shared memory.
//!
//! Without it every parallel worker builds its own 64 bytes per user, encodes them, sends them
//! through the Gather queue, and the leader decodes and adds them up, which cost more than the
//! fold (BENCHMARKS.md, "Measurements behind the code"). Instead the leader creates one segment
//! of slots before the orders query and puts its handle, with a random key, in front of the
//! users bytes that every process receives; each process attaches, checks the key, and folds
//! its orders into the segment under the slots' locks (core `ltv::totals`). Only the run counts
//! travel back through the aggregate.

// The totals live in a dynamic shared memory segment that several processes map.
#![allow(unsafe_code)]

use cda_analytics_core::ltv::{OrderTotals, SLOT_BYTES, UserTable};
use pgrx::pg_sys;

/// In front of the users bytes: the tag, the segment's handle and its key.
const TAG: &[u8; 4] = b"CDAS";
const PREFIX_LEN: usize = 4 + 4 + 16;
/// The segment starts with the magic, the key and the slot count, padded to one slot so that
/// the slots that follow are aligned.
const MAGIC: &[u8; 8] = b"CDATOTS1";
const HEADER: usize = SLOT_BYTES;
/// Below this many slots (1 MB) each process keeps its own totals: the sums are small to send,
/// and a single user's run should not pay for the system calls of a segment.
const MIN_SHARED_SLOTS: usize = 16_384;

/// A segment of shared totals, attached in the leader until [`Segment::detach`] (or the end of
/// the transaction, on an error).
pub struct Segment {
    seg: Attached,
    prefix: [u8; PREFIX_LEN],
}

/// Creates the shared totals for `users`, with the leader's view of them, or None when each
/// process should keep its own: a small run, no parallel workers, or too little free shared
/// memory (a container's 64 MB /dev/shm, say), where a segment would fail the refresh.
pub fn create(users: &UserTable) -> Option<(Segment, OrderTotals)> {
    let bytes = OrderTotals::shared_bytes(users);
    // SAFETY: a plain read of a GUC variable.
    let workers = unsafe { pg_sys::max_parallel_workers_per_gather };
    if users.slot_count() < MIN_SHARED_SLOTS || workers <= 0 || !room_for(HEADER + bytes) {
        return None;
    }
    let mut key = [0u8; 16];
    // SAFETY: fills the buffer it is given.
    if !unsafe { pg_sys::pg_strong_random(key.as_mut_ptr().cast(), key.len()) } {
        return None;
    }
    // SAFETY: a new segment in the current resource owner, which detaches it if the
    // transaction fails before Segment::detach; NULL only when out of segment slots.
    unsafe {
        let seg = pg_sys::dsm_create(
            HEADER + bytes,
            pg_sys::DSM_CREATE_NULL_IF_MAXSEGMENTS as i32,
        );
        if seg.is_null() {
            return None;
        }
        let base = pg_sys::dsm_segment_address(seg).cast::<u8>();
        let header = std::slice::from_raw_parts_mut(base, HEADER);
        header.fill(0);
        header[..8].copy_from_slice(MAGIC);
        header[8..24].copy_from_slice(&key);
        header[24..32].copy_from_slice(&(users.slot_count() as u64).to_le_bytes());
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[..4].copy_from_slice(TAG);
        prefix[4..8].copy_from_slice(&pg_sys::dsm_segment_handle(seg).to_le_bytes());
        prefix[8..].copy_from_slice(&key);
        match OrderTotals::over_shared(base.add(HEADER), bytes, users, true) {
            Ok(view) => Some((
                Segment {
                    seg: Attached(seg),
                    prefix,
                },
                view,
            )),
            Err(_) => {
                pg_sys::dsm_detach(seg);
                None
            }
        }
    }
}

impl Segment {
    /// The bytes the orders aggregate receives: the segment's handle and key, then the users.
    pub fn users_param(&self, users: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(PREFIX_LEN + users.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(users);
        out
    }

    /// Unmaps the segment, which goes away with its last process. Every view of it must be gone.
    pub fn detach(self) {
        self.seg.detach();
    }
}

/// The segment named in front of the users bytes (handle and key), and the users bytes.
pub fn split(bytes: &[u8]) -> (Option<(u32, &[u8])>, &[u8]) {
    match bytes.split_first_chunk::<PREFIX_LEN>() {
        Some((prefix, users)) if prefix.starts_with(TAG) => {
            let handle = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
            (Some((handle, &bytes[8..PREFIX_LEN])), users)
        }
        _ => (None, bytes),
    }
}

/// The users and the totals a process folds into, from the bytes every process of a read
/// receives (see [`totals_for`]).
pub fn receive(bytes: &[u8]) -> Result<(UserTable, OrderTotals, Option<Attached>), String> {
    let users = UserTable::decode(split(bytes).1)?;
    let (totals, attached) = totals_for(bytes, &users)?;
    Ok((users, totals, attached))
}

/// The totals a process folds `users`' orders into: the shared totals named in front of the
/// users bytes (with the segment, when it was attached here), else totals of its own.
pub fn totals_for(
    bytes: &[u8],
    users: &UserTable,
) -> Result<(OrderTotals, Option<Attached>), String> {
    match split(bytes).0 {
        None => Ok((OrderTotals::for_users(users), None)),
        Some((handle, key)) => attach(handle, key, users),
    }
}

/// A segment this process mapped (created, or attached to fold into), to detach once done.
pub struct Attached(*mut pg_sys::dsm_segment);

impl Attached {
    /// Unmaps the segment. Every view of it must be gone.
    pub fn detach(self) {
        // SAFETY: mapped by create or attach and not detached since.
        unsafe { pg_sys::dsm_detach(self.0) };
    }
}

/// This process's view of the shared totals named by `handle` and `key`, for `users`, with the
/// segment when it was attached here (a process that created or already mapped it keeps it).
pub fn attach(
    handle: u32,
    key: &[u8],
    users: &UserTable,
) -> Result<(OrderTotals, Option<Attached>), String> {
    let bytes = OrderTotals::shared_bytes(users);
    // SAFETY: a mapping found or made in this process, kept until it detaches at its
    // transaction's end (a worker's exit); its contents are checked before any write.
    unsafe {
        let mut seg = pg_sys::dsm_find_mapping(handle);
        let mut attached = None;
        if seg.is_null() {
            seg = pg_sys::dsm_attach(handle);
            if seg.is_null() {
                return Err("the shared totals are gone".into());
            }
            attached = Some(Attached(seg));
        }
        let fail = |attached: Option<Attached>, e: &str| {
            if let Some(a) = attached {
                a.detach();
            }
            Err(e.to_string())
        };
        if pg_sys::dsm_segment_map_length(seg) < HEADER + bytes {
            return fail(attached, "the shared totals are too small");
        }
        let base = pg_sys::dsm_segment_address(seg).cast::<u8>();
        let header = std::slice::from_raw_parts(base, HEADER);
        let slots = (users.slot_count() as u64).to_le_bytes();
        if &header[..8] != MAGIC || &header[8..24] != key || header[24..32] != slots {
            return fail(attached, "the shared memory is not this run's totals");
        }
        match OrderTotals::over_shared(base.add(HEADER), bytes, users, false) {
            Ok(view) => Ok((view, attached)),
            Err(e) => fail(attached, &e),
        }
    }
}

/// Whether `bytes` more of POSIX shared memory (/dev/shm on Linux) leave some to spare. Other
/// kinds of dynamic shared memory are not checked here.
fn room_for(bytes: usize) -> bool {
    // SAFETY: a plain read of a GUC variable.
    if unsafe { pg_sys::dynamic_shared_memory_type } != pg_sys::DSM_IMPL_POSIX as i32 {
        return true;
    }
    // SAFETY: statvfs fills the zeroed struct it is given.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c"/dev/shm".as_ptr(), &mut st) != 0 {
            return false;
        }
        let free = (st.f_bavail as u128) * (st.f_frsize as u128);
        free >= 2 * bytes as u128
    }
}
