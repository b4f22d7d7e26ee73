package io.vringj.dma;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.StampedLock;

/**
 * A device's IOTLB, after Linux's {@code vhost_iotlb} and DPDK's vhost IOTLB cache: an interval
 * map from IOVA ranges to addresses in the device's own memory view ({@code uaddr}, resolved
 * through a downstream {@link AddressSpace}) with a permission each.
 *
 * <pre>
 *   entries, sorted by start, never overlapping (an UPDATE trims or splits what it overlaps,
 *   as vhost's interval tree keeps the parts an UPDATE does not cover):
 *     start[i] .. last[i]  →  uaddr[i]   perm[i]   age[i] (insertion order, for eviction)
 *
 *   tryTranslate(iova, length, access, sink)
 *     no entry covers an address        → MISS, a return value (one MISS message per pending page)
 *     an entry lacks the permission     → FAULT (an ACCESS_FAIL message; never a miss)
 *     otherwise one piece per entry crossed, in IOVA order, through the downstream space
 *
 *   the hit path: the hot entry (a copy of the entry last inserted, kept by the writers), else
 *   the entry the page's hint names (hints: a direct-mapped table of {@value #HINT_SLOTS} ints,
 *   IOVA page → the entry last found there); a range inside it with the permission is a hit
 *   after one range check (no search); any other range walks the entries (hint, last entry,
 *   binary search)
 *
 *   pending MISSes: a direct-mapped table of {@value #PENDING_SLOTS} pages → perm; a miss for a
 *   page already there costs one probe; a new page takes its slot (what it displaces may be
 *   asked for again: a duplicate MISS is harmless, a lost one is not possible)
 * </pre>
 *
 * <p><b>Capacity.</b> At most {@link #capacity()} entries (default {@value #DEFAULT_CAPACITY},
 * as Linux and DPDK); an UPDATE into a full IOTLB evicts the oldest entry (Linux's policy).
 *
 * <p><b>Epochs.</b> Every UPDATE and INVALIDATE moves {@link #epoch()}, what a parked device
 * queue waits on. {@link #invalidationEpoch()} moves only when an entry is taken away or changed
 * (an INVALIDATE that removed something, an UPDATE that trimmed, split or replaced an entry, an
 * eviction): only then can a translation handed out earlier be stale, so it is what a device
 * queue's ring-area translation cache compares (Linux resets that cache on every update and
 * invalidation; an UPDATE into empty IOVA space and an INVALIDATE of entries the rings do not use
 * leave it standing here). Each step of the invalidation epoch records the IOVA range it
 * touched in a log of the last {@value #CHANGE_LOG} steps, so {@link #unchangedSince} can tell a
 * queue that its ring areas were not touched by the steps since it translated them.
 *
 * <pre>
 *   change log, slot = step &amp; (CHANGE_LOG - 1):  changeStep[slot]  changeFirst[slot] .. changeLast[slot]
 *   (the smallest range around every entry the step removed or changed; written under the
 *   write lock before the step is published by the release store of invalidationEpoch)
 * </pre>
 *
 * <p><b>Invalidation against in-flight work.</b> A device worker brackets everything it does with
 * translations — popping a chain, working on its pieces, adding it used and publishing — with
 * {@link Worker#enter()} / {@link Worker#exit()}. {@link #invalidate} removes the entries, then
 * waits until every worker that was inside a critical section has left it; so once it returns,
 * no worker uses a translation from the removed range. A worker must finish a chain in the
 * section that popped it, and must not call {@code invalidate} from inside its own section
 * (its own section is not waited for).
 *
 * <p><b>Threads.</b> {@link #tryTranslate} may run on any number of device threads at once (an
 * optimistic read, falling back to the read lock when a writer came in between; no allocation,
 * hit or miss); updates and invalidations may come from any thread and are serialised by a write
 * lock. Message sinks are called outside the lock.
 */
public final class DeviceIotlb {
    /** Default capacity: 2048 entries, as Linux's vhost and DPDK. */
    public static final int DEFAULT_CAPACITY = 2048;

    private final AddressSpace downstream;
    private final int capacity;
    private final StampedLock lock = new StampedLock();

    // guarded by lock
    private final long[] start;
    private final long[] last;
    private final long[] uaddr;
    private final byte[] perm;
    private final long[] age;
    private int count;
    private long nextAge;

    /** Every change; written under the write lock with release stores (the unlock fences once, after). */
    private volatile long epoch;
    /** Moves only when an entry is removed or changed; see the class comment. Written as {@link #epoch}. */
    private volatile long invalidationEpoch;
    private static final VarHandle EPOCH;
    private static final VarHandle INVALIDATION_EPOCH;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            EPOCH = lookup.findVarHandle(DeviceIotlb.class, "epoch", long.class);
            INVALIDATION_EPOCH = lookup.findVarHandle(DeviceIotlb.class, "invalidationEpoch", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Steps of {@link #invalidationEpoch()} the change log remembers (a power of two). */
    public static final int CHANGE_LOG = 64;
    // guarded by lock: the range each recent invalidation-epoch step touched
    private final long[] changeStep = new long[CHANGE_LOG];
    private final long[] changeFirst = new long[CHANGE_LOG];
    private final long[] changeLast = new long[CHANGE_LOG];
    // guarded by lock: what the write-locked operation in progress removed or changed so far
    private boolean changing;
    private long changingFirst;
    private long changingLast;
    private volatile IotlbMessageSink sink;
    /** The registered workers; replaced whole under {@code this} on (un)registration, read without allocating. */
    private volatile Worker[] workers = new Worker[0];

    /** Slots of the pending-MISS table: at most this many pages are remembered as asked for. */
    public static final int PENDING_SLOTS = 4096;
    private static final long PAGE = IovaAllocator.PAGE_SIZE;
    private static final long PENDING_VALID = 0x800;

    // MISSes sent and not yet answered: slot = hash(page), value = page | VALID | perm bits (a page
    // is 4 KiB aligned, so its low 12 bits are free), 0 when empty; guarded by pendingLock
    private final Object pendingLock = new Object();
    private final long[] pending = new long[PENDING_SLOTS];
    /** Written under pendingLock; volatile so an UPDATE with nothing to answer skips the lock. */
    private volatile int pendingCount;
    // guarded by lock (written only under the write lock, read under an optimistic stamp): a copy
    // of the entry last inserted, first .. first + reach → uaddr with perm; perm 0 when none (then
    // no access passes its permission test). Cleared by changedLocked when that entry is changed or
    // removed, so it is always a live entry or nothing
    private long hotFirst;
    private long hotReach;
    private long hotUaddr;
    private int hotPerm;

    /**
     * Slots of the hit hints (a power of two): the entry last found for an IOVA page, by the page's
     * low bits. A hint is only where to look first; the entry it names is checked under the stamp.
     */
    static final int HINT_SLOTS = 64;
    /**
     * The hit hints: slot = (iova &gt;&gt;&gt; 12) &amp; (HINT_SLOTS - 1) → index of the entry last found
     * (or inserted) for a page of that slot. Racy: written by readers and writers alike, one int at
     * a time (an int store is atomic, so a hint is always some index that was once right, within the
     * arrays); the fast path trusts only the entry it reads at that index, and only once
     * validate() says no writer came in between.
     */
    private final int[] hints = new int[HINT_SLOTS];

    // statistics; misses and faults are the slow path, so atomics cost nothing that matters
    private final AtomicLong misses = new AtomicLong();
    private final AtomicLong faults = new AtomicLong();
    private final AtomicLong evictions = new AtomicLong();

    /**
     * An IOTLB of {@value #DEFAULT_CAPACITY} entries.
     *
     * @param downstream how a {@code uaddr} from an UPDATE reaches memory (identity over guest
     *     memory in process; the vhost-user memory table in a back end)
     */
    public DeviceIotlb(AddressSpace downstream) {
        this(downstream, DEFAULT_CAPACITY);
    }

    /**
     * @param downstream how a {@code uaddr} from an UPDATE reaches memory
     * @param capacity the most entries, at least 1
     */
    public DeviceIotlb(AddressSpace downstream, int capacity) {
        this.downstream = Objects.requireNonNull(downstream, "downstream");
        if (capacity < 1) {
            throw new IllegalArgumentException("IOTLB capacity " + capacity + " must be at least 1");
        }
        this.capacity = capacity;
        // one spare slot: an UPDATE inside an entry splits it before the oldest is evicted
        start = new long[capacity + 1];
        last = new long[capacity + 1];
        uaddr = new long[capacity + 1];
        perm = new byte[capacity + 1];
        age = new long[capacity + 1];
    }

    /**
     * Sets where MISS and ACCESS_FAIL messages go; {@code null} sends none (the synchronous
     * resolver mode, where {@link IotlbAddressSpace} asks the IOMMU itself).
     *
     * @param sink the channel to the IOMMU side, or {@code null}
     */
    public void setMessageSink(IotlbMessageSink sink) {
        this.sink = sink;
    }

    /** @return the most entries this IOTLB holds */
    public int capacity() {
        return capacity;
    }

    /** @return how many entries it holds now */
    public int size() {
        long stamp = lock.readLock();
        try {
            return count;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    /** @return the translation epoch; it moves on every update and invalidation */
    public long epoch() {
        return epoch;
    }

    /**
     * @return the invalidation epoch: it moves only when an entry was removed or changed, so a
     *     translation handed out when it read some value is still what a new one would give
     *     while it reads the same value
     */
    public long invalidationEpoch() {
        // volatile load: pairs with the store in finishLocked, made after the change log entry
        return invalidationEpoch;
    }

    /**
     * Whether no entry that {@code [iova, iova + length)} overlaps was removed or changed since
     * {@link #invalidationEpoch()} read {@code since}: then a translation of that range handed out
     * at {@code since} is still current. False when it cannot tell (more than
     * {@value #CHANGE_LOG} steps since, or an update or invalidation running meanwhile).
     * Lock-free and allocation-free.
     *
     * @param since an earlier value of {@link #invalidationEpoch()}
     * @param iova the first IOVA of the range
     * @param length bytes, at least 1
     * @return true if every step since {@code since} left the range alone
     */
    public boolean unchangedSince(long since, long iova, long length) {
        if (length <= 0) {
            return false;
        }
        long rangeLast = iova + length - 1;
        // optimistic read: pairs with the write lock under which the log is written; the log
        // slots read are trusted only once validate() says no writer came in between
        long stamp = lock.tryOptimisticRead();
        long now = invalidationEpoch;
        long steps = now - since;
        if (steps < 0 || steps > CHANGE_LOG) {
            return false;
        }
        for (long step = since + 1; step <= now; step++) {
            int slot = (int) (step & (CHANGE_LOG - 1));
            if (changeStep[slot] != step) {
                return false;
            }
            if (Long.compareUnsigned(changeFirst[slot], rangeLast) <= 0
                && Long.compareUnsigned(iova, changeLast[slot]) <= 0) {
                return false;
            }
        }
        return lock.validate(stamp);
    }

    /** Widens the range the write-locked operation in progress removed or changed. Under the write lock. */
    private void changedLocked(long first, long lastAddr) {
        // the hot entry is a live one: if this change touches it, it is gone or different now
        if (hotPerm != 0 && Long.compareUnsigned(hotFirst, lastAddr) <= 0
            && Long.compareUnsigned(first, hotFirst + hotReach) <= 0) {
            hotPerm = 0;
        }
        if (!changing) {
            changing = true;
            changingFirst = first;
            changingLast = lastAddr;
            return;
        }
        if (Long.compareUnsigned(first, changingFirst) < 0) {
            changingFirst = first;
        }
        if (Long.compareUnsigned(lastAddr, changingLast) > 0) {
            changingLast = lastAddr;
        }
    }

    /**
     * Ends a write-locked operation: moves the epoch and, if it removed or changed an entry, logs
     * the range and moves the invalidation epoch. Under the write lock.
     */
    private void finishLocked() {
        if (changing) {
            long step = invalidationEpoch + 1;
            int slot = (int) (step & (CHANGE_LOG - 1));
            changeStep[slot] = step;
            changeFirst[slot] = changingFirst;
            changeLast[slot] = changingLast;
            changing = false;
            // release store after the log slot: pairs with the volatile load in
            // invalidationEpoch() / unchangedSince, so a reader of the new value sees the slot that
            // explains it (and the entries changed before it)
            INVALIDATION_EPOCH.setRelease(this, step);
        }
        // release store under the write lock: pairs with the volatile load in epoch(); a parked
        // queue that reads the new value sees the change and the MISSes it answered. The only
        // writer holds the write lock, so the increment is not lost; the unlock fences after it
        EPOCH.setRelease(this, epoch + 1);
    }

    /** @return how many translations missed */
    public long misses() {
        return misses.get();
    }

    /** @return how many translations faulted on a permission */
    public long faults() {
        return faults.get();
    }

    /** @return how many entries were evicted to make room */
    public long evictions() {
        return evictions.get();
    }

    /**
     * @return how many pages have a MISS sent and not yet answered by an UPDATE, as far as the
     *     bounded table remembers: at most {@value #PENDING_SLOTS}
     */
    public int pendingMisses() {
        synchronized (pendingLock) {
            return pendingCount;
        }
    }

    /**
     * Whether a MISS for {@code iova}'s page with {@code access} is pending (sent, not yet
     * answered by an UPDATE); a page displaced from the bounded table reads as not pending.
     *
     * @param iova an IOVA
     * @param access the access
     * @return whether a MISS covering it is remembered as pending
     */
    public boolean missPending(long iova, Access access) {
        long page = iova & ~(PAGE - 1);
        int bits = Permission.of(access).bits();
        synchronized (pendingLock) {
            long held = pending[pendingSlot(page)];
            return (held & ~(PAGE - 1)) == page && (held & PENDING_VALID) != 0 && (held & bits) == bits;
        }
    }

    /**
     * Translates {@code [iova, iova + length)} into pieces handed to {@code pieceSink}, the
     * throwing form of {@link #tryTranslate} (a miss builds an exception: for API users, not for
     * the device's hot path).
     *
     * @param iova the first IOVA
     * @param length bytes, at least 1
     * @param access read or write
     * @param pieceSink receives the pieces in IOVA order
     * @throws TranslationException MISS if some address of the range has no entry (a MISS
     *     message was sent unless one is already pending for its page); FAULT if an entry
     *     lacks the permission (an ACCESS_FAIL message was sent), the range wraps past 2^64, or
     *     the downstream space refuses the address
     */
    public void translate(long iova, long length, Access access, TranslationSink pieceSink) throws TranslationException {
        long left = tryTranslate(iova, length, access, pieceSink);
        if (left != 0) {
            throw new TranslationException(TranslationException.Kind.MISS, iova + length - left, left, access,
                "no IOTLB entry");
        }
    }

    /**
     * Translates {@code [iova, iova + length)} into pieces handed to {@code pieceSink}; a miss is
     * a return value. Allocation-free, hit or miss, and lock-free on a hit (an optimistic read
     * validated before the downstream space sees the entry): the hot entry (the one last
     * inserted) is tried first, then the entry last found for the IOVA's page (its hint), so a
     * range inside either costs one range check and one permission test, no search, however many
     * entries the IOTLB holds.
     *
     * @param iova the first IOVA
     * @param length bytes, at least 1
     * @param access read or write
     * @param pieceSink receives the pieces in IOVA order
     * @return 0 when every byte was delivered; otherwise the number of bytes left from the first
     *     address with no entry, {@code iova + length - result} (a MISS message was sent for it
     *     unless one is pending for its page)
     * @throws TranslationException FAULT if an entry lacks the permission (an ACCESS_FAIL message
     *     was sent), the range wraps past 2^64, or the downstream space refuses the address
     */
    public long tryTranslate(long iova, long length, Access access, TranslationSink pieceSink)
        throws TranslationException {
        // the hit path, small enough to inline into the device queue's walker: the hot entry (the one
        // last inserted), one range check and one permission test; else the entry the page's hint
        // names (translateHinted), else the slow way (a range over several entries, a miss, a
        // fault, bad arguments, a writer meanwhile).
        // optimistic read: pairs with the write lock of update / invalidate; the entry read below is
        // used only once validate() says no writer came in between
        long stamp = lock.tryOptimisticRead();
        long offset = iova - hotFirst;
        long reach = hotReach;
        // hotPerm is 0 when there is no hot entry: no access passes its permission test
        if (covers(offset, length, reach) && (hotPerm & needBits(access)) != 0) {
            long ua = hotUaddr;
            if (lock.validate(stamp)) {
                downstream.translate(ua + offset, length, access, pieceSink);
                return 0;
            }
        }
        return translateHinted(iova, length, access, pieceSink);
    }

    /**
     * The second try of the hit path: the entry the page's hint names (in a device that takes
     * turns over many entries, as a premapped buffer pool does, that is the one it found there
     * last), one range check and one permission test; else {@link #translateSlow}.
     */
    private long translateHinted(long iova, long length, Access access, TranslationSink pieceSink)
        throws TranslationException {
        // optimistic read: pairs with the write lock of update / invalidate, as in tryTranslate
        long stamp = lock.tryOptimisticRead();
        int i = hints[hintSlot(iova)];
        long first = start[i];
        long offset = iova - first;
        long reach = last[i] - first;
        // i < count: a slot past the live entries keeps a removed entry's stale values
        if (i < count && covers(offset, length, reach) && (perm[i] & needBits(access)) != 0) {
            long ua = uaddr[i];
            if (lock.validate(stamp)) {
                downstream.translate(ua + offset, length, access, pieceSink);
                return 0;
            }
        }
        return translateSlow(iova, length, access, pieceSink);
    }

    /**
     * Whether {@code [offset, offset + length)} lies inside {@code [0, reach]}, unsigned: offset &lt;=
     * reach and length - 1 &lt;= reach - offset, with length at least 1 (so the range cannot wrap).
     */
    private static boolean covers(long offset, long length, long reach) {
        return length > 0 && Long.compareUnsigned(offset, reach) <= 0
            && Long.compareUnsigned(length - 1, reach - offset) <= 0;
    }

    /** The permission bit {@code access} needs: RO's for a read, WO's for a write. */
    private static int needBits(Access access) {
        return access == Access.READ ? PERM_READ : PERM_WRITE;
    }

    private static final int PERM_READ = Permission.RO.bits();
    private static final int PERM_WRITE = Permission.WO.bits();

    /** The hint slot of {@code iova}'s page. */
    private static int hintSlot(long iova) {
        return (int) (iova >>> 12) & (HINT_SLOTS - 1);
    }

    /** Remembers entry {@code i} for {@code iova}'s page; skips the store when it is already there (no shared line written per hit). */
    private void hint(long iova, int i) {
        int slot = hintSlot(iova);
        if (hints[slot] != i) {
            hints[slot] = i;
        }
    }

    /**
     * {@link #tryTranslate} for everything but a hit on the hinted entry: validates the arguments,
     * walks the range entry by entry (each found from the hint, the last entry, or a binary
     * search), reports a miss or a fault.
     */
    private long translateSlow(long iova, long length, Access access, TranslationSink pieceSink)
        throws TranslationException {
        if (length <= 0 || Long.compareUnsigned(iova, -length) > 0) {
            throw new TranslationException(TranslationException.Kind.FAULT, iova, length, access,
                "length must be at least 1 and the range must not wrap past 2^64");
        }
        int need = needBits(access);
        long addr = iova;
        long left = length;
        while (left > 0) {
            long entryStart;
            long entryLast;
            long entryUaddr;
            int entryPerm;
            // optimistic read: pairs with the write lock of update / invalidate; the values read
            // are used only once validate() says no writer came in between
            long stamp = lock.tryOptimisticRead();
            int i = floorNear(addr, hints[hintSlot(addr)]);
            boolean found = i >= 0 && Long.compareUnsigned(addr, last[i]) <= 0;
            entryStart = found ? start[i] : 0;
            entryLast = found ? last[i] : 0;
            entryUaddr = found ? uaddr[i] : 0;
            entryPerm = found ? perm[i] : 0;
            if (!lock.validate(stamp)) {
                // a writer came in between: look again under the read lock
                stamp = lock.readLock();
                try {
                    i = floor(addr);
                    found = i >= 0 && Long.compareUnsigned(addr, last[i]) <= 0;
                    entryStart = found ? start[i] : 0;
                    entryLast = found ? last[i] : 0;
                    entryUaddr = found ? uaddr[i] : 0;
                    entryPerm = found ? perm[i] : 0;
                } finally {
                    lock.unlockRead(stamp);
                }
            }
            if (!found) {
                miss(addr, access);
                return left;
            }
            hint(addr, i);
            if ((entryPerm & need) == 0) {
                throw fault(addr, left, access, Permission.ofBits(entryPerm));
            }
            // entryLast >= addr, so entryLast - addr + 1 is 1..2^64; a 2^64 span wraps to 0: treat as unbounded
            long span = entryLast - addr + 1;
            long n = span == 0 || Long.compareUnsigned(span, left) > 0 ? left : span;
            downstream.translate(entryUaddr + (addr - entryStart), n, access, pieceSink);
            addr += n;
            left -= n;
        }
        return 0;
    }

    /**
     * Whether {@code [iova, iova + length)} is wholly covered by entries that allow
     * {@code access} (what a parked request waits for).
     *
     * @param iova the first IOVA
     * @param length bytes, at least 1
     * @param access read or write
     * @return whether a translation would succeed as far as this IOTLB is concerned
     */
    public boolean covers(long iova, long length, Access access) {
        int need = access == Access.READ ? Permission.RO.bits() : Permission.WO.bits();
        long addr = iova;
        long left = length;
        long stamp = lock.readLock();
        try {
            while (left > 0) {
                int i = floor(addr);
                if (i < 0 || Long.compareUnsigned(addr, last[i]) > 0 || (perm[i] & need) == 0) {
                    return false;
                }
                long span = last[i] - addr + 1;
                long n = span == 0 || Long.compareUnsigned(span, left) > 0 ? left : span;
                addr += n;
                left -= n;
            }
            return true;
        } finally {
            lock.unlockRead(stamp);
        }
    }

    /**
     * {@link #floor}, trying first the entry {@code hint} (the one last found or inserted for the page) and
     * then the last entry: IOVAs handed out one after another (as the allocator does after a
     * flush) miss and insert right after the previous one or after every entry held, with no
     * search. Under the lock or an optimistic stamp, as {@link #floor}.
     */
    private int floorNear(long addr, int hint) {
        int n = Math.min(count, start.length);
        if (hint >= 0 && hint < n && Long.compareUnsigned(start[hint], addr) <= 0
            && (hint + 1 == n || Long.compareUnsigned(start[hint + 1], addr) > 0)) {
            return hint;
        }
        if (n > 0 && Long.compareUnsigned(start[n - 1], addr) <= 0) {
            return n - 1;
        }
        return floor(addr);
    }

    /**
     * Index of the entry with the greatest start ≤ addr (unsigned), or -1. Under the lock, or
     * under an optimistic stamp: then {@code count} may be torn, so it is clamped to the arrays.
     */
    private int floor(long addr) {
        int lo = 0;
        int hi = Math.min(count, start.length) - 1;
        int found = -1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(start[mid], addr) <= 0) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    /** Counts a miss and sends a MISS unless one is pending for the page with that access. O(1), allocation-free. */
    private void miss(long addr, Access access) {
        misses.incrementAndGet();
        IotlbMessageSink s = sink;
        if (s == null) {
            return;
        }
        Permission wanted = Permission.of(access);
        long page = addr & ~(PAGE - 1);
        boolean send;
        synchronized (pendingLock) {
            int slot = pendingSlot(page);
            long held = pending[slot];
            if ((held & ~(PAGE - 1)) == page && (held & PENDING_VALID) != 0) {
                send = (held & wanted.bits()) != wanted.bits();
                pending[slot] = held | wanted.bits();
            } else {
                send = true;
                if (held == 0) {
                    pendingCount++;
                }
                pending[slot] = page | PENDING_VALID | wanted.bits();
            }
        }
        if (send) {
            s.sendMiss(addr, wanted);
        }
    }

    private static int pendingSlot(long page) {
        long h = (page >>> 12) * 0x9E37_79B9_7F4A_7C15L;
        return (int) (h >>> (64 - Integer.numberOfTrailingZeros(PENDING_SLOTS)));
    }

    private TranslationException fault(long addr, long left, Access access, Permission has) {
        faults.incrementAndGet();
        IotlbMessageSink s = sink;
        if (s != null) {
            s.send(IotlbMessage.accessFail(addr, Permission.of(access)));
        }
        return new TranslationException(TranslationException.Kind.FAULT, addr, left, access,
            "the IOTLB entry allows " + has + " only");
    }

    /**
     * Adds the entry {@code [iova, iova + size) → uaddr} with {@code permission}, trimming the
     * entries it overlaps to what it does not cover (an entry around it splits in two), and
     * evicting the oldest entry if the IOTLB is full. Like vhost, an UPDATE over a live entry takes
     * effect at once and does not wait for the workers (only INVALIDATE does). Answers the
     * pending MISSes it covers. Moves the epoch.
     *
     * @param iova the first IOVA
     * @param size bytes, at least 1, not wrapping past 2^64
     * @param uaddr where {@code iova} maps to in the downstream space
     * @param permission RO, WO or RW
     * @throws IllegalArgumentException if the size is 0, the range wraps, or the permission is NONE
     */
    public void update(long iova, long size, long uaddr, Permission permission) {
        checkRange("UPDATE", iova, size);
        if (permission == Permission.NONE) {
            throw new IllegalArgumentException(String.format("UPDATE of [0x%x, +0x%x) with permission NONE", iova, size));
        }
        long stamp = lock.writeLock();
        try {
            insertLocked(iova, size, uaddr, permission);
            // before the epoch moves: a parked queue that sees the new epoch also sees its MISS answered
            answerPending(iova, size);
        } finally {
            // also when the change threw half way: what it removed or changed is logged and the
            // epochs move; a device queue that reads the new invalidation epoch (a volatile load in
            // refreshRings) translates its rings again if this UPDATE changed an entry under them
            finishLocked();
            lock.unlockWrite(stamp);
        }
    }

    private void insertLocked(long iova, long size, long ua, Permission permission) {
        long lastAddr = iova + size - 1;
        int pos = trimOverlappingLocked(iova, lastAddr);
        boolean evicted = false;
        while (count >= capacity) {
            int oldest = 0;
            for (int k = 1; k < count; k++) {
                if (age[k] < age[oldest]) {
                    oldest = k;
                }
            }
            changedLocked(start[oldest], last[oldest]);
            removeAt(oldest);
            evictions.incrementAndGet();
            evicted = true;
        }
        if (evicted) {
            pos = floor(iova) + 1;
        }
        insertAt(pos, iova, lastAddr, ua, (byte) permission.bits(), nextAge++);
        // the device that missed translates this entry next: the hot entry and the hint make that a hit
        hotFirst = iova;
        hotReach = size - 1;
        hotUaddr = ua;
        hotPerm = permission.bits();
        hint(iova, pos);
    }

    /** Inserts an entry at index {@code pos} (the caller keeps the order). Under the write lock. */
    private void insertAt(int pos, long first, long lastAddr, long ua, byte permBits, long entryAge) {
        int tail = count - pos;
        System.arraycopy(start, pos, start, pos + 1, tail);
        System.arraycopy(last, pos, last, pos + 1, tail);
        System.arraycopy(uaddr, pos, uaddr, pos + 1, tail);
        System.arraycopy(perm, pos, perm, pos + 1, tail);
        System.arraycopy(age, pos, age, pos + 1, tail);
        start[pos] = first;
        last[pos] = lastAddr;
        uaddr[pos] = ua;
        perm[pos] = permBits;
        age[pos] = entryAge;
        count++;
    }

    /**
     * Cuts {@code [first, lastAddr]} out of the entries, as an UPDATE does (vhost keeps the parts of
     * an old mapping that a new one does not cover): an entry inside the range goes, one that
     * sticks out keeps what sticks out, and one around the range splits in two (count may then
     * reach capacity + 1 for a moment). Under the write lock.
     *
     * @return where an entry for {@code [first, lastAddr]} goes now to keep the order
     */
    private int trimOverlappingLocked(long first, long lastAddr) {
        int i = floorNear(first, hints[hintSlot(first)]);
        if (i >= 0 && Long.compareUnsigned(last[i], first) >= 0 && Long.compareUnsigned(start[i], first) < 0) {
            // entry i starts before the range and reaches into it: keep its head
            long oldLast = last[i];
            changedLocked(start[i], oldLast);
            last[i] = first - 1;
            if (Long.compareUnsigned(oldLast, lastAddr) > 0) {
                // it also ends after the range: its tail becomes an entry of its own, same age
                insertAt(i + 1, lastAddr + 1, oldLast, uaddr[i] + (lastAddr + 1 - start[i]), perm[i], age[i]);
                return i + 1;
            }
            i++;
        } else if (i < 0 || Long.compareUnsigned(last[i], first) < 0) {
            i++;
        }
        while (i < count && Long.compareUnsigned(start[i], lastAddr) <= 0) {
            changedLocked(start[i], last[i]);
            if (Long.compareUnsigned(last[i], lastAddr) > 0) {
                // ends after the range: keep its tail (lastAddr < last[i], so lastAddr + 1 does not wrap)
                uaddr[i] += lastAddr + 1 - start[i];
                start[i] = lastAddr + 1;
                return i;
            }
            removeAt(i);
        }
        return i;
    }

    /**
     * Removes every entry overlapping [first, lastAddr] with one shift of the entries after them
     * (a flush of hundreds of ranges costs one move, not one per entry); returns how many. Under
     * the write lock.
     */
    private int removeOverlappingLocked(long first, long lastAddr) {
        int from = floor(first);
        if (from < 0 || Long.compareUnsigned(last[from], first) < 0) {
            from++;
        }
        // entries never overlap and are sorted, so those overlapping the range are one run
        int to = from;
        while (to < count && Long.compareUnsigned(start[to], lastAddr) <= 0) {
            to++;
        }
        if (to > from) {
            changedLocked(start[from], last[to - 1]);
            removeRange(from, to);
        }
        return to - from;
    }

    private void removeAt(int i) {
        removeRange(i, i + 1);
    }

    /** Removes the entries at indices [from, to). Under the write lock. */
    private void removeRange(int from, int to) {
        int tail = count - to;
        System.arraycopy(start, to, start, from, tail);
        System.arraycopy(last, to, last, from, tail);
        System.arraycopy(uaddr, to, uaddr, from, tail);
        System.arraycopy(perm, to, perm, from, tail);
        System.arraycopy(age, to, age, from, tail);
        count -= to - from;
    }

    /**
     * Forgets the pending MISSes of every page {@code [iova, iova + size)} touches, so a later miss
     * there asks again. Costs min(pages, {@value #PENDING_SLOTS}) probes. Under the write lock
     * (lock order: the write lock, then {@code pendingLock}; {@link #miss} takes only the latter).
     */
    private void answerPending(long iova, long size) {
        long firstPage = iova & ~(PAGE - 1);
        long lastPage = (iova + size - 1) & ~(PAGE - 1);
        // pages - 1 as an unsigned count; compared unsigned so a range of 2^52 pages works too
        long pagesMinusOne = (lastPage - firstPage) >>> 12;
        // volatile read: pairs with the write in miss(), made before its MISS is sent; the UPDATE
        // that answers a MISS comes after the send, so it sees the count. Reading 0 here is the
        // same as taking the lock before a racing miss() took it
        if (pendingCount == 0) {
            return;
        }
        synchronized (pendingLock) {
            if (pendingCount == 0) {
                return;
            }
            if (Long.compareUnsigned(pagesMinusOne, PENDING_SLOTS) >= 0) {
                for (int k = 0; k < PENDING_SLOTS; k++) {
                    long held = pending[k];
                    if (held != 0 && Long.compareUnsigned((held & ~(PAGE - 1)) - firstPage, lastPage - firstPage) <= 0) {
                        pending[k] = 0;
                        pendingCount--;
                    }
                }
                return;
            }
            for (long p = 0; Long.compareUnsigned(p, pagesMinusOne) <= 0; p++) {
                long page = firstPage + (p << 12);
                int slot = pendingSlot(page);
                long held = pending[slot];
                if (held != 0 && (held & ~(PAGE - 1)) == page) {
                    pending[slot] = 0;
                    pendingCount--;
                }
            }
        }
    }

    /**
     * Removes every entry overlapping {@code [iova, iova + size)} (whole entries, as Linux's
     * {@code vhost_iotlb_del_range}), moves the epoch, then waits until no worker is still in a
     * critical section it entered before the removal. Once this returns, no worker uses a
     * translation from the range.
     *
     * @param iova the first IOVA
     * @param size bytes, at least 1, not wrapping past 2^64
     * @return how many entries were removed
     * @throws IllegalArgumentException if the size is 0 or the range wraps
     */
    public int invalidate(long iova, long size) {
        checkRange("INVALIDATE", iova, size);
        int removed;
        long stamp = lock.writeLock();
        try {
            removed = removeOverlappingLocked(iova, iova + size - 1);
            // pairs with the device queue's epoch load: if the removed entries were under its
            // cached ring areas, they are dropped on its next pop (a queue inside a section is
            // waited out below)
        } finally {
            // also when the change threw half way: what it removed or changed is logged and the epochs move
            finishLocked();
            lock.unlockWrite(stamp);
        }
        awaitWorkers();
        return removed;
    }

    /** Removes every entry, moves the epoch, and waits for the workers as {@link #invalidate} does. */
    public void invalidateAll() {
        long stamp = lock.writeLock();
        try {
            if (count > 0) {
                changedLocked(start[0], last[count - 1]);
            }
            count = 0;
        } finally {
            // also when the change threw half way: what it removed or changed is logged and the epochs move
            finishLocked();
            lock.unlockWrite(stamp);
        }
        awaitWorkers();
    }

    /**
     * Applies a batch of UPDATE and INVALIDATE messages atomically (one write lock, one epoch
     * step), then waits for the workers if anything was invalidated.
     *
     * @param batch the messages, already validated
     * @param n how many of them
     */
    void applyBatch(IotlbMessage[] batch, int n) {
        boolean invalidated = false;
        long stamp = lock.writeLock();
        try {
            for (int k = 0; k < n; k++) {
                IotlbMessage m = batch[k];
                if (m.type() == IotlbMessage.Type.UPDATE) {
                    insertLocked(m.iova(), m.size(), m.uaddr(), m.permission());
                } else {
                    removeOverlappingLocked(m.iova(), m.iova() + m.size() - 1);
                    invalidated = true;
                }
            }
            // before the epoch moves, as in update: an UPDATE answers its MISSes even if an
            // INVALIDATE later in the batch removed the entry again (a retry then asks again)
            for (int k = 0; k < n; k++) {
                if (batch[k].type() == IotlbMessage.Type.UPDATE) {
                    answerPending(batch[k].iova(), batch[k].size());
                }
            }
        } finally {
            // also when the change threw half way: what it removed or changed is logged and the epochs move
            finishLocked();
            lock.unlockWrite(stamp);
        }
        if (invalidated) {
            awaitWorkers();
        }
    }

    /**
     * Checks an UPDATE / INVALIDATE range.
     *
     * @param what the message type, for the error
     * @param iova the first IOVA
     * @param size the size
     */
    static void checkRange(String what, long iova, long size) {
        if (size == 0) {
            throw new IllegalArgumentException(String.format(
                "%s of [0x%x, +0) has size 0; a zero-size %s is refused (it once hung the kernel's vhost worker)", what,
                iova, what));
        }
        // iova + size may reach 2^64 exactly (last = 2^64-1) but not beyond
        if (Long.compareUnsigned(iova, -size) > 0) {
            throw new IllegalArgumentException(String.format("%s of [0x%x, +0x%x) wraps past 2^64", what, iova, size));
        }
    }

    private void awaitWorkers() {
        Thread self = Thread.currentThread();
        // volatile read of the array: a worker registered later entered after the removal above
        Worker[] all = workers;
        for (int k = 0; k < all.length; k++) {
            Worker w = all[k];
            if (w.owner == self) {
                continue;
            }
            // volatile read: the removal above (a write-lock release) comes before this read in the
            // synchronization order, so a worker that enters after it sees the removal; one that
            // entered before it is odd here and is waited out
            long seen = w.sequence;
            if ((seen & 1) == 0) {
                continue;
            }
            int spins = 0;
            while (w.sequence == seen) {
                if (++spins < 100) {
                    Thread.onSpinWait();
                } else {
                    Thread.yield();
                }
            }
        }
    }

    /**
     * Registers the calling thread as a device worker whose critical sections invalidations
     * wait for.
     *
     * @return the worker; {@link Worker#close()} it when the thread stops
     */
    public Worker registerWorker() {
        Worker w = new Worker(this, Thread.currentThread());
        synchronized (this) {
            Worker[] grown = java.util.Arrays.copyOf(workers, workers.length + 1);
            grown[grown.length - 1] = w;
            workers = grown;
        }
        return w;
    }

    /**
     * One device worker's translation critical section: {@link #enter()} before popping,
     * {@link #exit()} after the chains popped are used and published. Owned by one thread.
     *
     * <pre>
     *   sequence  even: outside, odd: inside; only the owner writes it (volatile)
     * </pre>
     */
    public static final class Worker implements AutoCloseable {
        private final DeviceIotlb iotlb;
        private final Thread owner;
        private volatile long sequence;

        private Worker(DeviceIotlb iotlb, Thread owner) {
            this.iotlb = iotlb;
            this.owner = owner;
        }

        /** Enters the critical section; translations may be taken and used until {@link #exit()}. */
        public void enter() {
            // volatile store: ordered before the read lock of any translation in the section;
            // pairs with the volatile read in awaitWorkers
            sequence = sequence + 1;
        }

        /** Leaves the critical section; no translation taken inside may be used afterwards. */
        public void exit() {
            // volatile store: every use of a translation above happens-before an invalidator
            // that sees the new value returns
            sequence = sequence + 1;
        }

        /** @return whether the owner is inside its critical section */
        public boolean inside() {
            return (sequence & 1) != 0;
        }

        /** Unregisters the worker (it must be outside its critical section). */
        @Override
        public void close() {
            synchronized (iotlb) {
                Worker[] all = iotlb.workers;
                for (int k = 0; k < all.length; k++) {
                    if (all[k] == this) {
                        Worker[] shrunk = new Worker[all.length - 1];
                        System.arraycopy(all, 0, shrunk, 0, k);
                        System.arraycopy(all, k + 1, shrunk, k, all.length - k - 1);
                        iotlb.workers = shrunk;
                        return;
                    }
                }
            }
        }
    }

    @Override
    public String toString() {
        return "DeviceIotlb[" + size() + "/" + capacity + " entries, epoch " + epoch + "]";
    }
}
