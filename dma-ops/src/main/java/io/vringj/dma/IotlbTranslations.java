package io.vringj.dma;

import io.vringj.memory.Access;
import io.vringj.ring.MissParking;
import java.util.Objects;

/**
 * A {@link DeviceIotlb} as the {@link MissParking.Translations} a parked device queue waits on:
 * the stamp is the IOTLB's epoch (moved by every update and invalidation), and a parked head is
 * retried once an entry covers the byte that missed, or once the MISS sent for it is no longer
 * pending (an UPDATE answered it and an INVALIDATE took the entry away again: the retry sends a
 * new MISS). Thread-safe as the IOTLB's epoch and
 * lookups are.
 */
public final class IotlbTranslations implements MissParking.Translations {
    private final DeviceIotlb iotlb;

    /** @param iotlb the IOTLB the queue translates through */
    public IotlbTranslations(DeviceIotlb iotlb) {
        this.iotlb = Objects.requireNonNull(iotlb, "iotlb");
    }

    /**
     * @param iotlb the IOTLB the queue translates through
     * @return the miss rule of a device queue behind it
     */
    public static MissParking parking(DeviceIotlb iotlb) {
        return new MissParking(new IotlbTranslations(iotlb));
    }

    @Override
    public long stamp() {
        return iotlb.epoch();
    }

    @Override
    public boolean mayRetry(long busAddress, Access access) {
        return iotlb.covers(busAddress, 1, access) || !iotlb.missPending(busAddress, access);
    }
}
