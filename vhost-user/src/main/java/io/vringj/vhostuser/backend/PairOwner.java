package io.vringj.vhostuser.backend;

import io.vringj.ring.DeviceLoop;
import io.vringj.ring.DeviceQueue;
import io.vringj.vhostuser.EventFd;

/**
 * Takes the rx/tx queue pairs of a {@link io.vringj.device.QueuePairDevice} over from the back
 * end: instead of starting a {@link PairWorker} thread, the connection hands both device queues
 * of a ready pair to the owner, whose own thread (an application's) works the rings from then on.
 * Given to {@link VhostUserConnection#VhostUserConnection(io.vringj.device.VirtioDevice,
 * io.vringj.vhostuser.VhostUserChannel, VhostUserStatistics, BackendOptions, PairOwner)}.
 *
 * <pre>
 *   connection thread                               owner's thread
 *   pair ready + enabled → attach(pair) ──────────→ pops, fills, publishes, polls the kick fds
 *   GET_VRING_BASE, SET_VRING_ENABLE 0,
 *   SET_MEM_TABLE, SET_VRING_KICK, RESET_OWNER,
 *   closing → detach(pair) ── waits ─────────────→ stops touching the rings, acknowledges
 *   reads both vring bases, answers, unmaps ...
 * </pre>
 *
 * <p>Who owns what: from {@link #attach} until {@link #detach} returns true, only the owner's
 * thread touches the two {@link DeviceQueue}s and reads or drains the two kick eventfds; no
 * worker thread of the back end does. The back end keeps owning the fds (it closes them after
 * detach) and the memory the rings live in (unmapped after detach, or after a detach that timed
 * out: a late access by the owner's thread then throws {@link IllegalStateException}, it does
 * not crash). The call notifiers may be used until detach returns; the back end swaps their fd
 * under a lock when the front end sends {@code SET_VRING_CALL}.
 *
 * <p>Only for rings that cannot miss: the connection refuses {@code ACCESS_PLATFORM} rings
 * (IOVAs through a device IOTLB) with an owner, so offer a device without that feature.
 */
public interface PairOwner {

    /**
     * The queues of one pair, handed to the owner.
     *
     * @param pair the pair index (rx vring {@code 2 pair}, tx vring {@code 2 pair + 1})
     * @param rx the device side of the rx queue (the device puts frames into the driver's buffers)
     * @param tx the device side of the tx queue (the driver's frames for the device)
     * @param rxKick signalled by the driver when it posted rx buffers (if rx notifications are on)
     * @param txKick signalled by the driver when it posted tx frames (if tx notifications are on)
     * @param rxCall interrupts the driver on rx (thread-safe)
     * @param txCall interrupts the driver on tx (thread-safe)
     */
    record OwnedPair(int pair, DeviceQueue rx, DeviceQueue tx, EventFd rxKick, EventFd txKick,
                     DeviceLoop.Notifier rxCall, DeviceLoop.Notifier txCall) {
    }

    /**
     * Hands a pair over; called on the connection thread once both vrings of the pair have their
     * memory, size, addresses and kick fd and are enabled. Must not block.
     *
     * @param pair the pair's queues and fds, owned by the owner's thread from now on
     * @throws IllegalArgumentException if the owner cannot serve the pair as negotiated (e.g. a
     *     feature it needs is missing): the connection closes with that message
     */
    void attach(OwnedPair pair);

    /**
     * Takes a pair back; called on the connection thread when the front end stops or disables a
     * vring of the pair, replaces the memory table or a kick fd, resets, or the connection closes.
     * Returns once the owner's thread no longer touches the pair's queues and fds (after which the
     * back end reads their vring bases), or gives up after a bounded wait.
     *
     * @param pair the pair index
     * @param why what the front end did, for the owner's records
     * @return true when the owner's thread let go; false when it did not in time (the back end
     *     then fails the request and closes the connection)
     */
    boolean detach(int pair, String why);
}
