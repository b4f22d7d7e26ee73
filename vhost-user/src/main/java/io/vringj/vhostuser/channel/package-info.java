/**
 * A zero-copy message channel between two processes over a virtio-net queue pair in shared
 * memory: {@link io.vringj.vhostuser.channel.MessageChannel#serve} (the vhost-user back end) and
 * {@link io.vringj.vhostuser.channel.MessageChannel#connect} (the front end, which also works
 * against DPDK's {@code net_vhost}). Messages are claimed, written in place and committed, and
 * received in place by a {@link io.vringj.vhostuser.channel.MessageHandler}; batching,
 * back-pressure, event suppression and an orderly close are the channel's.
 *
 * <pre>{@code
 * try (MessageChannel channel = MessageChannel.connect(ChannelOptions.builder(path).build())) {
 *     MemorySegment m = channel.tryClaim(8);              // null: the ring is full
 *     if (m != null) {
 *         m.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, 42L);   // written in place, in shared memory
 *         channel.commit();
 *         channel.flush();
 *     }
 * }
 * }</pre>
 */
package io.vringj.vhostuser.channel;
