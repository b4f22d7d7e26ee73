package io.vringj.dma;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.util.Objects;

/**
 * A device's view of memory through a {@link DeviceIotlb}: bus addresses are IOVAs, so a
 * {@code DeviceQueue} runs unchanged behind an IOMMU. Its {@link #epoch()} is the IOTLB's, so the
 * queue translates its ring areas again after every UPDATE and INVALIDATE.
 *
 * <p>Two ways to fill the IOTLB:
 * <ul>
 *   <li>messages (no resolver): a miss is a {@link TranslationException.Kind#MISS}; the IOTLB
 *       has sent a MISS message, the queue reports {@code TRANSLATION_MISS} and consumes
 *       nothing, and the request is retried when an UPDATE arrives (see
 *       {@link ParkingDeviceQueue});</li>
 *   <li>synchronous resolver: a miss asks the {@link IotlbResolver} (the IOMMU model) at once,
 *       inserts its UPDATE and translates again; an address the resolver does not know is a
 *       FAULT.</li>
 * </ul>
 *
 * <p>Thread-safe as the IOTLB is; allocation-free on a hit.
 */
public final class IotlbAddressSpace implements AddressSpace {
    /** How many resolve rounds one translation may take before it gives up (a fault). */
    private static final int MAX_RESOLVE_ROUNDS = 64;

    private final DeviceIotlb iotlb;
    private final IotlbResolver resolver;

    /**
     * Message mode: misses are reported and resolved by UPDATE messages.
     *
     * @param iotlb the device IOTLB
     */
    public IotlbAddressSpace(DeviceIotlb iotlb) {
        this(iotlb, null);
    }

    /**
     * @param iotlb the device IOTLB
     * @param resolver asked on a miss (synchronous mode), or {@code null} for message mode
     */
    public IotlbAddressSpace(DeviceIotlb iotlb, IotlbResolver resolver) {
        this.iotlb = Objects.requireNonNull(iotlb, "iotlb");
        this.resolver = resolver;
    }

    /** @return the IOTLB behind this address space */
    public DeviceIotlb iotlb() {
        return iotlb;
    }

    @Override
    public void translate(long busAddress, long length, Access access, TranslationSink sink) throws TranslationException {
        if (resolver == null) {
            iotlb.translate(busAddress, length, access, sink);
            return;
        }
        long addr = busAddress;
        long left = length;
        for (int round = 0; ; round++) {
            try {
                iotlb.translate(addr, left, access, sink);
                return;
            } catch (TranslationException e) {
                if (e.kind() != TranslationException.Kind.MISS || round == MAX_RESOLVE_ROUNDS) {
                    throw e;
                }
                IotlbMessage update = resolver.resolve(e.busAddress());
                if (update == null || update.type() != IotlbMessage.Type.UPDATE || !update.covers(e.busAddress())) {
                    throw new TranslationException(TranslationException.Kind.FAULT, e.busAddress(), e.length(), access,
                        "the IOMMU has no mapping for it");
                }
                iotlb.update(update.iova(), update.size(), update.uaddr(), update.permission());
                // the pieces before the missed address were delivered; carry on from it
                addr = e.busAddress();
                left = e.length();
            }
        }
    }

    @Override
    public long epoch() {
        return iotlb.epoch();
    }

    @Override
    public String toString() {
        return "IotlbAddressSpace[" + iotlb + (resolver != null ? ", synchronous resolver" : ", messages") + "]";
    }
}
