package io.vringj.perf.ring;

import io.vringj.ring.BufferChain;
import io.vringj.ring.DescriptorChain;
import io.vringj.ring.DeviceQueue;
import io.vringj.ring.DriverQueue;
import io.vringj.ring.VirtioFeatures;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.agrona.BitUtil;
import org.agrona.BufferUtil;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RecordDescriptor;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;
import org.jctools.queues.SpscArrayQueue;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.Blackhole;

/**
 * Question 1: how many payloads per second does one producer thread get to one consumer thread
 * through the vringj split ring, compared with Agrona's {@code OneToOneRingBuffer}, JCTools'
 * {@code SpscArrayQueue} and {@code ArrayBlockingQueue}? Targets: at least Agrona at 64 B, at
 * least 4× Agrona at 4 KiB. And how does the packed ring compare with the split ring on the same
 * work?
 *
 * <p>Each peer is a JMH group of one producer and one consumer thread. The payload is "written"
 * and "read" in place the same way for everyone ({@link Payloads}); what differs is the transport:
 * <ul>
 *   <li>{@code vringj}: zero-copy. The producer stamps a payload in a guest-memory buffer and adds
 *       it as a premapped one-descriptor chain (a batch per publish); the consumer pops the
 *       validated chain, reads the payload in place through the {@link DescriptorChain} piece
 *       accessors (no slice is allocated) and returns it used; the producer polls the used ring
 *       to recycle buffers while it waits for a burst to be consumed, or once fewer than
 *       {@value #RECLAIM_BELOW} are free (not on every call: reading the used index the consumer
 *       keeps writing pulls its line across cores), and
 *       hands the buffers out again in the order they came back, so payloads go out in address
 *       order as Agrona's records do.</li>
 *   <li>{@code vringjPacked}: the same producer and consumer code over the packed ring
 *       ({@code VIRTIO_F_RING_PACKED}).</li>
 *   <li>{@code vringjInOrder}, {@code vringjPackedInOrder}: the same again with
 *       {@code VIRTIO_F_IN_ORDER} [virtio 2.7.9, 2.8.8]: the consumer returns each batch of
 *       (read-only) payloads with one used entry, and the producer takes the batch back from it;
 *       does that save anything against the split and packed rings without it?</li>
 *   <li>{@code agrona}: the producer stamps a source buffer and {@code write}s it, which copies
 *       the payload into the ring; the consumer reads it in place in its handler.</li>
 *   <li>{@code jctools}: references to off-heap slices go through one {@code SpscArrayQueue} and
 *       come back through another for reuse.</li>
 *   <li>{@code abq}: the same with two {@code ArrayBlockingQueue}s (offer/poll, never the
 *       blocking calls).</li>
 * </ul>
 * Every queue holds {@value #QUEUE_SIZE} payloads. The producer sends in bursts of {@value #BURST}
 * payloads (a batch per call) and then waits until the consumer has taken all of them, each
 * peer learning it the way its transport tells a producer: vringj from the used ring (every
 * buffer back), Agrona from the consumer position, JCTools and ArrayBlockingQueue from the
 * return queue (every slice back). So every burst starts from an empty queue with the consumer
 * waiting. A producer that never waits lets the queue swing between full and empty (in one fork
 * both its refused offers and the consumer's empty polls ran at millions a second), and each JMH
 * fork settled at a rate of its own, the fastest 2–3.5x the slowest on a 2-vCPU VM, so any ratio
 * of two forks was largely chance. This is JCTools' way to measure a queue ("burst cost"); with
 * it the fastest fork ran at 1.5–2.4x the slowest: narrower, not gone.
 *
 * <p>Nothing blocks: a full queue, an empty poll or a burst still being consumed returns at once
 * and counts in {@link ProducerCounters#offerFailures}, {@link ConsumerCounters#pollFailures} or
 * {@link ProducerCounters#drainWaits} (after a long streak of them the thread yields its core
 * once, the same for every peer). The throughput compared is {@link ConsumerCounters#messages}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = {JvmFlags.AGRONA, JvmFlags.JCTOOLS, JvmFlags.HEAP, JvmFlags.HEADLESS})
@State(Scope.Benchmark)
public class RingThroughputBenchmark {
    /** Payloads in flight at most, for every peer. */
    public static final int QUEUE_SIZE = 256;
    /** Payloads a producer sends before it waits until the consumer has taken all of them. */
    public static final int BURST = 64;
    /**
     * The vringj producer takes used buffers back only when fewer than this many (or than a batch)
     * are free, as DPDK's virtio transmit path cleans up only past its free threshold
     * ({@code tx_free_thresh}, 32 by default), rather than reading the used index the consumer
     * writes on every call.
     */
    static final int RECLAIM_BELOW = 32;
    private static final int MSG_TYPE = 1;

    /** Payload size in bytes. */
    @Param({"64", "1024", "4096"})
    public int payloadBytes;

    /** Payloads moved per producer call (and at most per consumer call); vringj publishes once per batch. */
    @Param({"1", "32"})
    public int batch;

    /** The producer's sequence number, padded away from what the consumer reads. */
    static final class Sequence extends PaddedSide {
        long value;
    }

    /** Where the producer is in its burst; the producer thread's alone. */
    static final class Burst extends PaddedSide {
        int sent;
        boolean draining;

        /**
         * Before a send: whether the previous burst is still being consumed ({@code drained} says
         * whether the transport has all of it back). A wait counts in {@code counters}.
         */
        boolean stillDraining(boolean drained, ProducerCounters counters) {
            if (!draining) {
                return false;
            }
            if (!drained) {
                counters.drainWaited();
                return true;
            }
            draining = false;
            return false;
        }

        /** After a send of {@code n} payloads: the burst is complete once {@value #BURST} are out. */
        void sent(int n) {
            sent += n;
            if (sent >= BURST) {
                sent = 0;
                draining = true;
            }
        }
    }

    private static int param(BenchmarkParams params, String name) {
        return Integer.parseInt(params.getParam(name));
    }

    /** The vringj ring with its buffer pool; the driver side is the producer's, the device side the consumer's. */
    @State(Scope.Group)
    public static class VringjRing {
        RingFixture ring;
        Producer producer;
        Consumer consumer;

        /**
         * @param params supplies payloadBytes and batch
         * @throws Exception if the ring cannot be built
         */
        @Setup(Level.Trial)
        public void setUp(BenchmarkParams params) throws Exception {
            init(param(params, "payloadBytes"), param(params, "batch"));
        }

        /** @return the features of the ring: the split ring here, the packed ring in {@link VringjPackedRing} */
        long features() {
            return RingFixture.FEATURES;
        }

        void init(int payloadBytes, int batch) throws Exception {
            ring = new RingFixture(features(), QUEUE_SIZE, payloadBytes, null);
            producer = new Producer(ring, batch);
            consumer = new Consumer(ring, batch);
        }

        /** Frees the guest memory. */
        @TearDown(Level.Trial)
        public void tearDown() {
            ring.close();
        }

        /** The driver thread's state: free buffer slots and which slot each in-flight head carries. */
        static final class Producer extends PaddedSide {
            final DriverQueue driver;
            final MemorySegment region;
            final long payload;
            final int batch;
            final BufferChain chain = new BufferChain(1);
            final long[] slotAddress;
            final long[] slotOffset;
            final int[] freeSlots;
            final int[] slotOfHead;
            /** Free slots in the order they came back (first in, first out), so payloads go out in address order. */
            int freeTake;
            int freePut;
            int freeCount;
            long sequence;
            /** Used buffers are taken back only when fewer than this many are free. */
            final int reclaimBelow;
            final Burst burst = new Burst();

            Producer(RingFixture ring, int batch) {
                this.reclaimBelow = Math.max(batch, RECLAIM_BELOW);
                this.driver = ring.driver();
                this.region = ring.regionSegment();
                this.payload = ring.payloadBytes();
                this.batch = batch;
                int q = ring.queueSize();
                slotAddress = new long[q];
                slotOffset = new long[q];
                freeSlots = new int[q];
                slotOfHead = new int[q];
                for (int s = 0; s < q; s++) {
                    slotAddress[s] = ring.slotAddress(s);
                    slotOffset[s] = ring.slotOffset(s);
                    freeSlots[s] = s;
                }
                freeCount = q;
                freePut = q;
            }

            void produce(ProducerCounters counters) throws Exception {
                int head;
                if (burst.draining) {
                    reclaim();
                    if (burst.stillDraining(freeCount == freeSlots.length, counters)) {
                        return;
                    }
                } else if (freeCount < reclaimBelow) {
                    reclaim();
                }
                int added = 0;
                for (; added < batch; added++) {
                    if (freeCount == 0) {
                        counters.offerFailed();
                        break;
                    }
                    int slot = freeSlots[freeTake & (freeSlots.length - 1)];
                    Payloads.stamp(region, slotOffset[slot], payload, sequence);
                    head = driver.add(chain.clear().addReadable(slotAddress[slot], payload));
                    if (head == DriverQueue.NO_ROOM) {
                        counters.offerFailed();
                        break;
                    }
                    freeTake++;
                    freeCount--;
                    slotOfHead[head] = slot;
                    sequence++;
                }
                if (added > 0) {
                    // the consumer polls with notifications off: publish without a kick decision (no fence)
                    driver.publishQuiet();
                    counters.progressed();
                    burst.sent(added);
                }
            }

            /** Takes back every buffer the used ring returned. */
            private void reclaim() throws Exception {
                int head;
                while ((head = driver.pollUsed()) != DriverQueue.NONE) {
                    freeSlots[freePut++ & (freeSlots.length - 1)] = slotOfHead[head];
                    freeCount++;
                }
            }
        }

        /** The device thread's state. */
        static final class Consumer extends PaddedSide {
            final DeviceQueue device;
            final int batch;
            final DescriptorChain chain = new DescriptorChain();

            Consumer(RingFixture ring, int batch) {
                this.device = ring.device();
                this.batch = batch;
            }

            void consume(ConsumerCounters counters, Blackhole bh) throws Exception {
                int popped = 0;
                for (; popped < batch; popped++) {
                    if (!device.pop(chain)) {
                        break;
                    }
                    // in place: the piece accessors name the backing segment, no slice is made
                    bh.consume(Payloads.read(chain.pieceSegment(0), chain.pieceOffset(0), chain.pieceLength(0)));
                    device.addUsed(chain.head(), 0);
                }
                if (popped == 0) {
                    counters.pollFailed();
                    return;
                }
                counters.consumed(popped);
                // the producer polls with interrupts off: publish without an interrupt decision (no fence)
                device.publishUsedQuiet();
            }
        }
    }

    /**
     * vringj producer: recycles used buffers, then stamps and adds a batch, publishing once.
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringj")
    @GroupThreads(1)
    public void vringjProduce(VringjRing ring, ProducerCounters counters) throws Exception {
        ring.producer.produce(counters);
    }

    /**
     * vringj consumer: pops up to a batch, reads each payload in place, returns them used.
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @param bh sinks the payload reads
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringj")
    @GroupThreads(1)
    public void vringjConsume(VringjRing ring, ConsumerCounters counters, Blackhole bh) throws Exception {
        ring.consumer.consume(counters, bh);
    }

    /** The same vringj ring and producer/consumer on the packed layout [virtio 2.8]. */
    @State(Scope.Group)
    public static class VringjPackedRing extends VringjRing {
        @Override
        long features() {
            return RingFixture.PACKED_FEATURES;
        }
    }

    /**
     * vringj producer on the packed ring (the same code as {@link #vringjProduce}).
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringjPacked")
    @GroupThreads(1)
    public void vringjPackedProduce(VringjPackedRing ring, ProducerCounters counters) throws Exception {
        ring.producer.produce(counters);
    }

    /**
     * vringj consumer on the packed ring (the same code as {@link #vringjConsume}).
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @param bh sinks the payload reads
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringjPacked")
    @GroupThreads(1)
    public void vringjPackedConsume(VringjPackedRing ring, ConsumerCounters counters, Blackhole bh) throws Exception {
        ring.consumer.consume(counters, bh);
    }

    /** The split ring with VIRTIO_F_IN_ORDER: batches of used buffers go back with one used entry. */
    @State(Scope.Group)
    public static class VringjInOrderRing extends VringjRing {
        @Override
        long features() {
            return RingFixture.FEATURES | VirtioFeatures.bit(VirtioFeatures.IN_ORDER);
        }
    }

    /**
     * vringj producer on the split ring with in-order use (the same code as {@link #vringjProduce}).
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringjInOrder")
    @GroupThreads(1)
    public void vringjInOrderProduce(VringjInOrderRing ring, ProducerCounters counters) throws Exception {
        ring.producer.produce(counters);
    }

    /**
     * vringj consumer on the split ring with in-order use (the same code as {@link #vringjConsume}).
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @param bh sinks the payload reads
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringjInOrder")
    @GroupThreads(1)
    public void vringjInOrderConsume(VringjInOrderRing ring, ConsumerCounters counters, Blackhole bh) throws Exception {
        ring.consumer.consume(counters, bh);
    }

    /** The packed ring with VIRTIO_F_IN_ORDER. */
    @State(Scope.Group)
    public static class VringjPackedInOrderRing extends VringjRing {
        @Override
        long features() {
            return RingFixture.PACKED_FEATURES | VirtioFeatures.bit(VirtioFeatures.IN_ORDER);
        }
    }

    /**
     * vringj producer on the packed ring with in-order use (the same code as {@link #vringjProduce}).
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringjPackedInOrder")
    @GroupThreads(1)
    public void vringjPackedInOrderProduce(VringjPackedInOrderRing ring, ProducerCounters counters) throws Exception {
        ring.producer.produce(counters);
    }

    /**
     * vringj consumer on the packed ring with in-order use (the same code as {@link #vringjConsume}).
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @param bh sinks the payload reads
     * @throws Exception if the ring breaks (it must not)
     */
    @Benchmark
    @Group("vringjPackedInOrder")
    @GroupThreads(1)
    public void vringjPackedInOrderConsume(VringjPackedInOrderRing ring, ConsumerCounters counters, Blackhole bh)
        throws Exception {
        ring.consumer.consume(counters, bh);
    }

    /** Agrona's one-to-one ring buffer, sized to hold at least {@value #QUEUE_SIZE} records. */
    @State(Scope.Group)
    public static class AgronaRing {
        OneToOneRingBuffer ring;
        UnsafeBuffer source;
        int payload;
        int batch;
        final Sequence sequence = new Sequence();
        final Burst burst = new Burst();
        final Handler handler = new Handler();

        /**
         * @param params supplies payloadBytes and batch
         */
        @Setup(Level.Trial)
        public void setUp(BenchmarkParams params) {
            init(param(params, "payloadBytes"), param(params, "batch"));
        }

        void init(int payloadBytes, int batchSize) {
            payload = payloadBytes;
            batch = batchSize;
            int record = BitUtil.align(payload + RecordDescriptor.HEADER_LENGTH, RecordDescriptor.ALIGNMENT);
            int capacity = BitUtil.findNextPositivePowerOfTwo(record * QUEUE_SIZE);
            ring = new OneToOneRingBuffer(new UnsafeBuffer(
                BufferUtil.allocateDirectAligned(capacity + RingBufferDescriptor.TRAILER_LENGTH, BitUtil.CACHE_LINE_LENGTH)));
            source = new UnsafeBuffer(BufferUtil.allocateDirectAligned(payload, BitUtil.CACHE_LINE_LENGTH));
        }

        /** Reads each record in place; one instance, so reading allocates nothing. */
        static final class Handler extends PaddedSide implements MessageHandler {
            long sink;

            @Override
            public void onMessage(int msgTypeId, MutableDirectBuffer buffer, int index, int length) {
                sink += buffer.getLong(index, ByteOrder.nativeOrder())
                    ^ buffer.getLong(index + length - Long.BYTES, ByteOrder.nativeOrder());
            }
        }
    }

    /**
     * Agrona producer: stamps the source buffer and writes (copies) it, a batch of times.
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     */
    @Benchmark
    @Group("agrona")
    @GroupThreads(1)
    public void agronaProduce(AgronaRing ring, ProducerCounters counters) {
        if (ring.burst.draining
            && ring.burst.stillDraining(ring.ring.consumerPosition() == ring.ring.producerPosition(), counters)) {
            return;
        }
        UnsafeBuffer source = ring.source;
        int payload = ring.payload;
        int i = 0;
        for (; i < ring.batch; i++) {
            long seq = ring.sequence.value;
            source.putLong(0, seq, ByteOrder.nativeOrder());
            source.putLong(payload - Long.BYTES, ~seq, ByteOrder.nativeOrder());
            if (!ring.ring.write(MSG_TYPE, source, 0, payload)) {
                counters.offerFailed();
                break;
            }
            ring.sequence.value = seq + 1;
        }
        if (i > 0) {
            counters.progressed();
            ring.burst.sent(i);
        }
    }

    /**
     * Agrona consumer: reads up to a batch of records in place.
     *
     * @param ring the group's ring
     * @param counters this thread's counters
     * @param bh sinks the payload reads
     */
    @Benchmark
    @Group("agrona")
    @GroupThreads(1)
    public void agronaConsume(AgronaRing ring, ConsumerCounters counters, Blackhole bh) {
        int read = ring.ring.read(ring.handler, ring.batch);
        if (read == 0) {
            counters.pollFailed();
            return;
        }
        counters.consumed(read);
        bh.consume(ring.handler.sink);
    }

    /** Two SPSC queues of references to off-heap payload slices: forward, and back for reuse. */
    @State(Scope.Group)
    public static class JctoolsQueues {
        Arena arena;
        SpscArrayQueue<MemorySegment> forward;
        SpscArrayQueue<MemorySegment> back;
        int payload;
        int batch;
        final Sequence sequence = new Sequence();
        final Burst burst = new Burst();

        /**
         * @param params supplies payloadBytes and batch
         */
        @Setup(Level.Trial)
        public void setUp(BenchmarkParams params) {
            init(param(params, "payloadBytes"), param(params, "batch"));
        }

        void init(int payloadBytes, int batchSize) {
            payload = payloadBytes;
            batch = batchSize;
            arena = Arena.ofShared();
            forward = new SpscArrayQueue<>(QUEUE_SIZE);
            back = new SpscArrayQueue<>(QUEUE_SIZE);
            MemorySegment pool = arena.allocate((long) payload * QUEUE_SIZE, 64);
            for (int i = 0; i < QUEUE_SIZE; i++) {
                back.offer(pool.asSlice((long) i * payload, payload));
            }
        }

        /** Frees the payload pool. */
        @TearDown(Level.Trial)
        public void tearDown() {
            arena.close();
        }
    }

    /**
     * JCTools producer: takes free slices back, stamps and offers a batch.
     *
     * @param q the group's queues
     * @param counters this thread's counters
     */
    @Benchmark
    @Group("jctools")
    @GroupThreads(1)
    public void jctoolsProduce(JctoolsQueues q, ProducerCounters counters) {
        if (q.burst.draining && q.burst.stillDraining(q.back.size() == QUEUE_SIZE, counters)) {
            return;
        }
        int i = 0;
        for (; i < q.batch; i++) {
            MemorySegment slice = q.back.poll();
            if (slice == null) {
                counters.offerFailed();
                break;
            }
            Payloads.stamp(slice, 0, q.payload, q.sequence.value++);
            // cannot fail: at most QUEUE_SIZE slices exist and each is in one queue
            q.forward.offer(slice);
        }
        if (i > 0) {
            counters.progressed();
            q.burst.sent(i);
        }
    }

    /**
     * JCTools consumer: polls up to a batch, reads in place, hands the slices back.
     *
     * @param q the group's queues
     * @param counters this thread's counters
     * @param bh sinks the payload reads
     */
    @Benchmark
    @Group("jctools")
    @GroupThreads(1)
    public void jctoolsConsume(JctoolsQueues q, ConsumerCounters counters, Blackhole bh) {
        int n = 0;
        for (; n < q.batch; n++) {
            MemorySegment slice = q.forward.poll();
            if (slice == null) {
                break;
            }
            bh.consume(Payloads.read(slice, 0, q.payload));
            q.back.offer(slice);
        }
        if (n == 0) {
            counters.pollFailed();
            return;
        }
        counters.consumed(n);
    }

    /** Two {@code ArrayBlockingQueue}s of off-heap payload slices, used only through offer/poll. */
    @State(Scope.Group)
    public static class BlockingQueues {
        Arena arena;
        ArrayBlockingQueue<MemorySegment> forward;
        ArrayBlockingQueue<MemorySegment> back;
        int payload;
        int batch;
        final Sequence sequence = new Sequence();
        final Burst burst = new Burst();

        /**
         * @param params supplies payloadBytes and batch
         */
        @Setup(Level.Trial)
        public void setUp(BenchmarkParams params) {
            init(param(params, "payloadBytes"), param(params, "batch"));
        }

        void init(int payloadBytes, int batchSize) {
            payload = payloadBytes;
            batch = batchSize;
            arena = Arena.ofShared();
            forward = new ArrayBlockingQueue<>(QUEUE_SIZE);
            back = new ArrayBlockingQueue<>(QUEUE_SIZE);
            MemorySegment pool = arena.allocate((long) payload * QUEUE_SIZE, 64);
            for (int i = 0; i < QUEUE_SIZE; i++) {
                back.offer(pool.asSlice((long) i * payload, payload));
            }
        }

        /** Frees the payload pool. */
        @TearDown(Level.Trial)
        public void tearDown() {
            arena.close();
        }
    }

    /**
     * ArrayBlockingQueue producer: as the JCTools one.
     *
     * @param q the group's queues
     * @param counters this thread's counters
     */
    @Benchmark
    @Group("abq")
    @GroupThreads(1)
    public void abqProduce(BlockingQueues q, ProducerCounters counters) {
        if (q.burst.draining && q.burst.stillDraining(q.back.size() == QUEUE_SIZE, counters)) {
            return;
        }
        int i = 0;
        for (; i < q.batch; i++) {
            MemorySegment slice = q.back.poll();
            if (slice == null) {
                counters.offerFailed();
                break;
            }
            Payloads.stamp(slice, 0, q.payload, q.sequence.value++);
            q.forward.offer(slice);
        }
        if (i > 0) {
            counters.progressed();
            q.burst.sent(i);
        }
    }

    /**
     * ArrayBlockingQueue consumer: as the JCTools one.
     *
     * @param q the group's queues
     * @param counters this thread's counters
     * @param bh sinks the payload reads
     */
    @Benchmark
    @Group("abq")
    @GroupThreads(1)
    public void abqConsume(BlockingQueues q, ConsumerCounters counters, Blackhole bh) {
        int n = 0;
        for (; n < q.batch; n++) {
            MemorySegment slice = q.forward.poll();
            if (slice == null) {
                break;
            }
            bh.consume(Payloads.read(slice, 0, q.payload));
            q.back.offer(slice);
        }
        if (n == 0) {
            counters.pollFailed();
            return;
        }
        counters.consumed(n);
    }
}
