/**
 * The vhost-user front end: the driver side of a virtio device whose back end is another
 * process. {@link io.vringj.vhostuser.frontend.VhostUserFrontEnd} connects (or listens), negotiates,
 * shares a sealed memfd as guest memory and hands out one
 * {@link io.vringj.vhostuser.frontend.FrontEndQueue} per vring: a ring-core
 * {@link io.vringj.ring.DriverQueue} over rings in that memory, plus the kick and call eventfds.
 * Device logic (rng, net frames) stays in the devices module and drives these queues; this
 * package knows no device.
 *
 * <p>Reading random bytes from a virtio-rng back end (ours: {@code rng --socket PATH}):
 * <pre>{@code
 * FrontEndOptions options = FrontEndOptions.client("/run/vhost/rng.sock").queueSize(64)
 *     .features(VirtioFeatures.bit(VirtioFeatures.VERSION_1) | VirtioFeatures.bit(VirtioFeatures.RING_PACKED))
 *     .build();
 * try (VhostUserFrontEnd frontEnd = VhostUserFrontEnd.open(options)) {
 *     frontEnd.addListener((fe, reason) -> System.err.println("back end gone: " + reason));
 *     FrontEndQueue queue = frontEnd.startQueues()[0];
 *     DriverQueue ring = queue.driverQueue();
 *     MemorySegment buffer = frontEnd.allocate(64, 8);
 *     ring.add(new BufferChain(1).addWritable(frontEnd.memory().guestPhysicalAddressOf(buffer), 64));
 *     queue.publish();                               // kicks if the back end wants a kick
 *     int head;
 *     while ((head = ring.pollUsed()) == DriverQueue.NONE) {
 *         if (!ring.enableInterrupts()) {
 *             queue.awaitCall(1000);                 // the back end signals the call eventfd
 *         }
 *     }
 *     // ring.usedLength() random bytes are now at the start of buffer
 *     int saved = frontEnd.stopQueue(0);             // GET_VRING_BASE: where the back end stopped
 *     frontEnd.startQueue(0);                        // resumes there
 * }
 * }</pre>
 *
 * <p>With DMA ops (a driver-side device that maps its buffers), wrap the ring:
 * {@code new DmaDriverQueue(queue.driverQueue(), frontEnd.dma(), maxBuffers)} and kick with
 * {@code if (dmaQueue.publish()) queue.kick();}.
 *
 * <p>A back end is as untrusted as a hostile ring: every reply is checked (request code, flags
 * exactly {@code 0x5}, size, no fds, the vring index {@code GET_VRING_BASE} echoes, the vring base
 * a ring state) and waited for at most a time-out; a violation is a
 * {@link io.vringj.vhostuser.ProtocolException} that names the value and the rule, and closes that
 * connection only. The used ring the back end writes is checked by the ring-core driver queue.
 */
package io.vringj.vhostuser.frontend;
