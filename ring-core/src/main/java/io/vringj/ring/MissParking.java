package io.vringj.ring;

import io.vringj.memory.Access;
import io.vringj.memory.TranslationException;
import java.util.Objects;

/**
 * The miss-and-retry rule of a device queue behind an IOTLB, in one place. When
 * {@link DeviceQueue#tryPop} reports {@link DeviceQueue#MISSED} (or an operation throws
 * {@link RingError#TRANSLATION_MISS}) it has consumed nothing and the IOTLB has asked for the
 * entry; the device then parks: it does not touch the ring again until the translations changed
 * since the miss and (when the miss named an address) a retry can make progress: an entry covers
 * that address now, or its MISS is no longer pending — answered and then taken away again by an
 * invalidation, so only a retry asks for it again. Then it tries the same head again, so requests
 * are neither lost nor reordered.
 *
 * <pre>
 *   stamp = beforeAttempt()          // e.g. the IOTLB epoch, read before the attempt
 *   tryPop(...) == MISSED            // park(stamp, missAddress, missAccess): remembers them
 *   stillParked(): stamp unchanged                       -> true (cheap, no ring access)
 *                  address not covered, its MISS pending -> true (the answer is on its way)
 *                  otherwise                             -> false: retry (a miss asks again)
 * </pre>
 *
 * <p>Waiting only for coverage would wedge the queue when an UPDATE answers the miss and an
 * INVALIDATE removes it before the device retries (a guest IOMMU flushing its domain does exactly
 * that): nothing would ask for the address again.
 *
 * <p>Owned by the device thread, like the queue. Allocation-free.
 */
public final class MissParking {

    /** What says whether a retry may succeed: an IOTLB's epoch and coverage. */
    public interface Translations {
        /**
         * @return a value that changes whenever translations are added or removed (read before
         *     each attempt, so a change during the attempt is seen as a change)
         */
        long stamp();

        /**
         * Whether a retry of an operation that missed on {@code busAddress} can make progress.
         *
         * @param busAddress the address that missed
         * @param access the access that missed
         * @return true if a translation for that byte exists now, or if no request for it is
         *     outstanding any more (a retry that misses again asks again); false while the request
         *     sent for it is still unanswered
         */
        boolean mayRetry(long busAddress, Access access);
    }

    private final Translations translations;
    private boolean parked;
    private long parkedAddress;
    private Access parkedAccess;
    private long parkedStamp;
    private long parks;

    /** @param translations the IOTLB's view that says when to retry */
    public MissParking(Translations translations) {
        this.translations = Objects.requireNonNull(translations, "translations");
    }

    /** @return the stamp to pass to {@link #parkOnMiss} if the attempt that follows misses */
    public long beforeAttempt() {
        return translations.stamp();
    }

    /**
     * Parks after a miss reported as a return value ({@link DeviceQueue#tryPop}); allocates nothing.
     *
     * @param stamp what {@link #beforeAttempt()} returned before the operation
     * @param busAddress the address that missed
     * @param access the access that missed, or {@code null} to retry after any change
     */
    public void park(long stamp, long busAddress, Access access) {
        parked = true;
        parks++;
        parkedStamp = stamp;
        parkedAddress = busAddress;
        parkedAccess = access;
    }

    /**
     * Parks if {@code e} is a translation miss.
     *
     * @param e what the queue operation threw
     * @param stamp what {@link #beforeAttempt()} returned before the operation
     * @return true if it was a miss and the queue is now parked; false for any other error
     */
    public boolean parkOnMiss(VirtqueueException e, long stamp) {
        if (e.error() != RingError.TRANSLATION_MISS) {
            return false;
        }
        if (e.getCause() instanceof TranslationException t) {
            park(stamp, t.busAddress(), t.access());
        } else {
            // no detail: retry after the next change of any kind
            park(stamp, 0, null);
        }
        return true;
    }

    /**
     * Whether the queue must stay parked; unparks it once a retry may succeed.
     *
     * @return true while the translations have not changed since the miss, or while the address
     *     that missed is not covered and its request is still unanswered
     */
    public boolean stillParked() {
        if (!parked) {
            return false;
        }
        long now = translations.stamp();
        if (now == parkedStamp || parkedAccess != null && !translations.mayRetry(parkedAddress, parkedAccess)) {
            parkedStamp = now;
            return true;
        }
        parked = false;
        return false;
    }

    /** @return whether the queue waits for a translation */
    public boolean isParked() {
        return parked;
    }

    /** @return the address the parked operation missed on (meaningful while {@link #isParked()}) */
    public long parkedAddress() {
        return parkedAddress;
    }

    /** @return how many times the queue parked */
    public long parks() {
        return parks;
    }
}
