package io.vringj.dma;

import io.vringj.memory.Access;
import io.vringj.memory.AddressSpace;
import io.vringj.memory.TranslationException;
import io.vringj.memory.TranslationSink;
import java.util.Objects;

/**
 * A device's view of memory through a {@link DeviceIotlb}: bus addresses are IOVAs, so a
 * {@code DeviceQueue} runs unchanged behind an IOMMU. Its {@link #epoch()} is the IOTLB's
 * invalidation epoch and {@link #unchangedSince} asks the IOTLB's change log, so the queue
 * translates its ring areas again only after an UPDATE or INVALIDATE that changed or removed an
 * entry under them.
 *
 * <p>Two ways to fill the IOTLB:
 * <ul>
 *   <li>messages (no resolver): a miss is a {@link TranslationException.Kind#MISS}; the IOTLB
 *       has sent a MISS message, the queue reports {@code TRANSLATION_MISS} and consumes
 *       nothing, and the request is retried when an UPDATE arrives (see
 *       {@link ParkingDeviceQueue});</li>
 *   <li>synchronous resolver: a miss asks the {@link IotlbResolver} (the IOMMU model) at once,
 *       which inserts its UPDATE, and translates again; an address the resolver does not know is
 *       a FAULT.</li>
 * </ul>
 *
 * <p>Thread-safe as the IOTLB is. {@link #tryTranslate} allocates nothing, hit or miss (and, with
 * a resolver that answers without allocating, such as {@link Iommu}, nothing when resolving).
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
        long left = tryTranslate(busAddress, length, access, sink);
        if (left != 0) {
            throw new TranslationException(TranslationException.Kind.MISS, busAddress + length - left, left, access,
                "no IOTLB entry");
        }
    }

    /**
     * Translates through the IOTLB; a miss is a return value and allocates nothing. With a
     * resolver, a miss asks it ({@link IotlbResolver#resolveInto}) and carries on from the
     * address that missed; an address it does not know is a FAULT.
     */
    @Override
    public long tryTranslate(long busAddress, long length, Access access, TranslationSink sink)
        throws TranslationException {
        long left = iotlb.tryTranslate(busAddress, length, access, sink);
        if (left == 0 || resolver == null) {
            return left;
        }
        return resolve(busAddress, length, left, access, sink);
    }

    /**
     * The synchronous resolver's rounds after a miss, kept out of {@link #tryTranslate} so that
     * the hit path stays small enough to inline into the device queue's walker; {@code left} is
     * what the first lookup left untranslated.
     */
    private long resolve(long busAddress, long length, long left, Access access, TranslationSink sink)
        throws TranslationException {
        long end = busAddress + length;
        for (int round = 0; ; round++) {
            long missed = end - left;
            if (round == MAX_RESOLVE_ROUNDS || !resolver.resolveInto(missed, iotlb)) {
                throw new TranslationException(TranslationException.Kind.FAULT, missed, left, access,
                    round == MAX_RESOLVE_ROUNDS ? "still missing after " + MAX_RESOLVE_ROUNDS + " IOMMU answers"
                        : "the IOMMU has no mapping for it");
            }
            // the pieces before the missed address were delivered; carry on from it
            left = iotlb.tryTranslate(missed, left, access, sink);
            if (left == 0) {
                return 0;
            }
        }
    }

    /** @return the IOTLB's {@link DeviceIotlb#invalidationEpoch() invalidation epoch}: an UPDATE into empty IOVA space leaves every earlier translation current */
    @Override
    public long epoch() {
        return iotlb.invalidationEpoch();
    }

    /** Asks the IOTLB's change log ({@link DeviceIotlb#unchangedSince}); lock-free, allocation-free. */
    @Override
    public boolean unchangedSince(long epoch, long busAddress, long length) {
        return iotlb.unchangedSince(epoch, busAddress, length);
    }

    @Override
    public String toString() {
        return "IotlbAddressSpace[" + iotlb + (resolver != null ? ", synchronous resolver" : ", messages") + "]";
    }
}
