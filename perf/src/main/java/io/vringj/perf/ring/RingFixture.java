package io.vringj.perf.ring;

import io.vringj.memory.AddressSpace;
import io.vringj.memory.GuestMemory;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.RingAddresses;
import io.vringj.ring.RingSizes;
import io.vringj.ring.VirtioFeatures;
import io.vringj.ring.VirtqueueException;
import java.lang.foreign.MemorySegment;

/**
 * One virtqueue (split unless the features ask for packed) in a fresh guest memory, with a pool of payload buffers, as the benchmarks
 * set it up: the driver side, the device side (over an {@link AddressSpace} the caller picks, the
 * identity by default) and one buffer slot per descriptor.
 *
 * <pre>
 *   base + 0x0000_0000  descriptor table  (16·Q bytes, page aligned)
 *   base + descArea'    avail ring        (6 + 2·Q, page aligned)
 *   base + availArea'   used ring         (6 + 8·Q, page aligned)
 *   buffersBase         Q slots of slotStride bytes (payload rounded up to a cache line)
 * </pre>
 *
 * <p>Only {@link VirtioFeatures#VERSION_1} is negotiated: the benchmarks poll, so notification
 * suppression is switched on once ({@code NO_NOTIFY} / {@code NO_INTERRUPT}) and the
 * event-index path is not exercised.
 *
 * <p>Not thread-safe by itself: after construction the driver belongs to one thread and the
 * device to another (JMH publishes the fixture to both safely).
 */
public final class RingFixture implements AutoCloseable {
    /** Guest-physical base of the one shared region. */
    public static final long GUEST_BASE = 0x1000_0000L;
    /** Features negotiated by every benchmark ring unless one asks for others: the split ring. */
    public static final long FEATURES = VirtioFeatures.bit(VirtioFeatures.VERSION_1);
    /** {@link #FEATURES} with the packed ring. */
    public static final long PACKED_FEATURES = FEATURES | VirtioFeatures.bit(VirtioFeatures.RING_PACKED);
    private static final long PAGE = 4096;
    private static final long CACHE_LINE = 64;

    private final GuestMemory memory;
    private final RingAddresses addresses;
    private final int queueSize;
    private final long payloadBytes;
    private final long slotStride;
    private final long buffersBase;
    private final DriverQueue driver;
    private final DeviceQueue device;

    /** Makes the device's view of the fixture's fresh guest memory (identity, an IOTLB, ...). */
    @FunctionalInterface
    public interface DeviceView {
        /**
         * @param memory the guest memory just allocated
         * @return how the device reaches it; the ring areas' guest-physical addresses must be
         *     bus addresses the device can translate
         * @throws Exception if it cannot be built
         */
        AddressSpace create(GuestMemory memory) throws Exception;
    }

    /**
     * A ring over identity translation (bus address = guest-physical address).
     *
     * @param queueSize Q, a power of two
     * @param payloadBytes the size of each buffer slot's payload, at least 16
     * @throws VirtqueueException never for a fresh identity-mapped ring
     */
    public RingFixture(int queueSize, long payloadBytes) throws VirtqueueException {
        this(queueSize, payloadBytes, (DeviceView) null);
    }

    /**
     * A ring whose device reaches memory through the view {@code deviceView} makes.
     *
     * @param queueSize Q, a power of two
     * @param payloadBytes the size of each buffer slot's payload, at least 16
     * @param deviceView makes the device's address space, or {@code null} for the identity
     * @throws VirtqueueException if the device cannot reach the ring areas
     */
    public RingFixture(int queueSize, long payloadBytes, DeviceView deviceView) throws VirtqueueException {
        this(FEATURES, queueSize, payloadBytes, deviceView);
    }

    /**
     * A ring of the layout {@code features} chooses ({@link VirtioFeatures#RING_PACKED} for the
     * packed ring), over identity translation unless {@code deviceView} says otherwise.
     *
     * @param features the negotiated features
     * @param queueSize Q, valid for the layout
     * @param payloadBytes the size of each buffer slot's payload, at least 16
     * @param deviceView makes the device's address space, or {@code null} for the identity
     * @throws VirtqueueException if the device cannot reach the ring areas
     */
    public RingFixture(long features, int queueSize, long payloadBytes, DeviceView deviceView) throws VirtqueueException {
        RingSizes sizes = RingSizes.of(features, queueSize);
        if (payloadBytes < 16) {
            throw new IllegalArgumentException("payload of " + payloadBytes + " bytes; the benchmarks need at least 16");
        }
        this.queueSize = queueSize;
        this.payloadBytes = payloadBytes;
        this.slotStride = roundUp(payloadBytes, CACHE_LINE);
        long desc = GUEST_BASE;
        long avail = desc + roundUp(sizes.descriptorArea(), PAGE);
        long used = avail + roundUp(sizes.driverArea(), PAGE);
        this.buffersBase = used + roundUp(sizes.deviceArea(), PAGE);
        assert buffersBase - GUEST_BASE == ringAreaBytes(features, queueSize);
        long size = roundUp(buffersBase - GUEST_BASE + slotStride * queueSize, PAGE);
        this.memory = GuestMemory.ofShared(GUEST_BASE, size);
        this.addresses = new RingAddresses(desc, avail, used);
        this.driver = DriverQueue.create(features, queueSize, memory, addresses);
        AddressSpace view;
        try {
            view = deviceView == null ? AddressSpace.identity(memory) : deviceView.create(memory);
        } catch (RuntimeException | VirtqueueException e) {
            memory.close();
            throw e;
        } catch (Exception e) {
            memory.close();
            throw new IllegalStateException("the device's view of memory could not be built: " + e.getMessage(), e);
        }
        this.device = DeviceQueue.create(features, queueSize, addresses, view);
        // both sides poll: ask the other side not to notify (hints; they keep the fences honest)
        driver.disableInterrupts();
        device.disableNotifications();
    }

    private static long roundUp(long value, long to) {
        return (value + to - 1) / to * to;
    }

    /** @return the guest memory holding rings and buffers */
    public GuestMemory memory() {
        return memory;
    }

    /** @return the ring areas' guest-physical addresses */
    public RingAddresses addresses() {
        return addresses;
    }

    /** @return Q */
    public int queueSize() {
        return queueSize;
    }

    /** @return the payload size of each slot */
    public long payloadBytes() {
        return payloadBytes;
    }

    /** @return the driver side */
    public DriverQueue driver() {
        return driver;
    }

    /** @return the device side */
    public DeviceQueue device() {
        return device;
    }

    /**
     * @param slot 0..Q-1
     * @return the guest-physical address of the slot's payload
     */
    public long slotAddress(int slot) {
        if (slot < 0 || slot >= queueSize) {
            throw new IndexOutOfBoundsException("slot " + slot + " of " + queueSize);
        }
        return buffersBase + slot * slotStride;
    }

    /**
     * @param slot 0..Q-1
     * @return the CPU's view of the slot's payload ({@link #payloadBytes()} long)
     */
    public MemorySegment slotSegment(int slot) {
        return memory.slice(slotAddress(slot), payloadBytes);
    }

    /** @return bytes from {@link #GUEST_BASE} to the first buffer slot: the three ring areas, page aligned */
    public long ringAreaBytes() {
        return buffersBase - GUEST_BASE;
    }

    /**
     * @param queueSize Q
     * @return bytes from {@link #GUEST_BASE} to the first buffer slot of a fixture of that size
     *     (for a {@link DeviceView} that must map the ring areas before the fixture exists)
     */
    public static long ringAreaBytes(int queueSize) {
        return ringAreaBytes(FEATURES, queueSize);
    }

    /**
     * @param features the negotiated features (they choose the layout)
     * @param queueSize Q
     * @return bytes from {@link #GUEST_BASE} to the first buffer slot of a fixture of that layout and size
     */
    public static long ringAreaBytes(long features, int queueSize) {
        RingSizes sizes = RingSizes.of(features, queueSize);
        return roundUp(sizes.descriptorArea(), PAGE) + roundUp(sizes.driverArea(), PAGE)
            + roundUp(sizes.deviceArea(), PAGE);
    }

    /** @return the size of the guest memory's one region */
    public long memoryBytes() {
        return memory.region(0).size();
    }

    /** @return the one region's whole segment (slots are at {@link #slotOffset(int)} in it) */
    public MemorySegment regionSegment() {
        return memory.region(0).segment();
    }

    /**
     * @param slot 0..Q-1
     * @return the slot's offset in {@link #regionSegment()}
     */
    public long slotOffset(int slot) {
        return slotAddress(slot) - GUEST_BASE;
    }

    @Override
    public void close() {
        memory.close();
    }
}
